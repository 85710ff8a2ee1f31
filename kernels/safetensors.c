/* kernels/safetensors.c: safetensors reader: maps a file, validates its header, looks tensors up.
 */
#include "config.h"

#include "kernels/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct dq_safetensors_t {
    char *path;              /* owned: file path or memory label */
    void *map;               /* owned mapping, or NULL when reading from memory */
    size_t map_len;          /* bytes mapped */
    dq_st_tensor_t *tensors; /* owned array of count, sorted by name */
    char **names;            /* owned copies of the names (tensors[i].name points at them) */
    size_t count;
    json_t *metadata; /* owned: the __metadata__ object, or NULL */
};

static void s_fail(char *err, size_t errlen, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_fail(char *err, size_t errlen, const char *label, const char *fmt, ...) {
    if (!err || !errlen) return;
    int n = snprintf(err, errlen, "%s: ", label);
    if (n < 0 || (size_t) n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

int64_t dq_st_numel(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

static int s_cmp_name(const void *a, const void *b) {
    return strcmp(((const dq_st_tensor_t *) a)->name, ((const dq_st_tensor_t *) b)->name);
}

/* Data offsets of tensor i, kept beside the array while validating. */
typedef struct {
    uint64_t begin, end;
    const char *name;
} s_span_t;

static int s_cmp_span(const void *a, const void *b) {
    const s_span_t *x = a, *y = b;
    return x->begin < y->begin   ? -1
           : x->begin > y->begin ? 1
                                 : (x->end > y->end) - (x->end < y->end);
}

/* Reads a JSON integer into [0, limit]; returns -1 when it is not one. */
static int s_get_u64(const json_t *v, uint64_t limit, uint64_t *out) {
    if (!json_is_integer(v)) return -1;
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t) i > limit) return -1;
    *out = (uint64_t) i;
    return 0;
}

/* Validates one entry and fills t (name set by the caller). Returns 0 or -1 with err. */
static int s_parse_entry(const char *label, const char *name, json_t *v, uint64_t data_len,
                         dq_st_tensor_t *t, s_span_t *span, char *err, size_t errlen) {
    if (!json_is_object(v)) {
        s_fail(err, errlen, label, "tensor '%s': entry is not a JSON object", name);
        return -1;
    }
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd)) {
        s_fail(err, errlen, label, "tensor '%s': missing or non-string \"dtype\"", name);
        return -1;
    }
    int dt = dq_dtype_parse(json_string_value(jd));
    if (dt < 0) {
        s_fail(err, errlen, label, "tensor '%s': unknown dtype \"%s\"", name,
               json_string_value(jd));
        return -1;
    }
    t->dtype = (dq_dtype_t) dt;
    if (!json_is_array(js)) {
        s_fail(err, errlen, label, "tensor '%s': missing or non-array \"shape\"", name);
        return -1;
    }
    if (json_array_size(js) > DQ_ST_MAX_DIMS) {
        s_fail(err, errlen, label, "tensor '%s': %zu dimensions (at most %d supported)", name,
               json_array_size(js), DQ_ST_MAX_DIMS);
        return -1;
    }
    t->ndim = (int) json_array_size(js);
    /* The product of the non-zero dims must fit int64 too, so dq_st_numel never overflows whatever
     * order a zero dimension comes in. */
    uint64_t bytes = dq_dtype_size(t->dtype), nonzero = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        if (s_get_u64(json_array_get(js, (size_t) i), INT64_MAX, &d) < 0) {
            s_fail(err, errlen, label, "tensor '%s': shape[%d] is not a non-negative integer", name,
                   i);
            return -1;
        }
        t->shape[i] = (int64_t) d;
        if (d && nonzero > (uint64_t) INT64_MAX / d) {
            s_fail(err, errlen, label, "tensor '%s': shape overflows the element count", name);
            return -1;
        }
        if (d) nonzero *= d;
        if (bytes && d > UINT64_MAX / bytes) {
            s_fail(err, errlen, label, "tensor '%s': shape overflows the byte size", name);
            return -1;
        }
        bytes *= d;
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        s_get_u64(json_array_get(jo, 0), UINT64_MAX / 2, &span->begin) < 0 ||
        s_get_u64(json_array_get(jo, 1), UINT64_MAX / 2, &span->end) < 0) {
        s_fail(err, errlen, label,
               "tensor '%s': \"data_offsets\" must be [begin, end] of non-negative integers", name);
        return -1;
    }
    if (span->end < span->begin) {
        s_fail(err, errlen, label, "tensor '%s': data_offsets end %llu before begin %llu", name,
               (unsigned long long) span->end, (unsigned long long) span->begin);
        return -1;
    }
    if (span->end > data_len) {
        s_fail(err, errlen, label,
               "tensor '%s': data_offsets end %llu beyond the %llu-byte data section", name,
               (unsigned long long) span->end, (unsigned long long) data_len);
        return -1;
    }
    if (span->end - span->begin != bytes) {
        s_fail(err, errlen, label,
               "tensor '%s': data_offsets span %llu bytes but dtype %s and shape need %llu", name,
               (unsigned long long) (span->end - span->begin), dq_dtype_name(t->dtype),
               (unsigned long long) bytes);
        return -1;
    }
    t->nbytes = (size_t) bytes;
    return 0;
}

