/* kernels/cuda/attention_flash.cu: fused attention for the f16 mode, flash-attention style: one
 * pass over the keys with an online softmax, f16 (bf16 for BF16 activations) tensor-core
 * products (mma.sync) accumulated in f32, the scores and the output never leaving registers.
 * Reads q, k, v and writes y directly in the activations' dtype (F32, F16 or BF16), so no
 * conversion passes surround it. The kernel itself
 * is attention_flash_kernel.cuh. */
#include <math.h>

#include "kernels/cuda/cuda_internal.h"

/* Dynamic shared memory of a block, 128-byte aligned (the emulation defines its own). */
#ifndef DQ_CUDA_EMUL
#define DQ_CUDA_DYNAMIC_SMEM(name) extern __shared__ __align__(128) unsigned char name[]
#endif
#include "kernels/cuda/attention_flash_kernel.cuh"

namespace {

using namespace dq_flash;

template <int DP, typename T>
int s_launch(dq_cuda_ctx_t *ctx, const void *qv, const void *kv, const void *vv, void *yv,
             int64_t batch, int64_t lq, int64_t lk, int heads, int d, bool causal) {
    const T *q = (const T *) qv, *k = (const T *) kv, *v = (const T *) vv;
    T *y = (T *) yv;
    /* (A two-argument template-id would split DQ_CUDA_LAUNCH's arguments at its comma.) */
    void (*kernel)(const T *, const T *, const T *, T *, int64_t, int64_t, int, int, float, int,
                   int) = attention_kernel<DP, T>;
    size_t bytes = Layout<DP>::bytes;
    int optin = 0;
    DQ_CUDA_CHECK(ctx->device, cudaDeviceGetAttribute(
                                   &optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx->device));
    int64_t qblocks = (lq + Warps<DP>::queries - 1) / Warps<DP>::queries;
    if (bytes > (size_t) optin || batch * heads > 65535 || qblocks > INT32_MAX) return 1;
    /* Above 48 KiB of dynamic shared memory a kernel must opt in (per device, idempotent). */
    DQ_CUDA_CHECK(ctx->device,
                  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       (int) bytes));
    float scale_log2 = (float) (1.4426950408889634 / sqrt((double) d));
    dim3 grid((unsigned) qblocks, (unsigned) (batch * heads));
    DQ_CUDA_LAUNCH(kernel, grid, Warps<DP>::threads, bytes, ctx->stream, q, k, v, y, lq, lk,
                   heads, d, scale_log2, causal ? 1 : 0, vector_loads(q, k, v, d) ? 1 : 0);
    DQ_CUDA_LAUNCHED(ctx->device, "flash attention");
    return 0;
}

} // namespace

int dq_cuda_attention_flash(dq_cuda_ctx_t *ctx, const dq_tensor_t *q, const dq_tensor_t *k,
                            const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    // q, y: [B, Lq, H*D]; k, v: [B, Lk, H*D]; head h is columns [h*D, h*D+D)
    int64_t batch = q->shape[0], lq = q->shape[1], lk = k->shape[1];
    int d = (int) (q->shape[2] / heads);
#define S_ARGS ctx, q->data, k->data, v->data, y->data, batch, lq, lk, heads, d, causal
#define S_GO(DP)                                                                                 \
    (q->dtype == DQ_DTYPE_F16    ? s_launch<DP, __half>(S_ARGS)                                  \
     : q->dtype == DQ_DTYPE_BF16 ? s_launch<DP, __nv_bfloat16>(S_ARGS)                           \
                                 : s_launch<DP, float>(S_ARGS))
    if (d <= 32) return S_GO(32);
    if (d <= 48) return S_GO(48);  /* SD 1.x at 320 channels: d = 40 */
    if (d <= 64) return S_GO(64);  /* CLIP, SD 2.x */
    if (d <= 80) return S_GO(80);  /* SD 1.x at 640 */
    if (d <= 128) return S_GO(128);
    if (d <= 160) return S_GO(160); /* SD 1.x at 1280 */
#undef S_GO
#undef S_ARGS
    return 1;
}
