/* kernels/tokenizer_cps.c: a growable array of Unicode code points for the text cleanup. */
#include "kernels/tokenizer_cps.h"

#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

static bool s_reserve(dq_tokcps_t *self, size_t more) {
    if (self->oom) return false;
    if (self->len + more <= self->cap) return true;
    size_t cap = self->cap ? self->cap : 16;
    while (cap < self->len + more)
        cap *= 2;
    int32_t *cp = realloc(self->cp, cap * sizeof *cp);
    if (!cp) {
        self->oom = true;
        return false;
    }
    self->cp = cp;
    self->cap = cap;
    return true;
}

void dq_tokcps_push(dq_tokcps_t *self, int32_t cp) {
    if (s_reserve(self, 1)) self->cp[self->len++] = cp;
}

void dq_tokcps_push_n(dq_tokcps_t *self, const int32_t *cp, size_t n) {
    if (n && s_reserve(self, n)) {
        memcpy(self->cp + self->len, cp, n * sizeof *cp);
        self->len += n;
    }
}

void dq_tokcps_push_utf8(dq_tokcps_t *self, const char *text, size_t len) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    for (size_t at = 0; at < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + at, (utf8proc_ssize_t)(len - at), &cp);
        if (n <= 0) { /* callers pass validated text; keep going rather than loop forever */
            cp = 0xfffd;
            n = 1;
        }
        dq_tokcps_push(self, cp);
        at += (size_t)n;
    }
}

char *dq_tokcps_to_utf8(const dq_tokcps_t *self, size_t *out_len) {
    if (self->oom) return NULL;
    utf8proc_uint8_t *out = malloc(self->len * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < self->len; i++)
        o += (size_t)utf8proc_encode_char(self->cp[i], out + o);
    out[o] = '\0';
    *out_len = o;
    return (char *)out;
}

void dq_tokcps_free(dq_tokcps_t *self) {
    free(self->cp);
    *self = (dq_tokcps_t){0};
}

void dq_tokcps_swap(dq_tokcps_t *a, dq_tokcps_t *b) {
    dq_tokcps_t t = *a;
    *a = *b;
    *b = t;
}
