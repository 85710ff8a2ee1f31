/* kernels/cuda/binary.cu: add and mul with numpy broadcasting of b, and scalar scale, on F32 or
 * F16 activations (f32 math). */
#include "kernels/cuda/cuda_internal.h"

/* a's shape right-aligned to 4 dims and b's element strides in a's index space (0 where b is
 * broadcast), as kernels/cpu/binary.c computes them. */
typedef struct {
    int64_t as[4];
    int64_t bst[4];
} s_bcast_t;

template <typename T>
__global__ void s_binary_kernel(const T *a, const T *b, T *y, s_bcast_t g, int64_t n, int mul) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t r = i, bi = 0;
        for (int d = 3; d >= 0; d--) {
            int64_t idx = r % g.as[d];
            r /= g.as[d];
            bi += idx * g.bst[d];
        }
        float av = dq_cuda_ld(a + i), bv = dq_cuda_ld(b + bi);
        dq_cuda_st(y + i, mul ? av * bv : av + bv);
    }
}

template <typename T>
static int s_binary_launch(cudaStream_t st, int dev, const void *a, const void *b, void *y,
                           const s_bcast_t *g, int64_t n, bool mul) {
    DQ_CUDA_LAUNCH(s_binary_kernel<T>, dq_cuda_blocks(n), DQ_CUDA_THREADS, 0, st, (const T *) a,
                   (const T *) b, (T *) y, *g, n, mul ? 1 : 0);
    DQ_CUDA_LAUNCHED(dev, mul ? "mul" : "add");
    return 0;
}

static int s_binary(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b,
                    dq_tensor_t *y, bool mul) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    s_bcast_t g;
    int off_a = 4 - a->ndim, off_b = 4 - b->ndim;
    for (int i = 0; i < 4; i++) g.as[i] = i < off_a ? 1 : a->shape[i - off_a];
    int64_t step = 1;
    for (int i = 3; i >= 0; i--) {
        int64_t bs = i < off_b ? 1 : b->shape[i - off_b];
        g.bst[i] = bs == 1 ? 0 : step;
        step *= bs;
    }
    return DQ_CUDA_BY_ACT(a->dtype, s_binary_launch, ctx->stream, ctx->device, a->data, b->data,
                          y->data, &g, dq_tensor_nelements(a), mul);
}

int dq_cuda_add(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    return s_binary(be, a, b, y, false);
}

int dq_cuda_mul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    return s_binary(be, a, b, y, true);
}

template <typename T>
__global__ void s_scale_kernel(const T *x, T *y, int64_t n, float s, float b) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x)
        dq_cuda_st(y + i, dq_cuda_ld(x + i) * s + b);
}

template <typename T>
static int s_scale_launch(cudaStream_t st, int dev, const void *x, void *y, int64_t n, float s,
                          float b) {
    DQ_CUDA_LAUNCH(s_scale_kernel<T>, dq_cuda_blocks(n), DQ_CUDA_THREADS, 0, st, (const T *) x,
                   (T *) y, n, s, b);
    DQ_CUDA_LAUNCHED(dev, "scale");
    return 0;
}

int dq_cuda_scale(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    return DQ_CUDA_BY_ACT(x->dtype, s_scale_launch, ctx->stream, ctx->device, x->data, y->data,
                          dq_tensor_nelements(x), s, b);
}
