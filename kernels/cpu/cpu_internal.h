/* kernels/cpu/cpu_internal.h: what the CPU backend's op files share (context, prototypes). */
#ifndef DQ_CPU_INTERNAL_H
#define DQ_CPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

/* Ops below this many elements run on one thread: waking the team costs more than they do. */
#define DQ_CPU_PAR_MIN 8192

typedef struct {
    float *work;        /* owned: workspace for im2col bands, score blocks, weight panels */
    size_t work_floats; /* capacity of work in floats */
} dq_cpu_ctx_t;

static inline dq_cpu_ctx_t *dq_cpu_ctx(dq_backend_t *be) { return (dq_cpu_ctx_t *) be->ctx; }

/* Rows [row0, row0+nrows) of a contiguous 2-D-like weight whose rows have k elements, as f32:
 * a pointer into w itself when it is F32, else the rows converted into dst (which must hold
 * nrows*k floats). */
const float *dq_cpu_weight_rows(const dq_tensor_t *w, int64_t row0, int64_t nrows, int64_t k,
                                float *dst);

/* In-place numerically stable softmax of one row of n floats (sums in double). */
void dq_cpu_softmax_row(float *row, int64_t n);

/* Op entry points (contracts in kernels/ops.h; arguments already validated). */
int dq_cpu_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, dq_tensor_t *y);
int dq_cpu_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                  float alpha, dq_tensor_t *y);
int dq_cpu_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, int stride, int padding, dq_tensor_t *y);
int dq_cpu_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cpu_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, float eps, dq_tensor_t *y);
int dq_cpu_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                     const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y);
int dq_cpu_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_geglu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_add(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y);
int dq_cpu_mul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y);
int dq_cpu_scale(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y);
int dq_cpu_upsample_nearest2x(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_concat(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                  dq_tensor_t *y);
int dq_cpu_cpy(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_get_rows(dq_backend_t *be, const dq_tensor_t *table, const dq_tensor_t *ids,
                    dq_tensor_t *y);

#endif