static int s_check_metadata(const char *label, json_t *meta, char *err, size_t errlen) {
    if (!json_is_object(meta)) {
        s_fail(err, errlen, label, "\"__metadata__\" is not a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v)) {
            s_fail(err, errlen, label, "\"__metadata__\" value of \"%s\" is not a string", k);
            return -1;
        }
    }
    return 0;
}

/* Parses and validates `buf` (the whole file) into self. Returns 0 or -1 with err. */
static int s_parse(dq_safetensors_t *self, const uint8_t *buf, size_t len, char *err,
                   size_t errlen) {
    const char *label = self->path;
    if (len < 8) {
        s_fail(err, errlen, label, "truncated: %zu bytes, shorter than the 8-byte header length",
               len);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    if (n > DQ_ST_MAX_HEADER) {
        s_fail(err, errlen, label, "header length %llu exceeds the %u-byte limit",
               (unsigned long long) n, DQ_ST_MAX_HEADER);
        return -1;
    }
    if (n > len - 8) {
        s_fail(err, errlen, label, "truncated: header length %llu but only %zu bytes follow",
               (unsigned long long) n, len - 8);
        return -1;
    }
    if (n < 2 || buf[8] != '{') {
        s_fail(err, errlen, label, "header is not a JSON object (must start with '{')");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *) buf + 8, (size_t) n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        s_fail(err, errlen, label, "bad JSON header at byte %d: %s", jerr.position, jerr.text);
        return -1;
    }
    int rc = -1;
    s_span_t *spans = NULL;
    if (!json_is_object(root)) {
        s_fail(err, errlen, label, "header is not a JSON object");
        goto done;
    }
    const uint8_t *data = buf + 8 + n;
    uint64_t data_len = len - 8 - n;
    size_t total = json_object_size(root);
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta && s_check_metadata(label, meta, err, errlen) < 0) goto done;
    size_t cap = total - (meta ? 1 : 0);
    self->tensors = calloc(cap ? cap : 1, sizeof *self->tensors);
    self->names = calloc(cap ? cap : 1, sizeof *self->names);
    spans = calloc(cap ? cap : 1, sizeof *spans);
    if (!self->tensors || !self->names || !spans) {
        s_fail(err, errlen, label, "out of memory for %zu tensors", cap);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) continue;
        dq_st_tensor_t *t = &self->tensors[self->count];
        if (s_parse_entry(label, key, v, data_len, t, &spans[self->count], err, errlen) < 0)
            goto done;
        self->names[self->count] = strdup(key);
        if (!self->names[self->count]) {
            s_fail(err, errlen, label, "out of memory");
            goto done;
        }
        t->name = self->names[self->count];
        spans[self->count].name = t->name;
        t->data = data + spans[self->count].begin;
        self->count++;
    }
    /* Like the reference reader: the tensors tile the data section exactly, so no byte is shared by
     * two tensors and none is hidden (which would allow polyglot files). */
    qsort(spans, self->count, sizeof *spans, s_cmp_span);
    uint64_t at = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (spans[i].begin < at) {
            s_fail(err, errlen, label,
                   "tensor '%s' overlaps the previous tensor (begins at %llu, before %llu)",
                   spans[i].name, (unsigned long long) spans[i].begin, (unsigned long long) at);
            goto done;
        }
        if (spans[i].begin > at) {
            s_fail(err, errlen, label,
                   "hole in the data section: bytes %llu..%llu belong to no tensor",
                   (unsigned long long) at, (unsigned long long) spans[i].begin);
            goto done;
        }
        at = spans[i].end;
    }
    if (at != data_len) {
        s_fail(err, errlen, label, "data section is %llu bytes but the tensors cover %llu",
               (unsigned long long) data_len, (unsigned long long) at);
        goto done;
    }
    qsort(self->tensors, self->count, sizeof *self->tensors, s_cmp_name);
    if (meta) self->metadata = json_incref(meta);
    rc = 0;
