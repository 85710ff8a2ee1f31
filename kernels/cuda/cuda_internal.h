/* kernels/cuda/cuda_internal.h: what the CUDA backend's op files share (context, checks). */
#ifndef DQ_CUDA_INTERNAL_H
#define DQ_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stdint.h>

extern "C" {
#include "common/log.h"
#include "kernels/backend.h"
}
#include "kernels/cuda/backend_cuda.h"

/* One cached cuDNN algorithm choice for a convolution geometry (see conv2d.cu). */
typedef struct {
    int64_t key[10]; /* n, ci, h, w, co, kh, kw, stride, pad, precision */
    cudnnConvolutionFwdAlgo_t algo;
    cudnnMathType_t math;
    size_t ws_bytes; /* cuDNN scratch the algorithm needs */
} dq_cuda_conv_algo_t;

#define DQ_CUDA_CONV_CACHE 128

/* cuBLAS's workspace, given explicitly so that cuBLAS never allocates one itself (not allowed
 * while a graph is being captured): 32 MiB is what NVIDIA's cuBLAS guide recommends for Hopper
 * (4 MiB for earlier GPUs). */
#define DQ_CUDA_CUBLAS_WORKSPACE ((size_t) 32 << 20)

typedef struct {
    int device;                     /* CUDA ordinal */
    dq_cuda_precision_t precision;  /* how matrix ops compute (backend_cuda.h) */
    cudaStream_t stream;            /* owned: every op and transfer runs on it */
    cublasHandle_t cublas;          /* owned: bound to stream */
    cudnnHandle_t cudnn;            /* owned: bound to stream */
    void *work;                     /* owned: device workspace */
    size_t work_bytes;              /* its size */
    int *flag;                      /* owned: one device int for ops that report bad input */
    void *cublas_work;              /* owned: cuBLAS's workspace (DQ_CUDA_CUBLAS_WORKSPACE) */
    dq_cuda_conv_algo_t conv_cache[DQ_CUDA_CONV_CACHE]; /* chosen conv algorithms */
    int conv_cached;                /* entries in use */
} dq_cuda_ctx_t;

static inline dq_cuda_ctx_t *dq_cuda_ctx(dq_backend_t *be) { return (dq_cuda_ctx_t *) be->ctx; }

/* Checks: each logs the statement, file:line, the device and the library's error text, then
 * makes the enclosing function return -1. `dev` is the device ordinal in scope. */
#define DQ_CUDA_CHECK(dev, stmt)                                                                 \
    do {                                                                                         \
        cudaError_t dq_rc_ = (stmt);                                                             \
        if (dq_rc_ != cudaSuccess) {                                                             \
            dq_error("cuda: %s failed at %s:%d on device %d: %s", #stmt, __FILE__, __LINE__,   \
                     (dev), cudaGetErrorString(dq_rc_));                                         \
            return -1;                                                                           \
        }                                                                                        \
    } while (0)
#define DQ_CUBLAS_CHECK(dev, stmt)                                                               \
    do {                                                                                         \
        cublasStatus_t dq_rc_ = (stmt);                                                          \
        if (dq_rc_ != CUBLAS_STATUS_SUCCESS) {                                                   \
            dq_error("cublas: %s failed at %s:%d on device %d: %s", #stmt, __FILE__, __LINE__, \
                     (dev), cublasGetStatusString(dq_rc_));                                      \
            return -1;                                                                           \
        }                                                                                        \
    } while (0)
#define DQ_CUDNN_CHECK(dev, stmt)                                                                \
    do {                                                                                         \
        cudnnStatus_t dq_rc_ = (stmt);                                                           \
        if (dq_rc_ != CUDNN_STATUS_SUCCESS) {                                                    \
            dq_error("cudnn: %s failed at %s:%d on device %d: %s", #stmt, __FILE__, __LINE__,  \
                     (dev), cudnnGetErrorString(dq_rc_));                                        \
            return -1;                                                                           \
        }                                                                                        \
    } while (0)
/* After a kernel launch: a bad configuration shows up here, a fault at the next sync. */
#define DQ_CUDA_LAUNCHED(dev, kernel)                                                            \
    do {                                                                                         \
        cudaError_t dq_rc_ = cudaGetLastError();                                                 \
        if (dq_rc_ != cudaSuccess) {                                                             \
            dq_error("cuda: launch of %s failed at %s:%d on device %d: %s", kernel, __FILE__,    \
                     __LINE__, (dev), cudaGetErrorString(dq_rc_));                               \
            return -1;                                                                           \
        }                                                                                        \
    } while (0)
