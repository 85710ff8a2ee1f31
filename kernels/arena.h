/* kernels/arena.h: a scratch arena (bump allocator with mark/reset) for activations. */
#ifndef DQ_ARENA_H
#define DQ_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/tensor.h"

/* An arena owns one backend buffer for tensor data and a host array of tensor structs. A forward
 * pass takes its activations from it with dq_arena_tensor; nothing is freed one by one. Size it
 * once per (model, batch, image size): run the pass once with a generous arena and read
 * dq_arena_peak, or add up the shapes. Typical use per block:
 *     dq_arena_mark_t m = dq_arena_mark(a);
 *     ... temporaries ...
 *     dq_arena_reset(a, m);   // frees everything taken after the mark
 * Tensors returned are 64-byte aligned and contiguous; their data is uninitialised. */
typedef struct dq_arena dq_arena_t;

/* A position to return to: bytes and tensor structs in use when it was taken. */
typedef struct {
    size_t bytes;
    size_t tensors;
} dq_arena_mark_t;

/* Creates an arena with bytes of data memory on backend be and room for max_tensors tensor
 * structs. Returns NULL (logged) when out of memory or an argument is 0. */
dq_arena_t *dq_arena_new(dq_backend_t *be, size_t bytes, size_t max_tensors);
/* Frees the arena and its buffer and sets *arena_p to NULL. Tensors from it become invalid. */
void dq_arena_destroy(dq_arena_t **arena_p);

/* A new contiguous tensor of the given dtype and shape (PyTorch order), named name (may be NULL).
 * Returns NULL (logged with the name and the sizes) when the arena is full or the shape is bad. */
dq_tensor_t *dq_arena_tensor(dq_arena_t *a, dq_dtype_t dtype, int ndim, const int64_t *shape,
                             const char *name);
/* Shorthand for a tensor of like's dtype and shape (an activation like another). */
dq_tensor_t *dq_arena_like(dq_arena_t *a, const dq_tensor_t *like, const char *name);
/* A tensor struct (from the arena) holding a copy of view; for keeping views next to tensors. */
dq_tensor_t *dq_arena_view(dq_arena_t *a, const dq_tensor_t *view);

dq_arena_mark_t dq_arena_mark(const dq_arena_t *a);
/* Returns to mark m: everything allocated after it is released. m must come from this arena and
 * be no later than the current position (asserted: passing a stale mark is our bug). */
void dq_arena_reset(dq_arena_t *a, dq_arena_mark_t m);

size_t dq_arena_used(const dq_arena_t *a);     /* data bytes in use now */
size_t dq_arena_peak(const dq_arena_t *a);     /* most data bytes ever in use */
size_t dq_arena_capacity(const dq_arena_t *a); /* data bytes available in all */

#endif
