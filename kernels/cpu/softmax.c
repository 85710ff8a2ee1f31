/* kernels/cpu/softmax.c: softmax over the last dimension (max subtracted, sum in double). */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

/* Cloned per ISA: the exp loop is most of attention's time after the two sgemms. */
__attribute__((target_clones("avx512f", "avx2", "default"))) void dq_cpu_softmax_row(float *row,
                                                                              int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (row[i] > mx) mx = row[i];
    if (mx == -INFINITY) {
        /* Every entry masked: torch yields NaN here; no caller of ours produces such a row. */
        for (int64_t i = 0; i < n; i++) row[i] = NAN;
        return;
    }
#pragma omp simd
    for (int64_t i = 0; i < n; i++) row[i] = dq_cpu_expf(row[i] - mx);
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) sum += row[i];
    float inv = (float) (1.0 / sum);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) row[i] *= inv;
}

int dq_cpu_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    // x: [R, D] (leading dims flattened), y: same
    int64_t d = x->shape[x->ndim - 1], rows = dq_tensor_nrows(x);
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (rows * d >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        if (yd != xd) memcpy(yd + r * d, xd + r * d, (size_t) d * sizeof *yd);
        dq_cpu_softmax_row(yd + r * d, d);
    }
    return 0;
}
