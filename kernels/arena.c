/* kernels/arena.c: a scratch arena (bump allocator with mark/reset) for activations. */
#include "kernels/arena.h"

#include <assert.h>
#include <stdlib.h>

#include "common/log.h"

/* Alignment of every tensor's data: a cache line, enough for AVX-512 loads. */
#define DQ_ARENA_ALIGN 64

struct dq_arena {
    dq_buffer_t *buf;      /* owned: data memory */
    dq_tensor_t *tensors;  /* owned: max_tensors structs handed out in order */
    size_t max_tensors;    /* capacity of tensors */
    dq_arena_mark_t pos;   /* next free byte and struct */
    size_t peak;           /* high-water mark of pos.bytes */
};

dq_arena_t *dq_arena_new(dq_backend_t *be, size_t bytes, size_t max_tensors) {
    if (bytes == 0 || max_tensors == 0) {
        dq_error("arena new: bytes=%zu max_tensors=%zu, both must be > 0", bytes, max_tensors);
        return NULL;
    }
    dq_arena_t *a = calloc(1, sizeof *a);
    if (!a) goto oom;
    a->tensors = calloc(max_tensors, sizeof *a->tensors);
    if (!a->tensors) goto oom;
    a->max_tensors = max_tensors;
    a->buf = dq_backend_buffer_alloc(be, bytes);
    if (!a->buf) goto fail;
    return a;
oom:
    dq_error("arena new: out of host memory for %zu tensor structs", max_tensors);
fail:
    dq_arena_destroy(&a);
    return NULL;
}

void dq_arena_destroy(dq_arena_t **arena_p) {
    if (!arena_p || !*arena_p) return;
    dq_arena_t *a = *arena_p;
    *arena_p = NULL;
    dq_buffer_free(&a->buf);
    free(a->tensors);
    free(a);
}

dq_tensor_t *dq_arena_tensor(dq_arena_t *a, dq_dtype_t dtype, int ndim, const int64_t *shape,
                             const char *name) {
    if (a->pos.tensors >= a->max_tensors) {
        dq_error("arena: no tensor struct left for '%s' (max_tensors=%zu)", name ? name : "",
                 a->max_tensors);
        return NULL;
    }
    dq_tensor_t *t = &a->tensors[a->pos.tensors];
    if (dq_tensor_init(t, dtype, ndim, shape, NULL, a->buf, name) != 0) return NULL;
    size_t n = dq_tensor_nbytes(t);
    size_t start = (a->pos.bytes + DQ_ARENA_ALIGN - 1) & ~(size_t) (DQ_ARENA_ALIGN - 1);
    if (start > a->buf->size || n > a->buf->size - start) {
        char d[96];
        dq_error("arena: out of memory for %s: need %zu bytes at %zu, capacity %zu",
                 dq_tensor_describe(t, d, sizeof d), n, start, a->buf->size);
        return NULL;
    }
    t->data = (char *) a->buf->base + start;
    a->pos.bytes = start + n;
    a->pos.tensors++;
    if (a->pos.bytes > a->peak) a->peak = a->pos.bytes;
    return t;
}

dq_tensor_t *dq_arena_like(dq_arena_t *a, const dq_tensor_t *like, const char *name) {
    return dq_arena_tensor(a, like->dtype, like->ndim, like->shape, name);
}

dq_tensor_t *dq_arena_view(dq_arena_t *a, const dq_tensor_t *view) {
    if (a->pos.tensors >= a->max_tensors) {
        dq_error("arena: no tensor struct left for view '%s' (max_tensors=%zu)", view->name,
                 a->max_tensors);
        return NULL;
    }
    dq_tensor_t *t = &a->tensors[a->pos.tensors++];
    *t = *view;
    return t;
}

dq_arena_mark_t dq_arena_mark(const dq_arena_t *a) { return a->pos; }

void dq_arena_reset(dq_arena_t *a, dq_arena_mark_t m) {
    assert(m.bytes <= a->pos.bytes && m.tensors <= a->pos.tensors);
    a->pos = m;
}

size_t dq_arena_used(const dq_arena_t *a) { return a->pos.bytes; }
size_t dq_arena_peak(const dq_arena_t *a) { return a->peak; }
size_t dq_arena_capacity(const dq_arena_t *a) { return a->buf->size; }
