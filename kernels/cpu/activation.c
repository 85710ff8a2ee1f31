/* kernels/cpu/activation.c: GELU (erf), quick GELU, SiLU and GEGLU, elementwise. */
#include <math.h>

#include "kernels/cpu/cpu_internal.h"

/* torch's exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))). */
static inline float s_gelu(float x) { return 0.5f * x * (1.0f + erff(x * (float) M_SQRT1_2)); }

int dq_cpu_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    int64_t n = dq_tensor_nelements(x);
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (n >= DQ_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = s_gelu(xd[i]);
    return 0;
}

int dq_cpu_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    int64_t n = dq_tensor_nelements(x);
    const float *xd = x->data;
    float *yd = y->data;
    /* transformers' QuickGELUActivation: x * sigmoid(1.702 * x). */
#pragma omp parallel for if (n >= DQ_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = xd[i] / (1.0f + expf(-1.702f * xd[i]));
    return 0;
}

int dq_cpu_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    int64_t n = dq_tensor_nelements(x);
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (n >= DQ_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = xd[i] / (1.0f + expf(-xd[i]));
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
        float *yr = yd + r * f;
        for (int64_t i = 0; i < f; i++) yr[i] = hid[i] * s_gelu(gate[i]);
    }
    return 0;
}
