/* kernels/cpu/cpu_internal.h: what the CPU backend's op files share (context, prototypes). */
#ifndef DQ_CPU_INTERNAL_H
#define DQ_CPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <math.h>
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

/* exp(x) in f32 within 2 ulp (|relative error| < 2.5e-7 measured against double exp), written
 * so loops calling it vectorise: glibc's expf is a scalar call and dominated attention time.
 * Cody-Waite reduction x = n*ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial for e^r (its
 * truncation error r^8/8! < 6e-9), then scaling by 2^n built in the exponent bits.
 * x < -87 gives 0 (torch gives a denormal below 1.2e-38), x > 88 gives +inf, NaN stays NaN. */
static inline float dq_cpu_expf(float x) {
    /* Quiet comparisons (isgreater, isless): they cannot trap, so the compiler may turn these
     * selects into vector blends without AVX-512 masks. NaN lands on -87, so the cast stays
     * defined. */
    float xc = isgreater(x, -87.0f) ? x : -87.0f;
    xc = isless(xc, 88.0f) ? xc : 88.0f;
    /* Round x/ln2 to nearest: adding 1.5*2^23 pushes the fraction bits out. */
    float nf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - nf * 0.693145751953125f; /* ln2 high part: exact product for |n| < 2^9 */
    r = r - nf * 1.42860682030941723e-6f;   /* ln2 low part */
    float p = 1.0f / 5040.0f + r * (1.0f / 40320.0f);
    p = 1.0f / 720.0f + r * p;
    p = 1.0f / 120.0f + r * p;
    p = 1.0f / 24.0f + r * p;
    p = 1.0f / 6.0f + r * p;
    p = 0.5f + r * p;
    p = 1.0f + r * p;
    p = 1.0f + r * p;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t) nf + 127) * (1 << 23)};
    float y = p * scale.f;
    y = isless(x, -87.0f) ? 0.0f : y;
    y = isgreater(x, 88.0f) ? (float) INFINITY : y;
    return isunordered(x, x) ? x : y; /* NaN in, NaN out (a quiet test, like the ones above) */
}

/* erf(x) in f32 with absolute error below 6e-7 (4.7e-7 measured), vectorisable: Abramowitz &
 * Stegun 7.1.26, erf|x| = 1 - t(a1 + t(a2 + ... a5 t)) e^{-x^2}, t = 1/(1 + p|x|). GELU needs
 * only absolute accuracy (erf is added to 1): on x ~ N(0, 4) GELU built on it is 7e-8 (relative
 * L2) from exact and 1.1e-7 from torch 2.x's own CPU gelu, which is itself 9e-8 from exact
 * (measured with the reference env). NaN stays NaN. */
static inline float dq_cpu_erff(float x) {
    float ax = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = 1.061405429f;
    poly = -1.453152027f + t * poly;
    poly = 1.421413741f + t * poly;
    poly = -0.284496736f + t * poly;
    poly = 0.254829592f + t * poly;
    float r = 1.0f - t * poly * dq_cpu_expf(-ax * ax);
    return copysignf(r, x);
}

/* y[i] = x[i] * sigmoid(a * x[i]) = x[i] / (1 + exp(-a * x[i])) for n floats (x == y is fine),
 * vectorised through dq_cpu_expf: SiLU is a = 1, quick GELU a = 1.702. An element's bits do not
 * depend on where it falls in [x, x + n) (group_norm_silu relies on it). */
void dq_cpu_sigmoid_mul(const float *x, float *y, int64_t n, float a);

/* In-place numerically stable softmax of one row of n floats (sums in double). */
void dq_cpu_softmax_row(float *row, int64_t n);

/* Op entry points (contracts in kernels/ops.h; arguments already validated). */
int dq_cpu_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y);
int dq_cpu_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                  float alpha, dq_tensor_t *y);
int dq_cpu_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                  dq_tensor_t *y);
/* How a residual lines up with y's planes in dq_cpu_prefill. */
typedef enum {
    DQ_CPU_RES_SAME,  /* residual[p, i]: y's shape */
    DQ_CPU_RES_PLANE, /* residual[p]: one value a plane (an NCHW conv's [N, Co, 1, 1]) */
    DQ_CPU_RES_ROW,   /* residual[i]: one row for every plane (an NHWC image's [1, 1, Co]) */
} dq_cpu_res_t;
/* y[p, i] = residual (lined up as `res` says) + bias over planes of `inner` floats, where bias is
 * bias[i] along each plane when channels is 0 (a linear's rows, an NHWC conv's pixels) and
 * bias[p % channels] for the whole plane otherwise (an NCHW conv's channels): the value a
 * linear or conv's GEMM then accumulates onto (beta = 1), as torch's addmm starts from the bias.
 * residual and bias may be NULL (a missing term is left out, not added as zero) and residual
 * may be y. Returns whether y holds a value to accumulate onto. */
bool dq_cpu_prefill(float *y, const float *residual, dq_cpu_res_t res, const float *bias,
                    int64_t planes, int64_t inner, int64_t channels);
/* 3x3, stride 1, padding 1 convolution with F32 weights as Winograd F(2x2, 3x3)
 * (kernels/cpu/conv2d_winograd.c): 0 when done, 1 when it does not apply (another geometry or
 * dtype, too few output tiles, a workspace too small) and the caller must compute it otherwise.
 * Never fails. */
int dq_cpu_conv2d_winograd(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                           const dq_tensor_t *bias, int stride, int padding,
                           const dq_tensor_t *residual, dq_tensor_t *y);
int dq_cpu_conv2d_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                       const dq_tensor_t *bias, int stride, int padding,
                       const dq_tensor_t *residual, dq_tensor_t *y);
int dq_cpu_group_norm_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                           const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cpu_group_norm_silu_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                                const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cpu_upsample_nearest2x_nhwc(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
/* group_norm then SiLU, applied to each stretch of y while it is still in cache; the same bits
 * as dq_cpu_group_norm followed by dq_cpu_silu. */
int dq_cpu_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                           const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cpu_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, float eps, dq_tensor_t *y);
int dq_cpu_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cpu_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                     const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y);
/* Attention through packed K^T and V and AVX-512 register tiles (kernels/cpu/attention_tiled.c):
 * 0 when done, 1 when it does not apply (no AVX-512, or the workspace cannot hold the packed
 * K and V) and the caller must compute it otherwise. Never fails. */
int dq_cpu_attention_tiled(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
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
