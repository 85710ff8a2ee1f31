/* kernels/cuda/attention.cu: multi-head scaled dot-product attention. The f16 mode takes the
 * fused kernel (attention_flash.cu) where it applies; otherwise, and always in the f32 mode,
 * attention is blocked over queries: per batch and query block, all heads at once through
 * strided-batched GEMMs, the scores in the workspace. F16/BF16 activations keep the scores f32
 * there too (f16 scores could overflow), the probabilities rounded to the activations' dtype for
 * the product with V. */
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

/* The GEMM path for F32, F16 or BF16 activations: per batch and query block, S = scale * Q K^T for
 * all heads (f32 scores in the workspace), the softmax rows into P (in place for F32; for F16/BF16
 * beside S, rounded to that dtype), then Y = P V. cuBLAS is column-major: a row-major [R, C] matrix
 * is the column-major C x R one with ld = C, so S_h^T (Lk x nq) = K_h (T) @ Q_h^T and Y_h^T (D x
 * nq) = V_h^T (D x Lk) @ P_h^T (Lk x nq), heads D elements apart in q, k, v and y (the packed row
 * stride H*D) and nq*Lk apart in S and P. */
static int s_attention_gemm(dq_cuda_ctx_t *ctx, const dq_tensor_t *q, const dq_tensor_t *k,
                            const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    int64_t batch = q->shape[0], lq = q->shape[1], lk = k->shape[1], hd = q->shape[2];
    int64_t d = hd / heads;
    const bool act16 = dq_cuda_is_act16(q->dtype);
    const cudaDataType ct = dq_cuda_blas_type(q->dtype);
    const size_t esz = dq_dtype_size(q->dtype);
    /* Per (query, head, key): an f32 score, and for 16-bit activations a 16-bit probability (+
     * alignment slack). */
    size_t avail = act16 ? (ctx->work_bytes > 512 ? ctx->work_bytes - 512 : 0) : ctx->work_bytes;
    int64_t bq = s_query_block(ctx, avail, sizeof(float) + (act16 ? 2 : 0), heads, lq, lk, hd);
    if (bq < 1) return -1;
    const float scale = (float) (1.0 / sqrt((double) d)), one = 1.0f, zero = 0.0f;
    float *sc = (float *) ctx->work;
    void *p =
        act16 ? (char *) ctx->work + s_align((size_t) heads * (size_t) (bq * lk) * sizeof(float))
              : ctx->work;
    const char *qd = (const char *) q->data, *kd = (const char *) k->data,
               *vd = (const char *) v->data;
    char *yd = (char *) y->data;
    for (int64_t b = 0; b < batch; b++) {
        const char *qb = qd + (size_t) (b * lq * hd) * esz, *kb = kd + (size_t) (b * lk * hd) * esz,
                   *vb = vd + (size_t) (b * lk * hd) * esz;
        char *yb = yd + (size_t) (b * lq * hd) * esz;
        for (int64_t i0 = 0; i0 < lq; i0 += bq) {
            int64_t nq = lq - i0 < bq ? lq - i0 : bq;
            DQ_CUBLAS_CHECK(ctx->device,
                            cublasGemmStridedBatchedEx(
                                ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int) lk, (int) nq, (int) d,
                                &scale, kb, ct, (int) hd, (long long) d,
                                qb + (size_t) (i0 * hd) * esz, ct, (int) hd, (long long) d, &zero,
                                sc, CUDA_R_32F, (int) lk, (long long) (nq * lk), heads,
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            if (dq_cuda_softmax_rows(ctx->stream, ctx->device, sc, DQ_DTYPE_F32, p, q->dtype,
                                     (int64_t) heads * nq, lk, causal, nq, i0))
                return -1;
            DQ_CUBLAS_CHECK(ctx->device,
                            cublasGemmStridedBatchedEx(
                                ctx->cublas, CUBLAS_OP_N, CUBLAS_OP_N, (int) d, (int) nq, (int) lk,
                                &one, vb, ct, (int) hd, (long long) d, p, ct, (int) lk,
                                (long long) (nq * lk), &zero, yb + (size_t) (i0 * hd) * esz, ct,
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
    if (ctx->precision == DQ_CUDA_PRECISION_F16 && ctx->attention_fused) {
        int rc = dq_cuda_attention_flash(ctx, q, k, v, heads, causal, y);
        if (rc <= 0) return rc;
    }
    return s_attention_gemm(ctx, q, k, v, heads, causal, y);
}
