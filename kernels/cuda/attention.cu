/* kernels/cuda/attention.cu: multi-head scaled dot-product attention. The f16 mode takes the
 * fused kernel (attention_flash.cu) where it applies; otherwise, and always in the f32 mode,
 * attention is blocked over queries: per batch and query block, all heads at once through
 * strided-batched GEMMs, the scores in the workspace. F16 activations keep the scores f32 there
 * too (f16 scores could overflow), the probabilities rounded to f16 for the product with V. */
#include <math.h>

#include "kernels/cuda/cuda_internal.h"

/* 256-byte aligned size: the start of the next workspace region. */
static size_t s_align(size_t b) { return (b + 255) & ~(size_t) 255; }

/* Queries per block of the GEMM path: as many as fit `avail` workspace bytes at `per_key` bytes
 * per (query, head, key), capped at Lq; also checks cuBLAS's int dimensions. 0 on failure
 * (logged). */
static int64_t s_query_block(const dq_cuda_ctx_t *ctx, size_t avail, size_t per_key, int heads,
                             int64_t lq, int64_t lk, int64_t hd) {
    int64_t bq = (int64_t) (avail / (per_key * (size_t) heads * (size_t) lk));
    if (bq < 1) {
        dq_error("attention: cuda workspace of %zu bytes cannot hold %d rows of %lld scores "
                 "(%zu bytes each)",
                 ctx->work_bytes, heads, (long long) lk, per_key);
        return 0;
    }
    if (bq > lq) bq = lq;
    if (lk > INT32_MAX || hd > INT32_MAX || bq * lk > INT32_MAX) {
        dq_error("attention: Lk=%lld beyond cuBLAS's int dimensions", (long long) lk);
        return 0;
    }
    return bq;
}

/* The GEMM path on F16 activations: per query block, S = scale * Q K^T as f32 scores (f16
 * products, f32 accumulation and output), softmax into f16 probabilities P beside them, then
 * Y = P V in f16. Same blocking and leading dimensions as the f32 path below. */
static int s_attention_f16(dq_cuda_ctx_t *ctx, const dq_tensor_t *q, const dq_tensor_t *k,
                           const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    int64_t batch = q->shape[0], lq = q->shape[1], lk = k->shape[1], hd = q->shape[2];
    int64_t d = hd / heads;
    /* Per query: heads * Lk f32 scores and as many f16 probabilities (+ alignment slack). */
    size_t avail = ctx->work_bytes > 512 ? ctx->work_bytes - 512 : 0;
    int64_t bq = s_query_block(ctx, avail, sizeof(float) + sizeof(__half), heads, lq, lk, hd);
    if (bq < 1) return -1;
    const float scale = (float) (1.0 / sqrt((double) d)), one = 1.0f, zero = 0.0f;
    const __half *qd = (const __half *) q->data, *kd = (const __half *) k->data,
                 *vd = (const __half *) v->data;
    __half *yd = (__half *) y->data;
    float *s = (float *) ctx->work;
    __half *p = (__half *) ((char *) ctx->work +
                            s_align((size_t) heads * (size_t) (bq * lk) * sizeof(float)));
    for (int64_t b = 0; b < batch; b++) {
        const __half *qb = qd + b * lq * hd, *kb = kd + b * lk * hd, *vb = vd + b * lk * hd;
        __half *yb = yd + b * lq * hd;
        for (int64_t i0 = 0; i0 < lq; i0 += bq) {
            int64_t nq = lq - i0 < bq ? lq - i0 : bq;
            DQ_CUBLAS_CHECK(ctx->device,
                            cublasGemmStridedBatchedEx(
                                ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int) lk, (int) nq, (int) d,
                                &scale, kb, CUDA_R_16F, (int) hd, (long long) d, qb + i0 * hd,
                                CUDA_R_16F, (int) hd, (long long) d, &zero, s, CUDA_R_32F,
                                (int) lk, (long long) (nq * lk), heads, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
            if (dq_cuda_softmax_rows(ctx->stream, ctx->device, s, DQ_DTYPE_F32, p, DQ_DTYPE_F16,
                                     (int64_t) heads * nq, lk, causal, nq, i0))
                return -1;
            DQ_CUBLAS_CHECK(ctx->device,
                            cublasGemmStridedBatchedEx(
                                ctx->cublas, CUBLAS_OP_N, CUBLAS_OP_N, (int) d, (int) nq, (int) lk,
                                &one, vb, CUDA_R_16F, (int) hd, (long long) d, p, CUDA_R_16F,
                                (int) lk, (long long) (nq * lk), &zero, yb + i0 * hd, CUDA_R_16F,
                                (int) hd, (long long) d, heads, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
        }
    }
    return 0;
}

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
    if (q->dtype == DQ_DTYPE_F16) return s_attention_f16(ctx, q, k, v, heads, causal, y);
    /* Scores S[H, bq, Lk] for bq queries of every head. */
    int64_t bq = s_query_block(ctx, ctx->work_bytes, sizeof(float), heads, lq, lk, hd);
    if (bq < 1) return -1;
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
            if (dq_cuda_softmax_rows(ctx->stream, ctx->device, s, DQ_DTYPE_F32, s, DQ_DTYPE_F32,
                                     (int64_t) heads * nq, lk, causal, nq, i0))
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
