/* kernels/tokenizer_map.c: open-addressing string -> int32 hash table (FNV-1a, linear probing). */
#include "kernels/tokenizer_map.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;     /* owned, NUL-terminated; NULL marks an empty slot */
    size_t len;    /* key length in bytes */
    uint64_t hash; /* cached so growing does not rehash strings */
    int32_t value;
} slot_t;

struct dq_tokmap_t {
    slot_t *slots; /* owned; capacity entries, a power of two */
    size_t capacity;
    size_t count;
};

static uint64_t s_hash(const char *key, size_t len) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h;
}

dq_tokmap_t *dq_tokmap_new(size_t expected) {
    dq_tokmap_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2; /* keep the load factor at or below 1/2 */
    self->slots = calloc(cap, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    self->capacity = cap;
    return self;
}

void dq_tokmap_destroy(dq_tokmap_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_tokmap_t *self = *self_p;
    for (size_t i = 0; i < self->capacity; i++)
        free(self->slots[i].key);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static slot_t *s_find(const dq_tokmap_t *self, const char *key, size_t len, uint64_t hash) {
    size_t mask = self->capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        slot_t *s = &self->slots[i];
        if (!s->key) return s;
        if (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0) return s;
    }
}

static int s_grow(dq_tokmap_t *self) {
    size_t cap = self->capacity * 2;
    slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < self->capacity; i++) {
        slot_t *old = &self->slots[i];
        if (!old->key) continue;
        size_t j = old->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *old;
    }
    free(self->slots);
    self->slots = slots;
    self->capacity = cap;
    return 0;
}

int dq_tokmap_put(dq_tokmap_t *self, const char *key, size_t len, int32_t value) {
    if ((self->count + 1) * 2 > self->capacity && s_grow(self) != 0) return -1;
    uint64_t hash = s_hash(key, len);
    slot_t *s = s_find(self, key, len, hash);
    if (s->key) {
        s->value = value;
        return 1;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, key, len);
    copy[len] = '\0';
    s->key = copy;
    s->len = len;
    s->hash = hash;
    s->value = value;
    self->count++;
    return 0;
}

bool dq_tokmap_get(const dq_tokmap_t *self, const char *key, size_t len, int32_t *value) {
    const slot_t *s = s_find(self, key, len, s_hash(key, len));
    if (!s->key) return false;
    *value = s->value;
    return true;
}

size_t dq_tokmap_size(const dq_tokmap_t *self) {
    return self->count;
}
