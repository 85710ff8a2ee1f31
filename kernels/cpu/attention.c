/* kernels/cpu/attention.c: multi-head scaled dot-product attention, blocked over queries (the
 * sgemm path, for when kernels/cpu/attention_tiled.c does not apply). */
#include <cblas.h>
#include <math.h>

#include "common/log.h"
#include "kernels/cpu/cpu_internal.h"

/* Most floats of scores one query block holds (4 MiB), see the block size below. */
#define DQ_CPU_ATTN_BLOCK_FLOATS ((int64_t) 1 << 20)

int dq_cpu_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                     const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    if (dq_cpu_attention_tiled(be, q, k, v, heads, causal, y) == 0) return 0;
    dq_cpu_ctx_t *ctx = dq_cpu_ctx(be);
    // q, y: [B, Lq, H*D]; k, v: [B, Lk, H*D]; head h is columns [h*D, h*D+D)
    int64_t batch = q->shape[0], lq = q->shape[1], lk = k->shape[1], hd = q->shape[2];
    int64_t d = hd / heads;
    /* The score block S[bq, Lk] is the only scratch: bq queries at a time keep 4096x4096
     * scores (64 MiB per head) from ever existing at once. */
    int64_t bq = (int64_t) (ctx->work_floats / (size_t) lk);
    if (bq < 1) {
        dq_error("attention: cpu workspace of %zu floats cannot hold one row of %lld scores",
                 ctx->work_floats, (long long) lk);
        return -1;
    }
    /* Cap the block near the L2+L3 share of a core so the scores stay in cache from QK^T through
     * softmax to PV: at Lq = Lk = 4096, D = 40 this took 15-20% off the op's CPU time compared
     * with 4096-row blocks (measured single-threaded on a 2-core EPYC, 2 MiB L2, 32 MiB L3). */
    if (bq > DQ_CPU_ATTN_BLOCK_FLOATS / lk) bq = DQ_CPU_ATTN_BLOCK_FLOATS / lk;
    if (bq < 1) bq = 1;
    if (bq > lq) bq = lq;
    float scale = (float) (1.0 / sqrt((double) d));
    const float *qd = q->data, *kd = k->data, *vd = v->data;
    float *yd = y->data, *s = ctx->work;
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t h = 0; h < heads; h++) {
            const float *qh = qd + b * lq * hd + h * d;
            const float *kh = kd + b * lk * hd + h * d;
            const float *vh = vd + b * lk * hd + h * d;
            float *yh = yd + b * lq * hd + h * d;
            for (int64_t i0 = 0; i0 < lq; i0 += bq) {
                int64_t nq = lq - i0 < bq ? lq - i0 : bq;
                /* S = scale * Q[i0.., :] K^T: [nq, Lk] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint) nq, (blasint) lk,
                            (blasint) d, scale, qh + i0 * hd, (blasint) hd, kh, (blasint) hd,
                            0.0f, s, (blasint) lk);
#pragma omp parallel for if (nq * lk >= DQ_CPU_PAR_MIN)
                for (int64_t i = 0; i < nq; i++) {
                    float *row = s + i * lk;
                    if (causal)
                        for (int64_t j = i0 + i + 1; j < lk; j++) row[j] = -INFINITY;
                    dq_cpu_softmax_row(row, lk);
                }
                /* Y[i0.., :] = P V: [nq, D] written with the packed row stride H*D */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint) nq, (blasint) d,
                            (blasint) lk, 1.0f, s, (blasint) lk, vh, (blasint) hd, 0.0f,
                            yh + i0 * hd, (blasint) hd);
            }
        }
    }
    return 0;
}
