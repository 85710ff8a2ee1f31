/* kernels/cpu/norm.c: group norm (optionally fused with SiLU) and layer norm (two-pass mean and
 * biased variance in double). */
#include <math.h>

#include "kernels/cpu/cpu_internal.h"

/* Mean and 1/sqrt(var + eps) of n floats; var is the biased (population) variance, as torch's
 * norms use. Two passes in double: one-pass E[x^2]-E[x]^2 loses digits on large means. */
static void s_stats(const float *x, int64_t n, float eps, double *mean, double *rstd) {
    /* simd reductions: the compiler may then keep one partial sum per lane (a different but
     * no less accurate order in double); a strict left-to-right sum stays scalar. */
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += x[i];
    double mu = s / (double) n, v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < n; i++) {
        double d = x[i] - mu;
        v += d * d;
    }
    *mean = mu;
    *rstd = 1.0 / sqrt(v / (double) n + (double) eps);
}

/* Floats of one channel normalised before SiLU runs over them: 8 KiB, read back from L1 rather
 * than memory. On the CPU that saves little (bench/ops_cpu: about the time of the two ops, the
 * SiLU's exp and divide being the cost, not the second pass); the fused op pays off on CUDA. */
#define S_SILU_SPAN 2048

/* Group norm of x into y, then (silu) SiLU over each span of y just written. The SiLU is
 * dq_cpu_sigmoid_mul, the loop dq_cpu_silu runs, on the same floats: the same bits as the two
 * ops one after the other (tests/unit/test_ops_cpu.c compares them). */
static void s_group_norm(const dq_tensor_t *x, const dq_tensor_t *gamma, const dq_tensor_t *beta,
                         int groups, float eps, bool silu, dq_tensor_t *y) {
    // x: [N, C, S...], y: same; gamma, beta: [C] or NULL
    int64_t n = x->shape[0], c = x->shape[1];
    int64_t s = dq_tensor_nelements(x) / (n * c), cpg = c / groups;
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *yd = y->data;
#pragma omp parallel for if (n * c * s >= DQ_CPU_PAR_MIN)
    for (int64_t ng = 0; ng < n * groups; ng++) {
        const float *xg = xd + ng * cpg * s;
        float *yg = yd + ng * cpg * s;
        double mean, rstd;
        s_stats(xg, cpg * s, eps, &mean, &rstd);
        int64_t c0 = (ng % groups) * cpg;
        for (int64_t ci = 0; ci < cpg; ci++) {
            /* y = (x - mean) * rstd * gamma + beta, folded into y = x * a + b per channel. */
            double a = rstd * (gd ? gd[c0 + ci] : 1.0);
            double b = (bd ? bd[c0 + ci] : 0.0) - mean * a;
            const float *xc = xg + ci * s;
            float *yc = yg + ci * s;
            for (int64_t i0 = 0; i0 < s; i0 += S_SILU_SPAN) {
                int64_t len = s - i0 < S_SILU_SPAN ? s - i0 : S_SILU_SPAN;
                for (int64_t i = i0; i < i0 + len; i++) yc[i] = (float) (xc[i] * a + b);
                if (silu) dq_cpu_sigmoid_mul(yc + i0, yc + i0, len, 1.0f);
            }
        }
    }
}

int dq_cpu_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    (void) be;
    s_group_norm(x, gamma, beta, groups, eps, false, y);
    return 0;
}

int dq_cpu_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                           const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    (void) be;
    s_group_norm(x, gamma, beta, groups, eps, true, y);
    return 0;
}

/* Group norm of channels-last x[N, S..., C] into y: a group's values are cpg consecutive floats
 * at each of the S positions. Then (silu) SiLU over y in spans, dq_cpu_sigmoid_mul as
 * dq_cpu_silu runs it: the same bits as the two ops one after the other. */
static void s_group_norm_nhwc(const dq_tensor_t *x, const dq_tensor_t *gamma,
                              const dq_tensor_t *beta, int groups, float eps, bool silu,
                              dq_tensor_t *y) {
    int64_t n = x->shape[0], c = x->shape[x->ndim - 1];
    int64_t s = dq_tensor_nelements(x) / (n * c), cpg = c / groups;
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *yd = y->data;
#pragma omp parallel for if (n * c * s >= DQ_CPU_PAR_MIN)
    for (int64_t ng = 0; ng < n * groups; ng++) {
        int64_t c0 = (ng % groups) * cpg;
        const float *xg = xd + (ng / groups) * s * c + c0;
        float *yg = yd + (ng / groups) * s * c + c0;
        /* two passes in double, as s_stats, over the group's strided runs */
        double sum = 0.0, var = 0.0;
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; i < cpg; i++) sum += xg[p * c + i];
        double mean = sum / (double) (s * cpg);
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; i < cpg; i++) {
                double d = xg[p * c + i] - mean;
                var += d * d;
            }
        double rstd = 1.0 / sqrt(var / (double) (s * cpg) + (double) eps);
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; i < cpg; i++) {
                double a = rstd * (gd ? gd[c0 + i] : 1.0);
                double b = (bd ? bd[c0 + i] : 0.0) - mean * a;
                yg[p * c + i] = (float) (xg[p * c + i] * a + b);
            }
    }
    if (!silu) return;
    int64_t total = n * s * c;
#pragma omp parallel for if (total >= DQ_CPU_PAR_MIN)
    for (int64_t i0 = 0; i0 < total; i0 += S_SILU_SPAN)
        dq_cpu_sigmoid_mul(yd + i0, yd + i0, total - i0 < S_SILU_SPAN ? total - i0 : S_SILU_SPAN,
                           1.0f);
}

int dq_cpu_group_norm_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                           const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    (void) be;
    s_group_norm_nhwc(x, gamma, beta, groups, eps, false, y);
    return 0;
}

int dq_cpu_group_norm_silu_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                                const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    (void) be;
    s_group_norm_nhwc(x, gamma, beta, groups, eps, true, y);
    return 0;
}

int dq_cpu_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, float eps, dq_tensor_t *y) {
    (void) be;
    // x: [R, D] (leading dims flattened), y: same; gamma, beta: [D] or NULL
    int64_t d = x->shape[x->ndim - 1], rows = dq_tensor_nrows(x);
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *yd = y->data;
#pragma omp parallel for if (rows * d >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = xd + r * d;
        float *yr = yd + r * d;
        double mean, rstd;
        s_stats(xr, d, eps, &mean, &rstd);
        for (int64_t i = 0; i < d; i++) {
            double v = (xr[i] - mean) * rstd;
            if (gd) v = v * gd[i] + bd[i];
            yr[i] = (float) v;
        }
    }
    return 0;
}
