/* kernels/cuda/linear.cu: linear (x @ W^T + b, + residual) and batched matmul through cuBLAS, on
 * F32, F16 or BF16 activations (16-bit: 16-bit products accumulated in f32, CUBLAS_COMPUTE_32F).
 * The bias and residual are written into y first and the GEMM accumulates onto them (beta = 1).
 * Row-major y[M, N] = x[M, K] @ w[N, K]^T is column-major y^T = w^T... as cuBLAS sees it: C(N x M)
 * = op(A) op(B) with A = w (K x N col-major, transposed) and B = x (K x M). */
#include "kernels/cuda/cuda_internal.h"

/* y[M, N] = x[M, K] @ w[N, K]^T + beta * y with every operand f32 on the device. */
static int s_sgemm_xwt(dq_cuda_ctx_t *ctx, const float *x, const float *w, float *y, int64_t m,
                       int64_t n, int64_t k, int64_t ldy, float beta) {
    const float one = 1.0f;
    DQ_CUBLAS_CHECK(ctx->device,
                    cublasSgemm(ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int) n, (int) m, (int) k,
                                &one, w, (int) k, x, (int) k, &beta, y, (int) ldy));
    return 0;
}

/* f16 mode with F16 weights: x rounded to f16 into the workspace in row blocks, then
 * f16 x f16 products accumulated in f32 (onto beta * y), written as f32. */