done:
    free(spans);
    json_decref(root);
    return rc;
}

static dq_safetensors_t *s_new(const char *label) {
    dq_safetensors_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->path = strdup(label ? label : "(memory)");
    if (!self->path) {
        free(self);
        return NULL;
    }
    return self;
}

dq_safetensors_t *dq_safetensors_from_memory(const void *buf, size_t len, const char *label,
                                             char *err, size_t errlen) {
    dq_safetensors_t *self = s_new(label);
    if (!self) {
        s_fail(err, errlen, label ? label : "(memory)", "out of memory");
        return NULL;
    }
    if (s_parse(self, buf, len, err, errlen) < 0) dq_safetensors_destroy(&self);
    return self;
}

dq_safetensors_t *dq_safetensors_open(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s_fail(err, errlen, path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        s_fail(err, errlen, path, "not a regular file");
        close(fd);
        return NULL;
    }
    dq_safetensors_t *self = s_new(path);
    if (!self) {
        s_fail(err, errlen, path, "out of memory");
        close(fd);
        return NULL;
    }
    size_t len = (size_t) st.st_size;
    const uint8_t *buf = (const uint8_t *) "";
    if (len > 0) {
        self->map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (self->map == MAP_FAILED) {
            self->map = NULL;
            s_fail(err, errlen, path, "cannot map %zu bytes: %s", len, strerror(errno));
            close(fd);
            dq_safetensors_destroy(&self);
            return NULL;
        }
        self->map_len = len;
        buf = self->map;
    }
    close(fd);
    if (s_parse(self, buf, len, err, errlen) < 0) dq_safetensors_destroy(&self);
    return self;
}

void dq_safetensors_destroy(dq_safetensors_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_safetensors_t *self = *self_p;
    if (self->map) munmap(self->map, self->map_len);
    if (self->names)
        for (size_t i = 0; i < self->count; i++)
            free(self->names[i]);
    free(self->names);
    free(self->tensors);
    json_decref(self->metadata);
    free(self->path);
    free(self);
    *self_p = NULL;
}

const char *dq_safetensors_path(const dq_safetensors_t *self) {
    return self->path;
}
size_t dq_safetensors_count(const dq_safetensors_t *self) {
    return self->count;
}

const dq_st_tensor_t *dq_safetensors_at(const dq_safetensors_t *self, size_t i) {
    return i < self->count ? &self->tensors[i] : NULL;
}

const dq_st_tensor_t *dq_safetensors_find(const dq_safetensors_t *self, const char *name) {
    dq_st_tensor_t key = {.name = name};
    return self->count ? bsearch(&key, self->tensors, self->count, sizeof key, s_cmp_name) : NULL;
}

const char *dq_safetensors_metadata(const dq_safetensors_t *self, const char *key) {
    return self->metadata ? json_string_value(json_object_get(self->metadata, key)) : NULL;
}
