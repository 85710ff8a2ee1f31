/* kernels/cuda/softmax.cu: softmax over the last dimension (max subtracted) on F32, F16 or BF16
 * activations, also the row step of attention (with its causal mask; f32 scores in,
 * probabilities out in the activations' dtype). */
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
 * keys past it get -inf. y may be x (same type): each lane reads x[i] before it writes y[i],
 * and only in the last pass, after every read of the row's other elements. */
template <typename TI, typename TO>
__global__ void s_softmax_kernel(const TI *x, TO *y, int64_t rows, int64_t n, int causal,
                                 int64_t rows_per_head, int64_t q0) {
    int64_t r = (int64_t) blockIdx.x * S_ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return; /* a whole warp leaves together: no barrier below is block-wide */
    const TI *xr = x + r * n;
    TO *yr = y + r * n;
    int64_t last = causal ? q0 + r % rows_per_head : n - 1; /* last unmasked key */
    float mx = -INFINITY;
    for (int64_t i = lane; i < n; i += 32)
        if (i <= last) mx = fmaxf(mx, dq_cuda_ld(xr + i));
    mx = s_warp_max(mx);
    if (mx == -INFINITY) {
        /* Every entry masked (or -inf): torch yields NaN, as the CPU backend does. */
        for (int64_t i = lane; i < n; i += 32) dq_cuda_st(yr + i, NAN);
        return;
    }
    double sum = 0.0;
    for (int64_t i = lane; i < n; i += 32) sum += i <= last ? expf(dq_cuda_ld(xr + i) - mx) : 0.0f;
    /* Sum in double like the CPU; the exponentials are recomputed (the same bits) rather than
     * stored and read back, so an f16 output is rounded once. */
    float inv = (float) (1.0 / s_warp_sum(sum));
    for (int64_t i = lane; i < n; i += 32)
        dq_cuda_st(yr + i, (i <= last ? expf(dq_cuda_ld(xr + i) - mx) : 0.0f) * inv);
}

template <typename TI, typename TO>
static int s_softmax_launch(cudaStream_t st, int dev, const void *x, void *y, int64_t rows,
                            int64_t n, bool causal, int64_t rows_per_head, int64_t q0) {
    int64_t blocks = (rows + S_ROWS_PER_BLOCK - 1) / S_ROWS_PER_BLOCK;
    if (blocks > INT32_MAX) {
        dq_error("softmax: %lld rows, more than one launch takes", (long long) rows);
        return -1;
    }
    /* (A two-argument template-id would split DQ_CUDA_LAUNCH's arguments at its comma.) */
    void (*kernel)(const TI *, TO *, int64_t, int64_t, int, int64_t, int64_t) =
        s_softmax_kernel<TI, TO>;
    DQ_CUDA_LAUNCH(kernel, (unsigned) blocks, DQ_CUDA_THREADS, 0, st, (const TI *) x, (TO *) y,
                   rows, n, causal ? 1 : 0, rows_per_head < 1 ? 1 : rows_per_head, q0);
    DQ_CUDA_LAUNCHED(dev, "softmax");
    return 0;
}

int dq_cuda_softmax_rows(cudaStream_t st, int dev, const void *x, dq_dtype_t xt, void *y,
                         dq_dtype_t yt, int64_t rows, int64_t n, bool causal,
                         int64_t rows_per_head, int64_t q0) {
    if (xt == DQ_DTYPE_F32 && yt == DQ_DTYPE_F32)
        return s_softmax_launch<float, float>(st, dev, x, y, rows, n, causal, rows_per_head, q0);
    if (xt == DQ_DTYPE_F32 && yt == DQ_DTYPE_F16)
        return s_softmax_launch<float, __half>(st, dev, x, y, rows, n, causal, rows_per_head, q0);
    if (xt == DQ_DTYPE_F32 && yt == DQ_DTYPE_BF16)
        return s_softmax_launch<float, __nv_bfloat16>(st, dev, x, y, rows, n, causal,
                                                      rows_per_head, q0);
    if (xt == DQ_DTYPE_F16 && yt == DQ_DTYPE_F16)
        return s_softmax_launch<__half, __half>(st, dev, x, y, rows, n, causal, rows_per_head,
                                                q0);
    if (xt == DQ_DTYPE_BF16 && yt == DQ_DTYPE_BF16)
        return s_softmax_launch<__nv_bfloat16, __nv_bfloat16>(st, dev, x, y, rows, n, causal,
                                                              rows_per_head, q0);
    dq_error("softmax: no kernel from %s to %s", dq_dtype_name(xt), dq_dtype_name(yt));
    return -1;
}

int dq_cuda_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    return dq_cuda_softmax_rows(ctx->stream, ctx->device, x->data, x->dtype, y->data, y->dtype,
                                dq_tensor_nrows(x), x->shape[x->ndim - 1], false, 1, 0);
}
