/* kernels/cuda/attention.cu: multi-head scaled dot-product attention. The f16 mode takes the
 * fused kernel (attention_flash.cu) where it applies; otherwise, and always in the f32 mode,
 * attention is blocked over queries: per batch and query block, all heads at once through
 * strided-batched GEMMs, the scores in the workspace. */
#include <math.h>

#include "kernels/cuda/cuda_internal.h"

int dq_cuda_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                      const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    // q, y: [B, Lq, H*D]; k, v: [B, Lk, H*D]; head h is columns [h*D, h*D+D)
    int64_t batch = q->shape[0], lq = q->shape[1], lk = k->shape[1], hd = q->shape[2];
    int64_t d = hd / heads;
    if (ctx->precision == DQ_CUDA_PRECISION_F16 && ctx->attention_fused) {
        int rc = dq_cuda_attention_flash(ctx, q, k, v, heads, causal, y);
        if (rc <= 0) return rc;
    }
    /* Scores S[H, bq, Lk] for bq queries of every head. */
    int64_t bq = (int64_t) (ctx->work_bytes / (sizeof(float) * (size_t) heads * (size_t) lk));
    if (bq < 1) {
        dq_error("attention: cuda workspace of %zu bytes cannot hold %d rows of %lld scores",
                 ctx->work_bytes, heads, (long long) lk);
        return -1;
    }
    if (bq > lq) bq = lq;
    if (lk > INT32_MAX || hd > INT32_MAX || bq * lk > INT32_MAX) {
        dq_error("attention: Lk=%lld beyond cuBLAS's int dimensions", (long long) lk);
        return -1;
    }
    const float scale = (float) (1.0 / sqrt((double) d)), one = 1.0f, zero = 0.0f;
    const float *qd = (const float *) q->data, *kd = (const float *) k->data,
                *vd = (const float *) v->data;
    float *yd = (float *) y->data, *s = (float *) ctx->work;
    for (int64_t b = 0; b < batch; b++) {
        const float *qb = qd + b * lq * hd, *kb = kd + b * lk * hd, *vb = vd + b * lk * hd;
        float *yb = yd + b * lq * hd;
        for (int64_t i0 = 0; i0 < lq; i0 += bq) {
            int64_t nq = lq - i0 < bq ? lq - i0 : bq;
            /* S_h[nq, Lk] = scale * Q_h K_h^T; column-major S_h^T (Lk x nq) = K_h (T) @ Q_h^T,
             * heads D columns apart in q and k, nq*Lk floats apart in S. */
            DQ_CUBLAS_CHECK(ctx->device,
                            cublasSgemmStridedBatched(
                                ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int) lk, (int) nq, (int) d,
                                &scale, kb, (int) hd, (long long) d, qb + i0 * hd, (int) hd,
                                (long long) d, &zero, s, (int) lk, (long long) (nq * lk), heads));
            if (dq_cuda_softmax_rows(ctx->stream, ctx->device, s, s, (int64_t) heads * nq, lk,
                                     causal, nq, i0))
                return -1;
            /* Y_h[nq, D] = P_h V_h, written with the packed row stride H*D: column-major
             * Y_h^T (D x nq) = V_h^T (D x Lk) @ P_h^T (Lk x nq). */
            DQ_CUBLAS_CHECK(ctx->device,
                            cublasSgemmStridedBatched(
                                ctx->cublas, CUBLAS_OP_N, CUBLAS_OP_N, (int) d, (int) nq, (int) lk,
                                &one, vb, (int) hd, (long long) d, s, (int) lk,
                                (long long) (nq * lk), &zero, yb + i0 * hd, (int) hd,
                                (long long) d, heads));
        }
    }
    return 0;
}
