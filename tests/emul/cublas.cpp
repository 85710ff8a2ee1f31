/* tests/emul/cublas.cpp: the emulated cuBLAS subset, with cuBLAS's column-major semantics:
 * C(m x n) = alpha * op(A)(m x k) * op(B)(k x n) + beta * C, element (i, j) of a matrix with
 * leading dimension ld at [i + j * ld]. Sums in double; beta 0 ignores what C held (NaN too),
 * as BLAS does. Arguments are checked as cuBLAS documents (leading dimensions at least the rows
 * of the stored matrix), so a wrong ld fails here as it would there. */
#include <cmath>
#include <cstring>
#include <vector>

#include "tests/emul/include/cublas_v2.h"

struct cublasContext {
    cudaStream_t stream;
};

namespace {

/* An element of a matrix of type t at index i. */
double s_get(const void *p, cudaDataType t, long long i) {
    switch (t) {
    case CUDA_R_32F: return ((const float *) p)[i];
    case CUDA_R_16F: return __half2float(((const __half *) p)[i]);
    case CUDA_R_16BF: {
        uint16_t b = ((const uint16_t *) p)[i];
        return __uint_as_float((uint32_t) b << 16);
    }
    }
    return NAN;
}

void s_put(void *p, cudaDataType t, long long i, double v) {
    switch (t) {
    case CUDA_R_32F: ((float *) p)[i] = (float) v; return;
    case CUDA_R_16F: ((__half *) p)[i] = __float2half_rn((float) v); return;
    case CUDA_R_16BF: ((__nv_bfloat16 *) p)[i] = __float2bfloat16_rn((float) v); return;
    }
}

bool s_type_ok(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF; }

/* op(X)(r, c) of a stored matrix with leading dimension ld. */
double s_op(const void *x, cudaDataType t, cublasOperation_t op, int ld, int r, int c) {
    return op == CUBLAS_OP_N ? s_get(x, t, r + (long long) c * ld)
                             : s_get(x, t, c + (long long) r * ld);
}

/* Checks a GEMM's arguments as cuBLAS does, then queues it on the handle's stream (recorded
 * while the stream captures a graph; alpha and beta are read now, as host-pointer mode does). */
cublasStatus_t s_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                      int k, double alpha, const void *a, cudaDataType at, int lda, const void *b,
                      cudaDataType bt, int ldb, double beta, void *c, cudaDataType ct, int ldc);

void s_gemm_run(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha,
                const void *a, cudaDataType at, int lda, const void *b, cudaDataType bt, int ldb,
                double beta, void *c, cudaDataType ct, int ldc);

cublasStatus_t s_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                      int k, double alpha, const void *a, cudaDataType at, int lda, const void *b,
                      cudaDataType bt, int ldb, double beta, void *c, cudaDataType ct, int ldc) {
    if (m < 0 || n < 0 || k < 0 || (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) ||
        (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) || !s_type_ok(at) || !s_type_ok(bt) ||
        !s_type_ok(ct))
        return CUBLAS_STATUS_INVALID_VALUE;
    /* Stored A is m x k (N) or k x m (T); its rows bound lda. Same for B and C. */
    int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
        ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    dq_emul_stream_op(h->stream, [=] {
        s_gemm_run(ta, tb, m, n, k, alpha, a, at, lda, b, bt, ldb, beta, c, ct, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

void s_gemm_run(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha,
                const void *a, cudaDataType at, int lda, const void *b, cudaDataType bt, int ldb,
                double beta, void *c, cudaDataType ct, int ldc) {
    /* op(A) as m x k and op(B) as n x k, row-major doubles: the sums run over contiguous rows. */
    std::vector<double> ad((size_t) m * k), bd((size_t) n * k);
    for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++) ad[(size_t) i * k + l] = s_op(a, at, ta, lda, i, l);
    for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++) bd[(size_t) j * k + l] = s_op(b, bt, tb, ldb, l, j);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            const double *ar = &ad[(size_t) i * k], *br = &bd[(size_t) j * k];
            double s = 0.0;
            for (int l = 0; l < k; l++) s += ar[l] * br[l];
            long long ci = i + (long long) j * ldc;
            double v = alpha * s + (beta != 0.0 ? beta * s_get(c, ct, ci) : 0.0);
            s_put(c, ct, ci, v);
        }
}

} // namespace

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new cublasContext{nullptr};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t st) {
    h->stream = st;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    (void) h;
    (void) mode;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    (void) h;
    (void) ws;
    (void) bytes;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    }
    return "unknown error";
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *a, int lda,
                           const float *b, int ldb, const float *beta, float *c, int ldc) {
    return s_gemm(h, ta, tb, m, n, k, *alpha, a, CUDA_R_32F, lda, b, CUDA_R_32F, ldb, *beta, c,
                  CUDA_R_32F, ldc);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *a, int lda,
                                         long long stride_a, const float *b, int ldb,
                                         long long stride_b, const float *beta, float *c,
                                         int ldc, long long stride_c, int batch) {
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (int i = 0; i < batch; i++) {
        cublasStatus_t st = s_gemm(h, ta, tb, m, n, k, *alpha, a + i * stride_a, CUDA_R_32F, lda,
                                   b + i * stride_b, CUDA_R_32F, ldb, *beta, c + i * stride_c,
                                   CUDA_R_32F, ldc);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *a, cudaDataType at,
                            int lda, const void *b, cudaDataType bt, int ldb, const void *beta,
                            void *c, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo) {
    (void) algo;
    /* With a 32F compute type, alpha and beta are floats. */
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return s_gemm(h, ta, tb, m, n, k, *(const float *) alpha, a, at, lda, b, bt, ldb,
                  *(const float *) beta, c, ct, ldc);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *a, cudaDataType at,
                                          int lda, long long stride_a, const void *b,
                                          cudaDataType bt, int ldb, long long stride_b,
                                          const void *beta, void *c, cudaDataType ct, int ldc,
                                          long long stride_c, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    auto elem = [](cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; };
    for (int i = 0; i < batch; i++) {
        cublasStatus_t st = cublasGemmEx(
            h, ta, tb, m, n, k, alpha, (const char *) a + i * stride_a * elem(at), at, lda,
            (const char *) b + i * stride_b * elem(bt), bt, ldb, beta,
            (char *) c + i * stride_c * elem(ct), ct, ldc, compute, algo);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    return CUBLAS_STATUS_SUCCESS;
}
