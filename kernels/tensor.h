/* kernels/tensor.h: the tensor struct (dtype, shape, byte strides, data) and view helpers. */
#ifndef DQ_TENSOR_H
#define DQ_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/dtype.h"

/*
 * Layout (read this before writing a network)
 * -------------------------------------------
 * shape[] is in PyTorch order: shape[0] is the OUTERMOST dimension and shape[ndim-1] the
 * innermost, so an image batch is [N, C, H, W] and a token sequence is [B, L, D], exactly as the
 * reference code prints them. A freshly created tensor is row-major contiguous:
 *     strides[ndim-1] = element size, strides[i] = strides[i+1] * shape[i+1].
 * strides[] are in BYTES. Dimensions past ndim are 1 with stride = element size; they never
 * matter but keep loops simple. A view (reshape, permute, slice) shares data with its source and
 * may be non-contiguous; ops say whether they accept such views (most require contiguous inputs;
 * dq_op_cpy turns any view into a contiguous tensor).
 *
 * Write the shape as a comment wherever a tensor crosses a function boundary:
 *     // x: [N, C, H, W] f32
 */

#define DQ_TENSOR_MAX_DIMS 4
#define DQ_TENSOR_NAME_MAX 48

struct dq_buffer;

typedef struct dq_tensor {
    dq_dtype_t dtype;                    /* element type of the stored data */
    int ndim;                            /* 1..DQ_TENSOR_MAX_DIMS */
    int64_t shape[DQ_TENSOR_MAX_DIMS];   /* PyTorch order, outermost first; 1 past ndim */
    size_t strides[DQ_TENSOR_MAX_DIMS];  /* byte step per index of each dimension */
    void *data;                          /* borrowed: first element, inside buffer's memory */
    struct dq_buffer *buffer;            /* borrowed: where data lives (NULL: plain host memory) */
    char name[DQ_TENSOR_NAME_MAX];       /* for error messages and debugging; may be "" */
} dq_tensor_t;

/* Fills *t as a contiguous tensor over data (which must hold dq_tensor_nbytes(t) bytes).
 * buffer may be NULL for memory the caller owns on the host. name may be NULL.
 * Returns 0, or -1 (and logs) when ndim is out of range or a dimension is < 1. */
int dq_tensor_init(dq_tensor_t *t, dq_dtype_t dtype, int ndim, const int64_t *shape, void *data,
                   struct dq_buffer *buffer, const char *name);

/* Copies name (truncated to DQ_TENSOR_NAME_MAX-1 bytes); NULL means "". */
void dq_tensor_set_name(dq_tensor_t *t, const char *name);

/* Number of elements (product of the shape). */
int64_t dq_tensor_nelements(const dq_tensor_t *t);
/* Bytes the elements take when contiguous (nelements * element size). */
size_t dq_tensor_nbytes(const dq_tensor_t *t);
/* True when strides are exactly the row-major strides of the shape. */
bool dq_tensor_is_contiguous(const dq_tensor_t *t);
/* True when a and b have the same ndim and shape (dtype and strides are not compared). */
bool dq_tensor_same_shape(const dq_tensor_t *a, const dq_tensor_t *b);
/* Number of rows when the innermost dimension is a row: nelements / shape[ndim-1]. */
int64_t dq_tensor_nrows(const dq_tensor_t *t);

/* Writes "name[2, 4, 8] F32" into buf (always terminated). Returns buf, for use in messages. */
const char *dq_tensor_describe(const dq_tensor_t *t, char *buf, size_t len);

/* Views. Each fills *dst to share src's data and buffer; the name is src's unless set later.
 * They return 0, or -1 (and log, naming src) when the request does not fit src. */

/* Same elements, new shape. src must be contiguous; nelements must match. */
int dq_tensor_reshape(dq_tensor_t *dst, const dq_tensor_t *src, int ndim, const int64_t *shape);
/* Dimension i of dst is dimension perm[i] of src (perm is a permutation of 0..ndim-1).
 * The result is usually not contiguous; pass it to dq_op_cpy to materialise it. */
int dq_tensor_permute(dq_tensor_t *dst, const dq_tensor_t *src, const int *perm);
/* Elements [start, start+len) along dimension dim (e.g. a chunk of the last dimension). */
int dq_tensor_slice(dq_tensor_t *dst, const dq_tensor_t *src, int dim, int64_t start, int64_t len);

#endif
