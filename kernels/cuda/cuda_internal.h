/* kernels/cuda/cuda_internal.h: what the CUDA backend's op files share (context, checks). */
#ifndef DQ_CUDA_INTERNAL_H
#define DQ_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stdint.h>

extern "C" {
#include "common/log.h"
#include "kernels/backend.h"
}
#include "kernels/cuda/backend_cuda.h"

/* Entries of a conv algorithm cache key: n, ci, h, w, the block's and all output channels,
 * kh, kw, stride, pad, layout (0 NCHW, 1 NHWC), precision, data type (see conv2d.cu). */
#define DQ_CUDA_CONV_KEY 13

/* One cached cuDNN algorithm choice for a convolution geometry (see conv2d.cu). */
typedef struct {
    int64_t key[DQ_CUDA_CONV_KEY]; /* the geometry (DQ_CUDA_CONV_KEY) */
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
    bool attention_fused;           /* f16 mode: fused attention where it applies (attention.cu) */
    bool conv_search;               /* time cuDNN's algorithms once per geometry (conv2d.cu) */
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
/* A kernel launch, kernel<<<grid, block, smem, stream>>>(args...). When this backend is built
 * as plain C++ against the CPU emulation of CUDA for CI (tests/emul/, DQ_CUDA_EMUL), the
 * emulation's launcher runs it instead. */
#ifdef DQ_CUDA_EMUL
#define DQ_CUDA_LAUNCH(kernel, grid, block, smem, stream, ...)                                   \
    DQ_EMUL_LAUNCH(kernel, grid, block, smem, stream, __VA_ARGS__)
#else
#define DQ_CUDA_LAUNCH(kernel, grid, block, smem, stream, ...)                                   \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#endif
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

/* Activations are F32, F16 or BF16 (kernels/backend.h): kernels are templates on the element
 * type T (float, __half or __nv_bfloat16) that load to f32, compute in f32 (or double) and store
 * with one rounding. */
__device__ __forceinline__ float dq_cuda_ld(const float *p) { return *p; }
__device__ __forceinline__ float dq_cuda_ld(const __half *p) { return __half2float(*p); }
__device__ __forceinline__ float dq_cuda_ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void dq_cuda_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void dq_cuda_st(__half *p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void dq_cuda_st(__nv_bfloat16 *p, float v) {
    *p = __float2bfloat16_rn(v);
}

/* Calls the template F<T> with T the element type of an activation dtype (F32, F16 or BF16;
 * the op layer admits nothing else): DQ_CUDA_BY_ACT(dtype, s_launch, args...). */
#define DQ_CUDA_BY_ACT(dtype, fn, ...)                                                           \
    ((dtype) == DQ_DTYPE_F16    ? fn<__half>(__VA_ARGS__)                                        \
     : (dtype) == DQ_DTYPE_BF16 ? fn<__nv_bfloat16>(__VA_ARGS__)                                 \
                                : fn<float>(__VA_ARGS__))

/* The 16-bit activation dtypes, F16 and BF16: tensor-core data for cuBLAS and cuDNN. */
static inline bool dq_cuda_is_act16(dq_dtype_t t) {
    return t == DQ_DTYPE_F16 || t == DQ_DTYPE_BF16;
}
/* cuBLAS's and cuDNN's names for F32, F16 and BF16 data. */
static inline cudaDataType dq_cuda_blas_type(dq_dtype_t t) {
    return t == DQ_DTYPE_F16 ? CUDA_R_16F : t == DQ_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}
static inline cudnnDataType_t dq_cuda_dnn_type(dq_dtype_t t) {
    return t == DQ_DTYPE_F16    ? CUDNN_DATA_HALF
           : t == DQ_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16
                                : CUDNN_DATA_FLOAT;
}

/* Launchers shared between op files (stream first; arguments already validated). */
/* dst[i] = (float) src[i] for n elements of dtype F32/F16/BF16. */
int dq_cuda_convert_to_f32(cudaStream_t st, int dev, const void *src, dq_dtype_t dtype,
                           int64_t n, float *dst);
/* dst[i] = src[i] rounded to nearest even for n elements of dtype F32/F16/BF16 into dst of
 * dst_dtype F16 or BF16 (a value already of that dtype is copied). */
int dq_cuda_convert_to_16(cudaStream_t st, int dev, const void *src, dq_dtype_t dtype, int64_t n,
                          void *dst, dq_dtype_t dst_dtype);
/* Where y[i]'s bias and residual come from when a linear's or conv's y is prefilled or widened:
 * bias[(i / bias_div) % bias_mod] and residual[(i / res_div) * res_mod + i % res_mod]. Made by
 * dq_cuda_bcast_rows, _nchw or _nhwc for y's n elements. */
typedef struct {
    int64_t n;                  /* y's elements */
    int64_t bias_div, bias_mod; /* bias index: (i / bias_div) % bias_mod */
    int64_t res_div, res_mod;   /* residual index: (i / res_div) * res_mod + i % res_mod */
} dq_cuda_bcast_t;

/* A linear's y[rows, cols]: bias[i % cols], residual of y's shape. */
static inline dq_cuda_bcast_t dq_cuda_bcast_rows(int64_t rows, int64_t cols) {
    return dq_cuda_bcast_t{rows * cols, 1, cols, 1, 1};
}
/* A conv's y[n, c, s] (s = Ho * Wo): bias[c]; residual of y's shape, or with per_image one value
 * per image and channel ([N, C, 1, 1]: residual[i / s]). */
static inline dq_cuda_bcast_t dq_cuda_bcast_nchw(int64_t n, int64_t c, int64_t s, bool per_image) {
    return dq_cuda_bcast_t{n * c * s, s, c, per_image ? s : 1, 1};
}
/* A channels-last conv's y[n, s, c]: bias[i % c]; residual of y's shape, or with per_image one
 * value per image and channel ([N, 1, 1, C]: residual[(i / (s * c)) * c + i % c]). */
static inline dq_cuda_bcast_t dq_cuda_bcast_nhwc(int64_t n, int64_t s, int64_t c, bool per_image) {
    return dq_cuda_bcast_t{n * s * c, 1, c, per_image ? s * c : 1, per_image ? c : 1};
}

/* y = residual + bias laid out as b says (each may be NULL: left out; residual may be y): what a
 * linear's or conv's product then accumulates onto. y and residual of dtype F32, F16 or BF16
 * (summed in f32, rounded once), bias F32. *beta gets the product's beta: 1 when y holds a value to
 * accumulate onto, else 0. Nothing runs when residual is y (or NULL) and there is no bias. */
int dq_cuda_prefill(cudaStream_t st, int dev, dq_dtype_t dtype, void *y, const void *residual,
                    const float *bias, dq_cuda_bcast_t b, float *beta);
/* dst[i] = f32(src[i]) + bias + residual as b says, src f16 (the f16 conv's output), dst and
 * residual F32; bias and residual may be NULL (left out), residual may be dst. One pass. */
int dq_cuda_widen_f16_bias(cudaStream_t st, int dev, const void *src, const float *bias,
                           const float *residual, dq_cuda_bcast_t b, float *dst);
/* Softmax of rows [rows, n] of x (dtype xt) into y (dtype yt; may be x when the dtypes match): F32
 * -> F32, F16 or BF16, or F16 -> F16, BF16 -> BF16. With causal, row r (query q0 + r %
 * rows_per_head) has its keys j > q0 + r % rows_per_head set to -inf first. */
int dq_cuda_softmax_rows(cudaStream_t st, int dev, const void *x, dq_dtype_t xt, void *y,
                         dq_dtype_t yt, int64_t rows, int64_t n, bool causal,
                         int64_t rows_per_head, int64_t q0);
/* Fused attention (attention_flash.cu): same contract as dq_cuda_attention. Returns 0, -1 on an
 * error, or 1 when it does not apply (head dimension over 160, too little shared memory, a grid
 * too large), leaving the caller to take the GEMM path. */
int dq_cuda_attention_flash(dq_cuda_ctx_t *ctx, const dq_tensor_t *q, const dq_tensor_t *k,
                            const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y);
/* Group norm (silu: then SiLU) of x[n, c, s] (nhwc: x[n, s, c]) of dtype F32, F16 or BF16 into
 * y of the same dtype. */
int dq_cuda_group_norm_launch(cudaStream_t st, int dev, dq_dtype_t dtype, const void *x,
                              const float *gamma, const float *beta, int64_t n, int64_t c,
                              int64_t s, int groups, float eps, bool silu, bool nhwc, void *y);

/* Op entry points (contracts in kernels/ops.h; arguments already validated by kernels/ops.c). */
int dq_cuda_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y);
int dq_cuda_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                   float alpha, dq_tensor_t *y);
int dq_cuda_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                   dq_tensor_t *y);
int dq_cuda_conv2d_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                        const dq_tensor_t *bias, int stride, int padding,
                        const dq_tensor_t *residual, dq_tensor_t *y);
int dq_cuda_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cuda_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                            const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cuda_group_norm_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                            const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_cuda_group_norm_silu_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
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
int dq_cuda_upsample_nearest2x_nhwc(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
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
