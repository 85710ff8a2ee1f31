/* kernels/tokenizer_cps.h: a growable array of Unicode code points for the text cleanup. */
#ifndef DQ_TOKENIZER_CPS_H
#define DQ_TOKENIZER_CPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Code points; zero-initialize it ({0}) before use and free it with dq_tokcps_free. An
 * allocation failure sets oom and makes later pushes do nothing, so callers check once. */
typedef struct {
    int32_t *cp; /* owned */
    size_t len;
    size_t cap;
    bool oom;
} dq_tokcps_t;

/* Appends one code point. */
void dq_tokcps_push(dq_tokcps_t *self, int32_t cp);
/* Appends the code points of valid UTF-8 text (len bytes). */
void dq_tokcps_push_utf8(dq_tokcps_t *self, const char *text, size_t len);
/* Appends n code points. */
void dq_tokcps_push_n(dq_tokcps_t *self, const int32_t *cp, size_t n);
/* Encodes the code points as a new NUL-terminated UTF-8 string (caller frees), its length in
 * *out_len; NULL when out of memory. */
char *dq_tokcps_to_utf8(const dq_tokcps_t *self, size_t *out_len);
/* Frees the array and zeroes the struct. */
void dq_tokcps_free(dq_tokcps_t *self);
/* Exchanges the contents of two arrays. */
void dq_tokcps_swap(dq_tokcps_t *a, dq_tokcps_t *b);

#endif
