/* kernels/cuda/activation.cu: GELU (erf), quick GELU, SiLU and GEGLU, elementwise, on F32 or
 * F16 activations. */
#include "kernels/cuda/cuda_internal.h"

typedef enum { S_GELU, S_GELU_QUICK, S_SILU } s_act_t;

/* torch's exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))); CUDA's erff is within 2 ulp. */
__device__ __forceinline__ float s_gelu(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

/* Same form as the CPU: x / (1 + exp(-a x)); expf (not __expf) keeps full f32 accuracy. */
__device__ __forceinline__ float s_sigmoid_mul(float x, float a) {
    return x / (1.0f + expf(-a * x));
}

/* T: float or __half (cuda_internal.h); the math is f32 either way. */
template <typename T>
__global__ void s_act_kernel(const T *x, T *y, int64_t n, int act) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        float v = dq_cuda_ld(x + i);
        dq_cuda_st(y + i, act == S_GELU ? s_gelu(v)
                                        : s_sigmoid_mul(v, act == S_GELU_QUICK ? 1.702f : 1.0f));
    }
}

template <typename T>
static int s_act_launch(cudaStream_t st, int dev, const void *x, void *y, int64_t n,
                        s_act_t act) {
    DQ_CUDA_LAUNCH(s_act_kernel<T>, dq_cuda_blocks(n), DQ_CUDA_THREADS, 0, st, (const T *) x,
                   (T *) y, n, (int) act);
    DQ_CUDA_LAUNCHED(dev, "activation");
    return 0;
}

static int s_act(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y, s_act_t act) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    return DQ_CUDA_BY_ACT(x->dtype, s_act_launch, ctx->stream, ctx->device, x->data, y->data,
                          dq_tensor_nelements(x), act);
}

int dq_cuda_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_act(be, x, y, S_GELU);
}

int dq_cuda_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_act(be, x, y, S_GELU_QUICK);
}

int dq_cuda_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_act(be, x, y, S_SILU);
}

/* x: [R, 2F] as (hidden, gate) halves of each row; y: [R, F] = hidden * gelu(gate). */
template <typename T>
__global__ void s_geglu_kernel(const T *x, T *y, int64_t rows, int64_t f) {
    int64_t n = rows * f;
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t r = i / f, j = i - r * f;
        const T *row = x + r * 2 * f;
        dq_cuda_st(y + i, dq_cuda_ld(row + j) * s_gelu(dq_cuda_ld(row + f + j)));
    }
}

template <typename T>
static int s_geglu_launch(cudaStream_t st, int dev, const void *x, void *y, int64_t rows,
                          int64_t f) {
    DQ_CUDA_LAUNCH(s_geglu_kernel<T>, dq_cuda_blocks(rows * f), DQ_CUDA_THREADS, 0, st,
                   (const T *) x, (T *) y, rows, f);
    DQ_CUDA_LAUNCHED(dev, "geglu");
    return 0;
}

int dq_cuda_geglu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    int64_t f = y->shape[y->ndim - 1];
    return DQ_CUDA_BY_ACT(x->dtype, s_geglu_launch, ctx->stream, ctx->device, x->data, y->data,
                          dq_tensor_nrows(y), f);
}
