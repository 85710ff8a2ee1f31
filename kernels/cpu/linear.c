/* kernels/cpu/linear.c: linear (x @ W^T + b) and batched matmul through OpenBLAS sgemm. */
#include <cblas.h>
#include <string.h>

#include "common/log.h"
#include "kernels/cpu/cpu_internal.h"
#include "kernels/dtype.h"

const float *dq_cpu_weight_rows(const dq_tensor_t *w, int64_t row0, int64_t nrows, int64_t k,
                                float *dst) {
    size_t esz = dq_dtype_size(w->dtype);
    const char *src = (const char *) w->data + (size_t) row0 * (size_t) k * esz;
    if (w->dtype == DQ_DTYPE_F32) return (const float *) src;
#pragma omp parallel for if (nrows * k >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < nrows; r++)
        dq_convert_to_f32(dst + r * k, src + (size_t) (r * k) * esz, w->dtype, (size_t) k);
    return dst;
}

int dq_cpu_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y) {
    dq_cpu_ctx_t *ctx = dq_cpu_ctx(be);
    // x: [M, K] (leading dims flattened), w: [N, K], y: [M, N]
    int64_t n = w->shape[0], k = w->shape[1], m = dq_tensor_nrows(x);
    const float *xd = x->data;
    float *yd = y->data;
    /* F32 weights: one sgemm. Others: blocks of output columns whose weight rows fit. */
    int64_t block = n;
    if (w->dtype != DQ_DTYPE_F32) {
        block = (int64_t) (ctx->work_floats / (size_t) k);
        if (block < 1) {
            dq_error("linear: cpu workspace of %zu floats cannot hold one weight row of %lld",
                     ctx->work_floats, (long long) k);
            return -1;
        }
        if (block > n) block = n;
    }
    /* y starts as residual + bias and the sgemms add the product (beta = 1): torch's addmm
     * order for the bias, and no pass of its own for either term. */
    float beta = dq_cpu_prefill(yd, residual ? residual->data : NULL, DQ_CPU_RES_SAME,
                                bias ? bias->data : NULL, m, n, 0)
                     ? 1.0f
                     : 0.0f;
    for (int64_t n0 = 0; n0 < n; n0 += block) {
        int64_t nb = n - n0 < block ? n - n0 : block;
        const float *wp = dq_cpu_weight_rows(w, n0, nb, k, ctx->work);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint) m, (blasint) nb,
                    (blasint) k, 1.0f, xd, (blasint) k, wp, (blasint) k, beta, yd + n0,
                    (blasint) n);
    }
    return 0;
}

int dq_cpu_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                  float alpha, dq_tensor_t *y) {
    (void) be;
    // a: [B, M, K], b: [B or 1, K, N] (trans_b: [B or 1, N, K]), y: [B, M, N]
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t n = y->shape[y->ndim - 1];
    int64_t batch = dq_tensor_nelements(a) / (m * k);
    bool shared_b = dq_tensor_nelements(b) == k * n;
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
    blasint ldb = (blasint) (trans_b ? k : n);
    CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    if (shared_b) {
        /* One b for every batch: the batches stack into one tall matrix. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (blasint) (batch * m), (blasint) n,
                    (blasint) k, alpha, ad, (blasint) k, bd, ldb, 0.0f, yd, (blasint) n);
        return 0;
    }
    for (int64_t i = 0; i < batch; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (blasint) m, (blasint) n, (blasint) k, alpha,
                    ad + i * m * k, (blasint) k, bd + i * k * n, ldb, 0.0f, yd + i * m * n,
                    (blasint) n);
    return 0;
}
