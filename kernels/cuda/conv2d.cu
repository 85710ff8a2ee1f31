/* kernels/cuda/conv2d.cu: 2-D convolution (NCHW) through cuDNN's convolution-forward API, the
 * algorithm picked once per geometry and cached in the backend context. F16 activations go to
 * cuDNN as they are (f16 data, f32 accumulation); F32 activations in the f16 mode are rounded to
 * f16 in the workspace and widened back. The bias and residual are written into y first and
 * cuDNN accumulates onto them (beta = 1), except on that widening path, which adds them. */
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

/* Descriptors of one call; destroyed by s_descs_free whatever happened. */
typedef struct {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} s_descs_t;

static void s_descs_free(s_descs_t *d) {
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

/* In f32 mode only FMA kernels that sum the products directly are allowed: cuDNN's default math
 * lets Ampere and later use TF32 tensor cores for f32 data (about 1e-3 relative error), and the
 * FFT and Winograd algorithms transform the data (errors near 1e-5, the mode's whole budget). */
static bool s_algo_ok(const dq_cuda_ctx_t *ctx, const cudnnConvolutionFwdAlgoPerf_t *p) {
    if (ctx->precision != DQ_CUDA_PRECISION_F32) return true;
    if (p->mathType == CUDNN_TENSOR_OP_MATH || p->mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return false;
    return p->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
           p->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           p->algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM ||
           p->algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}

/* 256-byte aligned size: the start of the next workspace region. */
static size_t s_align(size_t b) { return (b + 255) & ~(size_t) 255; }

/* What one convolution's operands are, for a timed search: x and w's data, and the workspace
 * left for cuDNN (y is not given: the search writes its output, which may hold a residual). */
typedef struct {
    const void *x, *w;
    void *ws;
    size_t ws_avail;
    size_t y_extent; /* bytes the y descriptor spans */
} s_operands_t;

/* cuDNN's timed search (cudnnFindConvolutionForwardAlgorithmEx, which runs each algorithm and
 * blocks the host) into perf, sorted fastest first. Its output goes to a scratch y at the start
 * of the workspace; the algorithms get the rest. Returns the results' count, or 0 when the
 * search does not apply: turned off, the stream capturing a graph (the search synchronises), or
 * no room for the scratch y in the workspace. Errors of the search are not fatal (0 too): the
 * heuristics answer instead. */
static int s_search(dq_cuda_ctx_t *ctx, const s_descs_t *d, const s_operands_t *o,
                    cudnnConvolutionFwdAlgoPerf_t *perf, size_t *ws_avail) {
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    if (!ctx->conv_search || cudaStreamIsCapturing(ctx->stream, &cap) != cudaSuccess ||
        cap != cudaStreamCaptureStatusNone)
        return 0;
    size_t yb = s_align(o->y_extent);
    if (yb >= o->ws_avail / 2) return 0;
    int got = 0;
    cudnnStatus_t st = cudnnFindConvolutionForwardAlgorithmEx(
        ctx->cudnn, d->x, o->x, d->w, o->w, d->conv, d->y, o->ws,
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, (char *) o->ws + yb, o->ws_avail - yb);
    if (st != CUDNN_STATUS_SUCCESS) {
        dq_warn("conv2d: cudnnFindConvolutionForwardAlgorithmEx failed on device %d (%s); "
                "using cuDNN's heuristics for this geometry",
                ctx->device, cudnnGetErrorString(st));
        return 0;
    }
    *ws_avail = o->ws_avail - yb;
    return got;
}

/* The cached choice for key, or a new one: the fastest algorithm by cuDNN's timed search (see
 * s_search), else by its heuristics (cudnnGetConvolutionForwardAlgorithm_v7), whose scratch fits
 * the workspace and whose math suits the mode. */
static int s_pick_algo(dq_cuda_ctx_t *ctx, const s_descs_t *d, const int64_t key[10],
                       const s_operands_t *o, dq_cuda_conv_algo_t *out) {
    size_t ws_avail = o->ws_avail;
    for (int i = 0; i < ctx->conv_cached; i++)
        if (memcmp(ctx->conv_cache[i].key, key, sizeof ctx->conv_cache[i].key) == 0 &&
            ctx->conv_cache[i].ws_bytes <= ws_avail) {
            *out = ctx->conv_cache[i];
            return 0;
        }
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = s_search(ctx, d, o, perf, &ws_avail);
    if (got == 0)
        DQ_CUDNN_CHECK(ctx->device, cudnnGetConvolutionForwardAlgorithm_v7(
                                        ctx->cudnn, d->x, d->w, d->conv, d->y,
                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
    for (int i = 0; i < got; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws_avail ||
            !s_algo_ok(ctx, &perf[i]))
            continue;
        memcpy(out->key, key, sizeof out->key);
        out->algo = perf[i].algo;
        out->math = perf[i].mathType;
        out->ws_bytes = perf[i].memory;
        if (ctx->conv_cached < DQ_CUDA_CONV_CACHE) ctx->conv_cache[ctx->conv_cached++] = *out;
        return 0;
    }
    /* The heuristics normally list every algorithm; if none passed, implicit GEMM (supported
     * for every NCHW geometry, no transform, usually no scratch) is the safe choice. */
    size_t need = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, d->x, d->w, d->conv, d->y,
                                                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                                &need) == CUDNN_STATUS_SUCCESS &&
        need <= ws_avail) {
        memcpy(out->key, key, sizeof out->key);
        out->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        out->math = CUDNN_FMA_MATH;
        out->ws_bytes = need;
        if (ctx->conv_cached < DQ_CUDA_CONV_CACHE) ctx->conv_cache[ctx->conv_cached++] = *out;
        return 0;
    }
    dq_error("conv2d: cuDNN offers no forward algorithm for this geometry within %zu bytes of "
             "workspace (%d candidates, precision %s)",
             ws_avail, got, dq_cuda_precision_name(ctx->precision));
    return -1;
}

/* y block [N, cb, Ho, Wo] (channel stride of the whole y) = conv(x, w block [cb, Ci, kh, kw]),
 * x's geometry from the tensor x but its data at xdata. dt: the dtype of xdata, w and y (FLOAT,
 * or HALF with f32 accumulation). ws/ws_avail: what is left of the workspace for cuDNN. */
static int s_conv_block(dq_cuda_ctx_t *ctx, const dq_tensor_t *x, const void *xdata,
                        cudnnDataType_t dt, const void *w, int64_t cb, int64_t kh, int64_t kw,
                        int stride, int padding, void *y, int64_t co, int64_t ho, int64_t wo,
                        float beta, void *ws, size_t ws_avail) {
    int n = (int) x->shape[0], ci = (int) x->shape[1], h = (int) x->shape[2],
        wi = (int) x->shape[3];
    s_descs_t d;
    memset(&d, 0, sizeof d);
    int rc = -1;
    cudnnStatus_t st;
#define S_DNN(call)                                                                              \
    do {                                                                                         \
        if ((st = (call)) != CUDNN_STATUS_SUCCESS) {                                             \
            dq_error("cudnn: %s failed at %s:%d on device %d: %s", #call, __FILE__, __LINE__,  \
                     ctx->device, cudnnGetErrorString(st));                                      \
            goto done;                                                                           \
        }                                                                                        \
    } while (0)
    S_DNN(cudnnCreateTensorDescriptor(&d.x));
    S_DNN(cudnnCreateTensorDescriptor(&d.y));
    S_DNN(cudnnCreateFilterDescriptor(&d.w));
    S_DNN(cudnnCreateConvolutionDescriptor(&d.conv));
    S_DNN(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, dt, n, ci, h, wi));
    S_DNN(cudnnSetTensor4dDescriptorEx(d.y, dt, n, (int) cb, (int) ho, (int) wo,
                                       (int) (co * ho * wo), (int) (ho * wo), (int) wo, 1));
    S_DNN(cudnnSetFilter4dDescriptor(d.w, dt, CUDNN_TENSOR_NCHW, (int) cb, ci,
                                     (int) kh, (int) kw));
    /* CROSS_CORRELATION is what deep-learning frameworks call convolution (no kernel flip). */
    S_DNN(cudnnSetConvolution2dDescriptor(d.conv, padding, padding, stride, stride, 1, 1,
                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    S_DNN(cudnnSetConvolutionMathType(d.conv, ctx->precision == DQ_CUDA_PRECISION_F32
                                                  ? CUDNN_FMA_MATH
                                                  : CUDNN_DEFAULT_MATH));
    {
        int64_t key[10] = {n,  ci,     h,      wi, cb, kh, kw, stride, padding,
                           (int64_t) ctx->precision * 2 + (dt == CUDNN_DATA_HALF)};
        size_t esz = dt == CUDNN_DATA_HALF ? 2 : 4;
        s_operands_t ops = {xdata, w, ws, ws_avail,
                            (size_t) (((int64_t) n - 1) * co + cb) * (size_t) (ho * wo) * esz};
        dq_cuda_conv_algo_t algo;
        if (s_pick_algo(ctx, &d, key, &ops, &algo)) goto done;
        /* f16 mode runs the algorithm with the math it was timed with; f32 mode keeps FMA
         * math (an algorithm reported under CUDNN_DEFAULT_MATH could otherwise use TF32). */
        if (ctx->precision != DQ_CUDA_PRECISION_F32)
            S_DNN(cudnnSetConvolutionMathType(d.conv, algo.math));
        const float one = 1.0f;
        S_DNN(cudnnConvolutionForward(ctx->cudnn, &one, d.x, xdata, d.w, w, d.conv, algo.algo,
                                      ws, algo.ws_bytes, &beta, d.y, y));
    }
    rc = 0;
#undef S_DNN
done:
    s_descs_free(&d);
    return rc;
}

static int s_conv_f32(dq_cuda_ctx_t *ctx, const dq_tensor_t *x, const dq_tensor_t *w, int stride,
                      int padding, float beta, dq_tensor_t *y);

/* A residual of one value per image and channel ([N, Co, 1, 1]) rather than y's shape. */
static bool s_res_planes(const dq_tensor_t *residual, const dq_tensor_t *y) {
    return residual && dq_tensor_nelements(residual) != dq_tensor_nelements(y);
}

/* f16 mode: x, w and y in f16 in the workspace (F16 weights used in place), cuDNN computing in
 * f32 with tensor cores, y widened back to f32 with the bias and residual (either may be NULL)
 * added in the same pass. Returns 0, -1 on an error, or 1 when the f16 copies leave no room in
 * the workspace (the caller takes the f32 path, which tiles, and adds both itself). */
static int s_conv_f16(dq_cuda_ctx_t *ctx, const dq_tensor_t *x, const dq_tensor_t *w,
                      const dq_tensor_t *bias, int stride, int padding,
                      const dq_tensor_t *residual, dq_tensor_t *y) {
    int64_t co = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    int64_t nx = dq_tensor_nelements(x), nw = dq_tensor_nelements(w), ny = dq_tensor_nelements(y);
    size_t xb = s_align((size_t) nx * 2), yb = s_align((size_t) ny * 2);
    size_t wb = w->dtype == DQ_DTYPE_F16 ? 0 : s_align((size_t) nw * 2);
    if (xb + yb + wb >= ctx->work_bytes) return 1;
    char *base = (char *) ctx->work;
    void *x16 = base, *y16 = base + xb, *w16 = wb ? base + xb + yb : w->data;
    if (dq_cuda_convert_to_f16(ctx->stream, ctx->device, x->data, x->dtype, nx, x16) ||
        (wb && dq_cuda_convert_to_f16(ctx->stream, ctx->device, w->data, w->dtype, nw, w16)) ||
        s_conv_block(ctx, x, x16, CUDNN_DATA_HALF, w16, co, kh, kw, stride, padding, y16, co,
                     y->shape[2], y->shape[3], 0.0f, base + xb + yb + wb,
                     ctx->work_bytes - (xb + yb + wb)) ||
        dq_cuda_widen_f16_bias_planes(ctx->stream, ctx->device, y16,
                                      bias ? (const float *) bias->data : NULL,
                                      residual ? (const float *) residual->data : NULL,
                                      s_res_planes(residual, y), y->shape[0] * co, co,
                                      y->shape[2] * y->shape[3],
                                      (float *) y->data))
        return -1;
    return 0;
}

/* F16 activations (either mode): x and y f16 straight to cuDNN, F16 weights used in place,
 * F32/BF16 weights rounded to f16 in the workspace in blocks of output channels (cuDNN gets
 * the rest); the convolution accumulates onto y (beta). */
static int s_conv_act_f16(dq_cuda_ctx_t *ctx, const dq_tensor_t *x, const dq_tensor_t *w,
                          int stride, int padding, float beta, dq_tensor_t *y) {
    int64_t co = w->shape[0], ci = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    int64_t ho = y->shape[2], wo = y->shape[3], k = ci * kh * kw;
    if (w->dtype == DQ_DTYPE_F16) {
        if (s_conv_block(ctx, x, x->data, CUDNN_DATA_HALF, w->data, co, kh, kw, stride, padding,
                         y->data, co, ho, wo, beta, ctx->work, ctx->work_bytes))
            return -1;
    } else {
        int64_t cblock = (int64_t) (ctx->work_bytes / 2 / (2 * (size_t) k));
        if (cblock < 1) {
            dq_error("conv2d: cuda workspace of %zu bytes too small for one f16 weight row of "
                     "%lld",
                     ctx->work_bytes, (long long) k);
            return -1;
        }
        if (cblock > co) cblock = co;
        size_t wbytes = s_align((size_t) (cblock * k) * 2);
        void *ws = (char *) ctx->work + wbytes;
        size_t esz = dq_dtype_size(w->dtype);
        for (int64_t c0 = 0; c0 < co; c0 += cblock) {
            int64_t cb = co - c0 < cblock ? co - c0 : cblock;
            if (dq_cuda_convert_to_f16(ctx->stream, ctx->device,
                                       (const char *) w->data + (size_t) (c0 * k) * esz, w->dtype,
                                       cb * k, ctx->work) ||
                s_conv_block(ctx, x, x->data, CUDNN_DATA_HALF, ctx->work, cb, kh, kw, stride,
                             padding, (__half *) y->data + c0 * ho * wo, co, ho, wo, beta,
                             ws, ctx->work_bytes - wbytes))
                return -1;
        }
    }
    return 0;
}

int dq_cuda_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                   dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    // x: [N, Ci, H, W], w: [Co, Ci, kh, kw], y: [N, Co, Ho, Wo]
    int64_t co = w->shape[0], ho = y->shape[2], wo = y->shape[3];
    if (dq_tensor_nelements(x) > INT32_MAX || dq_tensor_nelements(y) > INT32_MAX) {
        dq_error("conv2d: tensors of more than 2^31 elements are beyond cuDNN's 4-D descriptors");
        return -1;
    }
    if (x->dtype == DQ_DTYPE_F32 && ctx->precision == DQ_CUDA_PRECISION_F16) {
        int rc = s_conv_f16(ctx, x, w, bias, stride, padding, residual, y);
        /* rc 0: done, bias and residual included; rc 1: the f16 copies do not fit the
         * workspace, so the f32 path below tiles instead. */
        if (rc <= 0) return rc;
    }
    /* y starts as residual + bias (each may be absent) and the convolution accumulates onto it
     * (cuDNN's beta). */
    float beta;
    if (dq_cuda_prefill(ctx->stream, ctx->device, y->dtype, y->data,
                        residual ? residual->data : NULL, s_res_planes(residual, y),
                        bias ? (const float *) bias->data : NULL, y->shape[0] * co, ho * wo, co,
                        &beta))
        return -1;
    if (x->dtype == DQ_DTYPE_F16) return s_conv_act_f16(ctx, x, w, stride, padding, beta, y);
    return s_conv_f32(ctx, x, w, stride, padding, beta, y);
}

/* f32 mode (and f16 mode's fallback): f32 data; F16/BF16 weights widened in channel blocks. */
static int s_conv_f32(dq_cuda_ctx_t *ctx, const dq_tensor_t *x, const dq_tensor_t *w, int stride,
                      int padding, float beta, dq_tensor_t *y) {
    int64_t co = w->shape[0], ci = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    int64_t ho = y->shape[2], wo = y->shape[3], k = ci * kh * kw;
    float *yd = (float *) y->data;
    if (w->dtype == DQ_DTYPE_F32) {
        if (s_conv_block(ctx, x, x->data, CUDNN_DATA_FLOAT, w->data, co, kh, kw, stride, padding,
                         yd, co, ho, wo, beta, ctx->work, ctx->work_bytes))
            return -1;
    } else {
        /* F16/BF16 weights: blocks of output channels widened into the first half of the
         * workspace (cuDNN gets the rest), each block writing its channels of y. */
        size_t half_ws = ctx->work_bytes / 2;
        int64_t cblock = (int64_t) (half_ws / (sizeof(float) * (size_t) k));
        if (cblock < 1) {
            dq_error("conv2d: cuda workspace of %zu bytes too small for one widened weight row "
                     "of %lld floats",
                     ctx->work_bytes, (long long) k);
            return -1;
        }
        if (cblock > co) cblock = co;
        /* Scratch for cuDNN starts 256-byte aligned after the widened block. */
        size_t wbytes = ((size_t) (cblock * k) * sizeof(float) + 255) & ~(size_t) 255;
        float *wbuf = (float *) ctx->work;
        void *ws = (char *) ctx->work + wbytes;
        size_t esz = dq_dtype_size(w->dtype);
        for (int64_t c0 = 0; c0 < co; c0 += cblock) {
            int64_t cb = co - c0 < cblock ? co - c0 : cblock;
            if (dq_cuda_convert_to_f32(ctx->stream, ctx->device,
                                       (const char *) w->data + (size_t) (c0 * k) * esz, w->dtype,
                                       cb * k, wbuf) ||
                s_conv_block(ctx, x, x->data, CUDNN_DATA_FLOAT, wbuf, cb, kh, kw, stride, padding,
                             yd + c0 * ho * wo, co, ho, wo, beta, ws,
                             ctx->work_bytes - wbytes))
                return -1;
        }
    }
    return 0;
}
