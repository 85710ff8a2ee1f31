/* kernels/cuda/backend_cuda.cu: the CUDA backend's table, buffers, transfers and creation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

const char *dq_cuda_precision_name(dq_cuda_precision_t p) {
    switch (p) {
    case DQ_CUDA_PRECISION_F32: return "f32";
    case DQ_CUDA_PRECISION_F16: return "f16";
    default: return "?";
    }
}

/* Releases what ctx holds; safe on a partly built context. Errors are only logged: there is
 * nothing a caller could do about a failed free. */
static void s_ctx_free(dq_cuda_ctx_t *ctx) {
    if (!ctx) return;
    cudaSetDevice(ctx->device);
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    if (ctx->cudnn) cudnnDestroy(ctx->cudnn);
    if (ctx->cublas) cublasDestroy(ctx->cublas);
    if (ctx->cublas_work) cudaFree(ctx->cublas_work);
    if (ctx->work) cudaFree(ctx->work);
    if (ctx->flag) cudaFree(ctx->flag);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    free(ctx);
}

static void s_destroy(dq_backend_t *be) {
    s_ctx_free(dq_cuda_ctx(be));
    free(be);
}

static dq_buffer_t *s_buffer_alloc(dq_backend_t *be, size_t size) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    dq_buffer_t *buf = (dq_buffer_t *) calloc(1, sizeof *buf);
    if (!buf) {
        dq_error("cuda: out of host memory for a buffer record");
        return NULL;
    }
    void *base = NULL;
    cudaError_t rc = cudaSetDevice(ctx->device);
    if (rc == cudaSuccess) rc = cudaMalloc(&base, size); /* 256-byte aligned */
    if (rc != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError(); /* clear the sticky-free error state of a failed malloc */
        cudaMemGetInfo(&free_b, &total_b);
        dq_error("cuda: cudaMalloc(%zu bytes) failed on device %d: %s (%zu of %zu bytes free)",
                 size, ctx->device, cudaGetErrorString(rc), free_b, total_b);
        free(buf);
        return NULL;
    }
    buf->backend = be;
    buf->base = base;
    buf->size = size;
    return buf;
}

static void s_buffer_free(dq_backend_t *be, dq_buffer_t *buf) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    /* Queued ops may still read it: cudaFree waits for the device, but be explicit. */
    cudaSetDevice(ctx->device);
    cudaError_t rc = cudaStreamSynchronize(ctx->stream);
    if (rc == cudaSuccess) rc = cudaFree(buf->base);
    if (rc != cudaSuccess)
        dq_error("cuda: freeing a buffer of %zu bytes on device %d: %s", buf->size, ctx->device,
                 cudaGetErrorString(rc));
    free(buf);
}

static int s_upload(dq_backend_t *be, dq_tensor_t *dst, size_t offset, const void *src,
                    size_t n) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    DQ_CUDA_CHECK(ctx->device, cudaMemcpyAsync((char *) dst->data + offset, src, n,
                                               cudaMemcpyHostToDevice, ctx->stream));
    /* The host copy may be freed or reused right after we return (pageable memory). */
    DQ_CUDA_CHECK(ctx->device, cudaStreamSynchronize(ctx->stream));
    return 0;
}

static int s_download(dq_backend_t *be, const dq_tensor_t *src, size_t offset, void *dst,
                      size_t n) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    DQ_CUDA_CHECK(ctx->device, cudaMemcpyAsync(dst, (const char *) src->data + offset, n,
                                               cudaMemcpyDeviceToHost, ctx->stream));
    DQ_CUDA_CHECK(ctx->device, cudaStreamSynchronize(ctx->stream));
    return 0;
}

static int s_synchronize(dq_backend_t *be) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    DQ_CUDA_CHECK(ctx->device, cudaStreamSynchronize(ctx->stream));
    return 0;
}

