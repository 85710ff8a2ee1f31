/* kernels/cpu/activation.c: GELU (erf), quick GELU, SiLU and GEGLU, elementwise. */
#include <math.h>

#include "kernels/cpu/cpu_internal.h"

/* torch's exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))); erf from dq_cpu_erff, which
 * vectorises where glibc's erff is a scalar call (it made GEGLU as slow as its projection). */
static inline float s_gelu(float x) {
    return 0.5f * x * (1.0f + dq_cpu_erff(x * (float) M_SQRT1_2));
}

/* Elements per work item of the threaded loops: whole vectors, and few enough items to share. */
#define S_SPAN 4096
#define S_LEN(i0, n) ((n) - (i0) < S_SPAN ? (n) - (i0) : S_SPAN)

/* The activation loops round every a*b+c twice (no FMA contraction): GCC contracts the vector
 * body and the scalar remainder of a clone differently (the avx512f clone of the SiLU loop had 11
 * FMAs in each but different ones), so an element's bits depended on whether it fell in a
 * vector or in the remainder, i.e. on where a call's range started and ended. Without
 * contraction group_norm_silu's per-channel spans give group_norm + silu's bits exactly
 * (tests/unit/test_ops_cpu.c), and a result does not depend on how a batch is cut. */
#define S_NO_FMA __attribute__((optimize("fp-contract=off")))

/* y = x * sigmoid(a * x) over n elements, vectorised. The one loop behind silu, quick GELU and
 * group_norm_silu, so they round alike. */
S_NO_FMA __attribute__((target_clones("avx512f", "avx2", "default"))) void
dq_cpu_sigmoid_mul(const float *x, float *y, int64_t n, float a) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + dq_cpu_expf(-a * x[i]));
}

/* y = gelu(x) * (m ? m : 1) over n elements, vectorised: GELU and GEGLU's h * gelu(gate). */
S_NO_FMA __attribute__((target_clones("avx512f", "avx2", "default"))) static void
s_gelu_mul(const float *x, const float *m, float *y, int64_t n) {
    if (m) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = m[i] * s_gelu(x[i]);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = s_gelu(x[i]);
    }
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