static int s_linear_f16(dq_cuda_ctx_t *ctx, const float *x, const void *w, float *y, int64_t m,
                        int64_t n, int64_t k, float beta) {
    int64_t block = (int64_t) (ctx->work_bytes / (2 * (size_t) k));
    if (block < 1) {
        dq_error("linear: cuda workspace of %zu bytes cannot hold one f16 row of %lld",
                 ctx->work_bytes, (long long) k);
        return -1;
    }
    const float one = 1.0f;
    for (int64_t m0 = 0; m0 < m; m0 += block) {
        int64_t mb = m - m0 < block ? m - m0 : block;
        if (dq_cuda_convert_to_16(ctx->stream, ctx->device, x + m0 * k, DQ_DTYPE_F32, mb * k,
                                  ctx->work, DQ_DTYPE_F16))
            return -1;
        DQ_CUBLAS_CHECK(ctx->device,
                        cublasGemmEx(ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int) n, (int) mb,
                                     (int) k, &one, w, CUDA_R_16F, (int) k, ctx->work, CUDA_R_16F,
                                     (int) k, &beta, y + m0 * n, CUDA_R_32F, (int) n,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    return 0;
}

/* y[M, N] (ldy) = x[M, K] @ w[N, K]^T + beta * y with x, w and y of the 16-bit dtype dt on the
 * device, f32 accumulation. */
static int s_gemm16_xwt(dq_cuda_ctx_t *ctx, dq_dtype_t dt, const void *x, const void *w, void *y,
                        int64_t m, int64_t n, int64_t k, int64_t ldy, float beta) {
    const float one = 1.0f;
    const cudaDataType ct = dq_cuda_blas_type(dt);
    DQ_CUBLAS_CHECK(ctx->device,
                    cublasGemmEx(ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int) n, (int) m, (int) k,
                                 &one, w, ct, (int) k, x, ct, (int) k, &beta, y, ct, (int) ldy,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return 0;
}

/* F16 or BF16 activations (either mode): weights of that dtype used in place, others rounded
 * to it in the workspace in blocks of rows, each block writing its columns of y. */
static int s_linear_act16(dq_cuda_ctx_t *ctx, dq_dtype_t dt, const void *x, const dq_tensor_t *w,
                          void *y, int64_t m, int64_t n, int64_t k, float beta) {
    if (w->dtype == dt) return s_gemm16_xwt(ctx, dt, x, w->data, y, m, n, k, n, beta);
    int64_t block = (int64_t) (ctx->work_bytes / (2 * (size_t) k));
    if (block < 1) {
        dq_error("linear: cuda workspace of %zu bytes cannot hold one %s weight row of %lld",
                 ctx->work_bytes, dq_dtype_name(dt), (long long) k);
        return -1;
    }
    if (block > n) block = n;
    size_t esz = dq_dtype_size(w->dtype);
    for (int64_t n0 = 0; n0 < n; n0 += block) {
        int64_t nb = n - n0 < block ? n - n0 : block;
        if (dq_cuda_convert_to_16(ctx->stream, ctx->device,
                                  (const char *) w->data + (size_t) (n0 * k) * esz, w->dtype,
                                  nb * k, ctx->work, dt) ||
            s_gemm16_xwt(ctx, dt, x, ctx->work, (uint16_t *) y + n0, m, nb, k, n, beta))
            return -1;
    }
    return 0;
}

/* F16/BF16 weights in f32 mode: blocks of weight rows widened into the workspace, as the CPU
 * backend does, so the products are the CPU's. */
static int s_linear_widened(dq_cuda_ctx_t *ctx, const float *xd, const dq_tensor_t *w, float *yd,
                            int64_t m, int64_t n, int64_t k, float beta) {
    int64_t block = (int64_t) (ctx->work_bytes / (sizeof(float) * (size_t) k));
    if (block < 1) {
        dq_error("linear: cuda workspace of %zu bytes cannot hold one weight row of %lld",
                 ctx->work_bytes, (long long) k);
        return -1;
    }
    if (block > n) block = n;
    float *wbuf = (float *) ctx->work;
    size_t esz = dq_dtype_size(w->dtype);
    for (int64_t n0 = 0; n0 < n; n0 += block) {
        int64_t nb = n - n0 < block ? n - n0 : block;
        if (dq_cuda_convert_to_f32(ctx->stream, ctx->device,
                                   (const char *) w->data + (size_t) (n0 * k) * esz, w->dtype,
                                   nb * k, wbuf) ||
            s_sgemm_xwt(ctx, xd, wbuf, yd + n0, m, nb, k, n, beta))
            return -1;
    }
    return 0;
}

int dq_cuda_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    // x: [M, K] (leading dims flattened), w: [N, K], y: [M, N]
    int64_t n = w->shape[0], k = w->shape[1], m = dq_tensor_nrows(x);
    if (n > INT32_MAX || k > INT32_MAX || m > INT32_MAX) {
        dq_error("linear: M=%lld N=%lld K=%lld beyond cuBLAS's int dimensions", (long long) m,
                 (long long) n, (long long) k);
        return -1;
    }
    const float *xd = (const float *) x->data;
    float *yd = (float *) y->data;
    /* y starts as residual + bias (each may be absent) and the product accumulates onto it. */
    float beta;
    if (dq_cuda_prefill(ctx->stream, ctx->device, y->dtype, y->data,
                        residual ? residual->data : NULL, bias ? (const float *) bias->data : NULL,
                        dq_cuda_bcast_rows(m, n), &beta))
        return -1;
    if (dq_cuda_is_act16(x->dtype))
        return s_linear_act16(ctx, x->dtype, x->data, w, y->data, m, n, k, beta);
    if (w->dtype == DQ_DTYPE_F16 && ctx->precision == DQ_CUDA_PRECISION_F16)
        return s_linear_f16(ctx, xd, w->data, yd, m, n, k, beta);
    if (w->dtype == DQ_DTYPE_F32)
        return s_sgemm_xwt(ctx, xd, (const float *) w->data, yd, m, n, k, n, beta);
    return s_linear_widened(ctx, xd, w, yd, m, n, k, beta);
}

int dq_cuda_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                   float alpha, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    // a: [B, M, K], b: [B or 1, K, N] (trans_b: [B or 1, N, K]), y: [B, M, N]
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t n = y->shape[y->ndim - 1];
    int64_t batch = dq_tensor_nelements(a) / (m * k);
    bool shared_b = dq_tensor_nelements(b) == k * n;
    if (n > INT32_MAX || k > INT32_MAX || batch * m > INT32_MAX) {
        dq_error("matmul: B=%lld M=%lld N=%lld K=%lld beyond cuBLAS's int dimensions",
                 (long long) batch, (long long) m, (long long) n, (long long) k);
        return -1;
    }
    const float zero = 0.0f;
    const float *ad = (const float *) a->data, *bd = (const float *) b->data;
    float *yd = (float *) y->data;
    /* Column-major: y^T (N x M) = op(b) (N x K) @ a^T (K x M). */
    cublasOperation_t ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    int ldb = (int) (trans_b ? k : n);
    if (dq_cuda_is_act16(a->dtype)) {
        /* F16/BF16 activations: the same products on 16-bit data, f32 accumulation. */
        const cudaDataType ct = dq_cuda_blas_type(a->dtype);
        if (shared_b) {
            DQ_CUBLAS_CHECK(ctx->device,
                            cublasGemmEx(ctx->cublas, ob, CUBLAS_OP_N, (int) n, (int) (batch * m),
                                         (int) k, &alpha, b->data, ct, ldb, a->data, ct, (int) k,
                                         &zero, y->data, ct, (int) n, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT));
            return 0;
        }
        DQ_CUBLAS_CHECK(ctx->device,
                        cublasGemmStridedBatchedEx(
                            ctx->cublas, ob, CUBLAS_OP_N, (int) n, (int) m, (int) k, &alpha,
                            b->data, ct, ldb, (long long) (k * n), a->data, ct, (int) k,
                            (long long) (m * k), &zero, y->data, ct, (int) n, (long long) (m * n),
                            (int) batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return 0;
    }
    if (shared_b) {
        /* One b for every batch: the batches stack into one tall a. */
        DQ_CUBLAS_CHECK(ctx->device,
                        cublasSgemm(ctx->cublas, ob, CUBLAS_OP_N, (int) n, (int) (batch * m),
                                    (int) k, &alpha, bd, ldb, ad, (int) k, &zero, yd, (int) n));
        return 0;
    }
    DQ_CUBLAS_CHECK(ctx->device,
                    cublasSgemmStridedBatched(ctx->cublas, ob, CUBLAS_OP_N, (int) n, (int) m,
                                              (int) k, &alpha, bd, ldb, (long long) (k * n), ad,
                                              (int) k, (long long) (m * k), &zero, yd, (int) n,
                                              (long long) (m * n), (int) batch));
    return 0;
}