static bool s_supports_op(const dq_backend_t *be, dq_op_t op, dq_dtype_t weight_dtype) {
    (void) be;
    bool float_weights = weight_dtype == DQ_DTYPE_F32 || weight_dtype == DQ_DTYPE_F16 ||
                         weight_dtype == DQ_DTYPE_BF16;
    switch (op) {
    case DQ_OP_LINEAR:
    case DQ_OP_CONV2D:
    case DQ_OP_CONV2D_NHWC:
    case DQ_OP_CPY:
    case DQ_OP_GET_ROWS:
        return float_weights;
    case DQ_OP_COUNT:
        return false;
    default:
        return weight_dtype == DQ_DTYPE_F32;
    }
}

/* F16 and BF16 activations for every op, in both precision modes (the mode still decides the
 * matrix ops' math: tensor cores and the fused attention in f16 mode only). */
static bool s_supports_activation(const dq_backend_t *be, dq_op_t op, dq_dtype_t act_dtype) {
    (void) be;
    return op < DQ_OP_COUNT && (act_dtype == DQ_DTYPE_F32 || dq_cuda_is_act16(act_dtype));
}

static dq_backend_ops_t s_make_ops(void) {
    dq_backend_ops_t o;
    memset(&o, 0, sizeof o);
    o.name = "cuda";
    o.destroy = s_destroy;
    o.buffer_alloc = s_buffer_alloc;
    o.buffer_free = s_buffer_free;
    o.upload = s_upload;
    o.download = s_download;
    o.synchronize = s_synchronize;
    o.supports_op = s_supports_op;
    o.supports_activation = s_supports_activation;
    o.linear = dq_cuda_linear;
    o.matmul = dq_cuda_matmul;
    o.conv2d = dq_cuda_conv2d;
    o.group_norm = dq_cuda_group_norm;
    o.group_norm_silu = dq_cuda_group_norm_silu;
    o.layer_norm = dq_cuda_layer_norm;
    o.softmax = dq_cuda_softmax;
    o.attention = dq_cuda_attention;
    o.gelu = dq_cuda_gelu;
    o.gelu_quick = dq_cuda_gelu_quick;
    o.silu = dq_cuda_silu;
    o.geglu = dq_cuda_geglu;
    o.add = dq_cuda_add;
    o.mul = dq_cuda_mul;
    o.scale = dq_cuda_scale;
    o.upsample_nearest2x = dq_cuda_upsample_nearest2x;
    o.concat = dq_cuda_concat;
    o.cpy = dq_cuda_cpy;
    o.get_rows = dq_cuda_get_rows;
    o.conv2d_nhwc = dq_cuda_conv2d_nhwc;
    o.group_norm_nhwc = dq_cuda_group_norm_nhwc;
    o.group_norm_silu_nhwc = dq_cuda_group_norm_silu_nhwc;
    o.upsample_nearest2x_nhwc = dq_cuda_upsample_nearest2x_nhwc;
    o.graph_begin = dq_cuda_graph_begin;
    o.graph_end = dq_cuda_graph_end;
    o.graph_launch = dq_cuda_graph_launch;
    o.graph_destroy = dq_cuda_graph_destroy;
    return o;
}

/* C++ has no designated initialisers for this C struct in C++17; built once at load time. */
static const dq_backend_ops_t s_cuda_ops = s_make_ops();

int dq_backend_is_cuda(const dq_backend_t *be) { return be && be->ops == &s_cuda_ops; }

/* The init steps of dq_backend_cuda_new: each writes err and returns -1 on failure. */
#define S_TRY(call, fmt_result)                                                                 \
    do {                                                                                        \
        if (!(call)) {                                                                          \
            snprintf(err, errlen, "cuda backend on device %d: %s failed: %s", device, #call,    \
                     fmt_result);                                                               \
            goto fail;                                                                          \
        }                                                                                       \
    } while (0)

