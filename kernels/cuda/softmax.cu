/* kernels/cuda/softmax.cu: softmax over the last dimension (max subtracted), also the row step
 * of attention (with its causal mask). */
#include "kernels/cuda/cuda_internal.h"

/* Rows per block: one warp per row, so a row's max and sum are warp shuffles with no block
 * barrier, and short rows (77 keys of cross-attention) do not leave most of a block idle. */
#define S_ROWS_PER_BLOCK (DQ_CUDA_THREADS / 32)

/* Warp-wide max and sum (every lane gets the result). */
__device__ __forceinline__ float s_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ double s_warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Row r = blockIdx.x * S_ROWS_PER_BLOCK + warp. Causal: row r is query q0 + r % rows_per_head,
 * keys past it get -inf. */
__global__ void s_softmax_kernel(const float *x, float *y, int64_t rows, int64_t n, int causal,
                                 int64_t rows_per_head, int64_t q0) {
    int64_t r = (int64_t) blockIdx.x * S_ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return; /* a whole warp leaves together: no barrier below is block-wide */
    const float *xr = x + r * n;
    float *yr = y + r * n;
    int64_t last = causal ? q0 + r % rows_per_head : n - 1; /* last unmasked key */
    float mx = -INFINITY;
    for (int64_t i = lane; i < n; i += 32)
        if (i <= last) mx = fmaxf(mx, xr[i]);
    mx = s_warp_max(mx);
    if (mx == -INFINITY) {
        /* Every entry masked (or -inf): torch yields NaN, as the CPU backend does. */
        for (int64_t i = lane; i < n; i += 32) yr[i] = NAN;
        return;
    }
    double sum = 0.0;
    for (int64_t i = lane; i < n; i += 32) {
        float e = i <= last ? expf(xr[i] - mx) : 0.0f;
        yr[i] = e;
        sum += e;
    }
    /* Sum in double like the CPU; each lane reads back only what it wrote itself. */
    float inv = (float) (1.0 / s_warp_sum(sum));
    for (int64_t i = lane; i < n; i += 32) yr[i] *= inv;
}

int dq_cuda_softmax_rows(cudaStream_t st, int dev, const float *x, float *y, int64_t rows,
                         int64_t n, bool causal, int64_t rows_per_head, int64_t q0) {
    int64_t blocks = (rows + S_ROWS_PER_BLOCK - 1) / S_ROWS_PER_BLOCK;
    if (blocks > INT32_MAX) {
        dq_error("softmax: %lld rows, more than one launch takes", (long long) rows);
        return -1;
    }
    DQ_CUDA_LAUNCH(s_softmax_kernel, (unsigned) blocks, DQ_CUDA_THREADS, 0, st, x, y, rows, n,
                   causal ? 1 : 0, rows_per_head < 1 ? 1 : rows_per_head, q0);
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
