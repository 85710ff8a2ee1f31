/* kernels/cpu/prefill.c: y = residual + bias, written before a linear's or conv's GEMM
 * accumulates onto it (dq_op_*_residual). */
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

bool dq_cpu_prefill(float *y, const float *residual, dq_cpu_res_t res, const float *bias,
                    int64_t planes, int64_t inner, int64_t channels) {
    if (!bias && (!residual || residual == y)) return residual != NULL;
#pragma omp parallel for if (planes * inner >= DQ_CPU_PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        float *yp = y + p * inner;
        if (residual && res == DQ_CPU_RES_PLANE) {
            float v = bias ? residual[p] + bias[p % channels] : residual[p];
            for (int64_t i = 0; i < inner; i++) yp[i] = v;
            continue;
        }
        const float *rp = !residual             ? NULL
                          : res == DQ_CPU_RES_ROW ? residual
                                                  : residual + p * inner;
        if (!bias) {
            memcpy(yp, rp, (size_t) inner * sizeof *yp);
        } else if (channels == 0) {
            if (rp) {
                for (int64_t i = 0; i < inner; i++) yp[i] = rp[i] + bias[i];
            } else {
                memcpy(yp, bias, (size_t) inner * sizeof *yp);
            }
        } else {
            float bv = bias[p % channels];
            if (rp) {
                for (int64_t i = 0; i < inner; i++) yp[i] = rp[i] + bv;
            } else {
                for (int64_t i = 0; i < inner; i++) yp[i] = bv;
            }
        }
    }
    return true;
}