dq_backend_t *dq_backend_cuda_new(int device, size_t workspace_bytes,
                                  dq_cuda_precision_t precision, char *err, size_t errlen) {
    if (workspace_bytes == 0) workspace_bytes = DQ_CUDA_DEFAULT_WORKSPACE;
    if ((unsigned) precision >= DQ_CUDA_PRECISION_COUNT) {
        snprintf(err, errlen, "cuda backend: precision %d is not f32 (0) or f16 (1)",
                 (int) precision);
        return NULL;
    }
    int count = 0;
    cudaError_t crc = cudaGetDeviceCount(&count);
    if (crc != cudaSuccess || device < 0 || device >= count) {
        snprintf(err, errlen, "cuda backend: device %d not available (%d visible%s%s)", device,
                 crc == cudaSuccess ? count : 0, crc == cudaSuccess ? "" : ": ",
                 crc == cudaSuccess ? "" : cudaGetErrorString(crc));
        cudaGetLastError();
        return NULL;
    }
    dq_backend_t *be = (dq_backend_t *) calloc(1, sizeof *be);
    dq_cuda_ctx_t *ctx = (dq_cuda_ctx_t *) calloc(1, sizeof *ctx);
    cublasStatus_t brc = CUBLAS_STATUS_SUCCESS;
    cudnnStatus_t drc = CUDNN_STATUS_SUCCESS;
    if (!be || !ctx) {
        snprintf(err, errlen, "cuda backend: out of host memory");
        goto fail;
    }
    ctx->device = device;
    ctx->precision = precision;
    ctx->work_bytes = workspace_bytes;
    {
        /* DQ_CUDA_ATTENTION=gemm keeps the f16 mode on the two-GEMM attention (for bisecting). */
        const char *attn = getenv("DQ_CUDA_ATTENTION");
        ctx->attention_fused = !(attn && strcmp(attn, "gemm") == 0);
        /* DQ_CUDA_CONV_SEARCH=0 picks conv algorithms by cuDNN's heuristics alone. */
        const char *search = getenv("DQ_CUDA_CONV_SEARCH");
        ctx->conv_search = !(search && strcmp(search, "0") == 0);
    }
    S_TRY((crc = cudaSetDevice(device)) == cudaSuccess, cudaGetErrorString(crc));
    S_TRY((crc = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking)) == cudaSuccess,
          cudaGetErrorString(crc));
    S_TRY((crc = cudaMalloc(&ctx->work, workspace_bytes)) == cudaSuccess,
          cudaGetErrorString(crc));
    S_TRY((crc = cudaMalloc((void **) &ctx->flag, sizeof(int))) == cudaSuccess,
          cudaGetErrorString(crc));
    S_TRY((brc = cublasCreate(&ctx->cublas)) == CUBLAS_STATUS_SUCCESS,
          cublasGetStatusString(brc));
    S_TRY((brc = cublasSetStream(ctx->cublas, ctx->stream)) == CUBLAS_STATUS_SUCCESS,
          cublasGetStatusString(brc));
    /* f32 mode: no TF32 (or any reduced-precision) tensor-core path, whatever
     * NVIDIA_TF32_OVERRIDE says; f16 mode: TF32 allowed for f32 operands. */
    S_TRY((brc = cublasSetMathMode(ctx->cublas, precision == DQ_CUDA_PRECISION_F32
                                                    ? CUBLAS_PEDANTIC_MATH
                                                    : CUBLAS_TF32_TENSOR_OP_MATH)) ==
              CUBLAS_STATUS_SUCCESS,
          cublasGetStatusString(brc));
    /* After cublasSetStream, which resets the handle to cuBLAS's own workspace pool. */
    S_TRY((crc = cudaMalloc(&ctx->cublas_work, DQ_CUDA_CUBLAS_WORKSPACE)) == cudaSuccess,
          cudaGetErrorString(crc));
    S_TRY((brc = cublasSetWorkspace(ctx->cublas, ctx->cublas_work, DQ_CUDA_CUBLAS_WORKSPACE)) ==
              CUBLAS_STATUS_SUCCESS,
          cublasGetStatusString(brc));
    S_TRY((drc = cudnnCreate(&ctx->cudnn)) == CUDNN_STATUS_SUCCESS, cudnnGetErrorString(drc));
    S_TRY((drc = cudnnSetStream(ctx->cudnn, ctx->stream)) == CUDNN_STATUS_SUCCESS,
          cudnnGetErrorString(drc));
    be->ops = &s_cuda_ops;
    be->ctx = ctx;
    return be;
fail:
    cudaGetLastError();
    s_ctx_free(ctx);
    free(be);
    return NULL;
}
