/* kernels/cuda/softmax.cu: softmax over the last dimension (max subtracted), also the row step
 * of attention (with its causal mask). */
#include "kernels/cuda/cuda_internal.h"
#include "kernels/cuda/reduce.h"

/* One block per row. Causal: row r is query q0 + r % rows_per_head, keys past it get -inf. */
__global__ void s_softmax_kernel(const float *x, float *y, int64_t n, int causal,
                                 int64_t rows_per_head, int64_t q0) {
    __shared__ float shf[32];
    __shared__ double shd[32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * n;
    float *yr = y + r * n;
    int64_t last = causal ? q0 + r % rows_per_head : n - 1; /* last unmasked key */
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        if (i <= last) mx = fmaxf(mx, xr[i]);
    mx = dq_cuda_block_max(mx, shf);
    if (mx == -INFINITY) {
        /* Every entry masked (or -inf): torch yields NaN, as the CPU backend does. */
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = NAN;
        return;
    }
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float e = i <= last ? expf(xr[i] - mx) : 0.0f;
        yr[i] = e;
        sum += e;
    }
    /* Sum in double like the CPU; each thread reads back only what it wrote itself. */
    float inv = (float) (1.0 / dq_cuda_block_sum(sum, shd));
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] *= inv;
}

int dq_cuda_softmax_rows(cudaStream_t st, int dev, const float *x, float *y, int64_t rows,
                         int64_t n, bool causal, int64_t rows_per_head, int64_t q0) {
    if (rows > INT32_MAX) {
        dq_error("softmax: %lld rows, more than one launch takes", (long long) rows);
        return -1;
    }
    DQ_CUDA_LAUNCH(s_softmax_kernel, (unsigned) rows, 256, 0, st, x, y, n, causal ? 1 : 0,
                   rows_per_head < 1 ? 1 : rows_per_head, q0);
    DQ_CUDA_LAUNCHED(dev, "softmax");
    return 0;
}

int dq_cuda_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    return dq_cuda_softmax_rows(ctx->stream, ctx->device, (const float *) x->data,
                                (float *) y->data, dq_tensor_nrows(x), x->shape[x->ndim - 1],
                                false, 1, 0);
}
