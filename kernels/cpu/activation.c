/* kernels/cpu/activation.c: GELU (erf), quick GELU, SiLU and GEGLU, elementwise. */
#include <math.h>

#include "kernels/cpu/cpu_internal.h"

/* torch's exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))); erf from dq_cpu_erff, which
 * vectorises where glibc's erff is a scalar call (it made GEGLU as slow as its projection). */
static inline float s_gelu(float x) {
    return 0.5f * x * (1.0f + dq_cpu_erff(x * (float) M_SQRT1_2));
}

/* Elements per work item of the threaded loops: whole blocks, and few enough items to share. */
#define S_SPAN 4096
#define S_LEN(i0, n) ((n) - (i0) < S_SPAN ? (n) - (i0) : S_SPAN)

/* Floats per block: every element goes through one fixed-length vector loop, a multiple of
 * every clone's vector width (4, 8, 16 floats), so no element runs in a scalar remainder.
 * GCC contracts a*b+c into FMAs (in the avx512f clone; the avx2 and default clones have no FMA)
 * and did so differently in a loop's vector body and its scalar remainder, which made an
 * element's bits depend on where a call's range started and ended. A range's tail therefore
 * runs on a zero-padded copy: the bits are the same wherever an element falls
 * (test_activation_offsets), so group_norm_silu's channel spans give silu's bits and an image
 * gives the same bits alone and in a batch. The FMAs take a quarter off SiLU's time
 * (bench/RESULTS.md); their price: an AVX-512 machine rounds a few elements differently (up to
 * 2 ulp on 4% of SiLU's) from an AVX2 or older one, as sgemm does. */
#define S_BLOCK 32

/* The block functions and s_blocks are inlined into each clone: one copy of the vector code per
 * clone, compiled for its target, and no indirect call per block. */
#define S_INLINE static inline __attribute__((always_inline))

typedef void (*s_block_fn)(const float *x, const float *m, float *y, float a);

/* y = x * sigmoid(a * x) over one block (x == y is fine: each element reads then writes its
 * own slot). m is unused. */
S_INLINE void s_sigmoid_mul_block(const float *x, const float *m, float *y, float a) {
    (void) m;
#pragma omp simd
    for (int i = 0; i < S_BLOCK; i++) y[i] = x[i] / (1.0f + dq_cpu_expf(-a * x[i]));
}

/* y = gelu(x) over one block. */
S_INLINE void s_gelu_block(const float *x, const float *m, float *y, float a) {
    (void) m;
    (void) a;
#pragma omp simd
    for (int i = 0; i < S_BLOCK; i++) y[i] = s_gelu(x[i]);
}

/* y = m * gelu(x) over one block: GEGLU's hidden * gelu(gate). */
S_INLINE void s_gelu_mul_block(const float *x, const float *m, float *y, float a) {
    (void) a;
#pragma omp simd
    for (int i = 0; i < S_BLOCK; i++) y[i] = m[i] * s_gelu(x[i]);
}

/* Runs block over n elements (m may be NULL): whole blocks in place, the tail (if any) on
 * zero-padded copies through the same call site, so each clone holds one copy of the vector
 * loop (two inlined copies could be vectorised differently) and every element runs it. */
S_INLINE void s_blocks(s_block_fn block, const float *x, const float *m, float *y, int64_t n,
                       float a) {
    float px[S_BLOCK], pm[S_BLOCK], py[S_BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += S_BLOCK) {
        int64_t len = n - i0 < S_BLOCK ? n - i0 : S_BLOCK;
        const float *bx = x + i0, *bm = m ? m + i0 : NULL;
        float *by = y + i0;
        if (len < S_BLOCK) {
            for (int i = 0; i < S_BLOCK; i++) {
                px[i] = i < len ? bx[i] : 0.0f;
                pm[i] = bm && i < len ? bm[i] : 0.0f;
            }
            bx = px;
            bm = bm ? pm : NULL;
            by = py;
        }
        block(bx, bm, by, a);
        if (len < S_BLOCK)
            for (int64_t i = 0; i < len; i++) y[i0 + i] = py[i];
    }
}

#define S_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* y = x * sigmoid(a * x) over n elements, vectorised. The one loop behind silu, quick GELU and
 * group_norm_silu, so they round alike. */
S_CLONES void dq_cpu_sigmoid_mul(const float *x, float *y, int64_t n, float a) {
    s_blocks(s_sigmoid_mul_block, x, NULL, y, n, a);
}

/* y = gelu(x) * (m ? m : 1) over n elements, vectorised: GELU and GEGLU's h * gelu(gate). */
S_CLONES static void s_gelu_mul(const float *x, const float *m, float *y, int64_t n) {
    if (m)
        s_blocks(s_gelu_mul_block, x, m, y, n, 0.0f);
    else
        s_blocks(s_gelu_block, x, NULL, y, n, 0.0f);
}

int dq_cpu_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    int64_t n = dq_tensor_nelements(x);
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (n >= DQ_CPU_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += S_SPAN) s_gelu_mul(xd + i0, NULL, yd + i0, S_LEN(i0, n));
    return 0;
}

int dq_cpu_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    int64_t n = dq_tensor_nelements(x);
    const float *xd = x->data;
    float *yd = y->data;
    /* transformers' QuickGELUActivation: x * sigmoid(1.702 * x). */
#pragma omp parallel for if (n >= DQ_CPU_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += S_SPAN)
        dq_cpu_sigmoid_mul(xd + i0, yd + i0, S_LEN(i0, n), 1.702f);
    return 0;
}

int dq_cpu_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    int64_t n = dq_tensor_nelements(x);
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (n >= DQ_CPU_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += S_SPAN)
        dq_cpu_sigmoid_mul(xd + i0, yd + i0, S_LEN(i0, n), 1.0f);
    return 0;
}

int dq_cpu_geglu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    // x: [R, 2F], y: [R, F]; diffusers: hidden, gate = x.chunk(2, -1); y = hidden * gelu(gate)
    int64_t f = y->shape[y->ndim - 1], rows = dq_tensor_nrows(y);
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (rows * f >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *hid = xd + r * 2 * f, *gate = hid + f;
        s_gelu_mul(gate, hid, yd + r * f, f);
    }
    return 0;
}