/* Every entry point starts here: the backend's device becomes the thread's current one. */
#define DQ_CUDA_ENTER(ctx) DQ_CUDA_CHECK((ctx)->device, cudaSetDevice((ctx)->device))

/* Threads per block of the elementwise and row kernels. */
#define DQ_CUDA_THREADS 256

/* Blocks for n elements, one per thread, capped (kernels loop grid-stride past the cap). */
static inline unsigned dq_cuda_blocks(int64_t n) {
    int64_t b = (n + DQ_CUDA_THREADS - 1) / DQ_CUDA_THREADS;
    if (b < 1) b = 1;
    return (unsigned) (b > 65535 * 16 ? 65535 * 16 : b);
}

/* f16/bf16 bits -> f32, exactly (both widen without rounding). */
__device__ __forceinline__ float dq_cuda_half_bits(uint16_t h) {
    return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ float dq_cuda_bf16_bits(uint16_t b) {
    return __uint_as_float((uint32_t) b << 16);
}

/* Launchers shared between op files (stream first; arguments already validated). */
/* dst[i] = (float) src[i] for n elements of dtype F32/F16/BF16. */
int dq_cuda_convert_to_f32(cudaStream_t st, int dev, const void *src, dq_dtype_t dtype,
                           int64_t n, float *dst);
/* dst[i] = half(src[i]) for n elements of dtype F32/F16/BF16, round to nearest even. */
int dq_cuda_convert_to_f16(cudaStream_t st, int dev, const void *src, dq_dtype_t dtype,
                           int64_t n, void *dst);
/* dst[i] = half(src[i]) round to nearest even. */
int dq_cuda_convert_f32_to_f16(cudaStream_t st, int dev, const float *src, int64_t n,
                               void *dst);
/* y[r, c] += bias[c % cols] for rows x cols (linear) or y[p, i] += bias[p % channels] for planes
 * of `inner` elements (conv): see the launchers in bias.cu. */
int dq_cuda_add_bias_rows(cudaStream_t st, int dev, float *y, const float *bias, int64_t rows,
                          int64_t cols);
int dq_cuda_add_bias_planes(cudaStream_t st, int dev, float *y, const float *bias,
                            int64_t planes, int64_t channels, int64_t inner);
/* Softmax of rows [rows, n] in place; with causal, row r (query q0 + r % rows_per_head) has
 * its keys j > q0 + r % rows_per_head set to -inf first. */
int dq_cuda_softmax_rows(cudaStream_t st, int dev, const float *x, float *y, int64_t rows,
                         int64_t n, bool causal, int64_t rows_per_head, int64_t q0);
int dq_cuda_group_norm_launch(cudaStream_t st, int dev, const float *x, const float *gamma,
                              const float *beta, int64_t n, int64_t c, int64_t s, int groups,
                              float eps, bool silu, float *y);

/* Op entry points (contracts in kernels/ops.h; arguments already validated by kernels/ops.c). */
int dq_cuda_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, dq_tensor_t *y);
int dq_cuda_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                   float alpha, dq_tensor_t *y);
int dq_cuda_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, int stride, int padding, dq_tensor_t *y);
int dq_cuda_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cuda_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, float eps, dq_tensor_t *y);
int dq_cuda_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cuda_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                      const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y);
int dq_cuda_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cuda_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cuda_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cuda_geglu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cuda_add(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y);
int dq_cuda_mul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y);
int dq_cuda_scale(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y);
int dq_cuda_upsample_nearest2x(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cuda_concat(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                   dq_tensor_t *y);
int dq_cuda_cpy(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
int dq_cuda_get_rows(dq_backend_t *be, const dq_tensor_t *table, const dq_tensor_t *ids,
                     dq_tensor_t *y);

/* Graph hooks (graph.cu; contracts at dq_backend_graph_* in kernels/backend.h). */
int dq_cuda_graph_begin(dq_backend_t *be);
int dq_cuda_graph_end(dq_backend_t *be, dq_backend_graph_t **graph);
int dq_cuda_graph_launch(dq_backend_t *be, dq_backend_graph_t *graph);
void dq_cuda_graph_destroy(dq_backend_t *be, dq_backend_graph_t *graph);

#endif
