/* kernels/cpu/norm.c: group norm and layer norm (two-pass mean and biased variance in double). */
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

int dq_cpu_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    (void) be;
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
            for (int64_t i = 0; i < s; i++) yc[i] = (float) (xc[i] * a + b);
        }
    }
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
