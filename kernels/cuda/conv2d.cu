/* kernels/cuda/conv2d.cu: 2-D convolution through cuDNN's convolution-forward API, in NCHW
 * (conv2d) or channels-last NHWC (conv2d_nhwc: NHWC tensor descriptors, KRSC filter), the
 * algorithm picked once per geometry and cached in the backend context. F16 activations go to
 * cuDNN as they are (f16 data, f32 accumulation); F32 activations in the f16 mode are rounded to
 * f16 in the workspace and widened back. The bias and residual are written into y first and
 * cuDNN accumulates onto them (beta = 1), except on that widening path, which adds them. */
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

/* One convolution's geometry, in either layout. */
typedef struct {
    bool nhwc;           /* x, y channels-last and w KRSC, else NCHW and KCRS */
    int64_t n, ci, h, w; /* x: [n, ci, h, w] or [n, h, w, ci] */
    int64_t co, kh, kw;  /* w: [co, ci, kh, kw] or [co, kh, kw, ci] */
    int64_t ho, wo;      /* y: [n, co, ho, wo] or [n, ho, wo, co] */
    int stride, padding;
} s_geom_t;

static s_geom_t s_geom(const dq_tensor_t *x, const dq_tensor_t *w, const dq_tensor_t *y, bool nhwc,
                       int stride, int padding) {
    s_geom_t g;
    g.nhwc = nhwc;
    g.n = x->shape[0];
    g.ci = x->shape[nhwc ? 3 : 1];
    g.h = x->shape[nhwc ? 1 : 2];
    g.w = x->shape[nhwc ? 2 : 3];
    g.co = w->shape[0];
    g.kh = w->shape[nhwc ? 1 : 2];
    g.kw = w->shape[nhwc ? 2 : 3];
    g.ho = y->shape[nhwc ? 1 : 2];
    g.wo = y->shape[nhwc ? 2 : 3];
    g.stride = stride;
    g.padding = padding;
    return g;
}

/* Elements of one output channel's weights: a filter row in both layouts (KCRS and KRSC keep
 * each output channel's ci * kh * kw weights contiguous), so blocks of rows are blocks of
 * output channels. */
static int64_t s_row(const s_geom_t *g) {
    return g->ci * g->kh * g->kw;
}

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
static int s_pick_algo(dq_cuda_ctx_t *ctx, const s_descs_t *d, const int64_t key[DQ_CUDA_CONV_KEY],
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
    /* The heuristics normally list every algorithm; if none passed, implicit GEMM (documented
     * for every NCHW geometry and for NHWC data with an NHWC filter, no transform, usually no
     * scratch) is the safe choice. */
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

/* Output channels [c0, c0 + cb) of y = conv(x, w block), through cuDNN: x's data at xdata,
 * the block's weights (cb filter rows) at w, y the whole output (the block is written through
 * y's own strides: channel c0 starts c0 * Ho * Wo elements in for NCHW, c0 for NHWC). dt: the
 * dtype of xdata, w and y (F32, or F16/BF16 with f32 accumulation). ws/ws_avail: what is left
 * of the workspace for cuDNN. */
static int s_conv_block(dq_cuda_ctx_t *ctx, const s_geom_t *g, const void *xdata, dq_dtype_t dt,
                        const void *w, int64_t c0, int64_t cb, void *y, float beta, void *ws,
                        size_t ws_avail) {
    const cudnnTensorFormat_t fmt = g->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    const int64_t hw = g->ho * g->wo;
    /* y's strides in elements (n, c, h, w) and the block's first element */
    const int64_t ys[4] = {g->co * hw, g->nhwc ? 1 : hw, g->nhwc ? g->wo * g->co : g->wo,
                           g->nhwc ? g->co : 1};
    const size_t esz = dq_dtype_size(dt);
    const cudnnDataType_t ct = dq_cuda_dnn_type(dt);
    void *yb = (char *) y + (size_t) (c0 * ys[1]) * esz;
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
    /* The dims are given as n, c, h, w whatever the format; the format sets the strides. */
    S_DNN(
        cudnnSetTensor4dDescriptor(d.x, fmt, ct, (int) g->n, (int) g->ci, (int) g->h, (int) g->w));
    S_DNN(cudnnSetTensor4dDescriptorEx(d.y, ct, (int) g->n, (int) cb, (int) g->ho, (int) g->wo,
                                       (int) ys[0], (int) ys[1], (int) ys[2], (int) ys[3]));
    /* k, c, h, w likewise: NCHW means KCRS packed, NHWC means KRSC packed. */
    S_DNN(
        cudnnSetFilter4dDescriptor(d.w, ct, fmt, (int) cb, (int) g->ci, (int) g->kh, (int) g->kw));
    /* CROSS_CORRELATION is what deep-learning frameworks call convolution (no kernel flip). */
    S_DNN(cudnnSetConvolution2dDescriptor(d.conv, g->padding, g->padding, g->stride, g->stride, 1,
                                          1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    S_DNN(cudnnSetConvolutionMathType(d.conv, ctx->precision == DQ_CUDA_PRECISION_F32
                                                  ? CUDNN_FMA_MATH
                                                  : CUDNN_DEFAULT_MATH));
    {
        const int64_t key[DQ_CUDA_CONV_KEY] = {g->n,
                                               g->ci,
                                               g->h,
                                               g->w,
                                               cb,
                                               g->co,
                                               g->kh,
                                               g->kw,
                                               g->stride,
                                               g->padding,
                                               g->nhwc,
                                               (int64_t) ctx->precision,
                                               (int64_t) dt};
        /* What the y descriptor spans: its last element, plus one. */
        int64_t extent =
            1 + (g->n - 1) * ys[0] + (cb - 1) * ys[1] + (g->ho - 1) * ys[2] + (g->wo - 1) * ys[3];
        s_operands_t ops = {xdata, w, ws, ws_avail, (size_t) extent * esz};
        dq_cuda_conv_algo_t algo;
        if (s_pick_algo(ctx, &d, key, &ops, &algo)) goto done;
        /* f16 mode runs the algorithm with the math it was timed with; f32 mode keeps FMA
         * math (an algorithm reported under CUDNN_DEFAULT_MATH could otherwise use TF32). */
        if (ctx->precision != DQ_CUDA_PRECISION_F32)
            S_DNN(cudnnSetConvolutionMathType(d.conv, algo.math));
        const float one = 1.0f;
        S_DNN(cudnnConvolutionForward(ctx->cudnn, &one, d.x, xdata, d.w, w, d.conv, algo.algo, ws,
                                      algo.ws_bytes, &beta, d.y, yb));
    }
    rc = 0;
#undef S_DNN
done:
    s_descs_free(&d);
    return rc;
}

/* A residual of one value per image and channel ([N, Co, 1, 1] or [N, 1, 1, Co]) rather than
 * y's shape. */
static bool s_res_per_image(const dq_tensor_t *residual, const dq_tensor_t *y) {
    return residual && dq_tensor_nelements(residual) != dq_tensor_nelements(y);
}

/* Where y's bias and residual come from in g's layout. */
static dq_cuda_bcast_t s_bcast(const s_geom_t *g, const dq_tensor_t *residual,
                               const dq_tensor_t *y) {
    bool per_image = s_res_per_image(residual, y);
    return g->nhwc ? dq_cuda_bcast_nhwc(g->n, g->ho * g->wo, g->co, per_image)
                   : dq_cuda_bcast_nchw(g->n, g->co, g->ho * g->wo, per_image);
}

/* f16 mode: x, w and y in f16 in the workspace (F16 weights used in place), cuDNN computing in
 * f32 with tensor cores, y widened back to f32 with the bias and residual (either may be NULL)
 * added in the same pass. Returns 0, -1 on an error, or 1 when the f16 copies leave no room in
 * the workspace (the caller takes the f32 path, which tiles, and adds both itself). */
static int s_conv_f16(dq_cuda_ctx_t *ctx, const s_geom_t *g, const dq_tensor_t *x,
                      const dq_tensor_t *w, const dq_tensor_t *bias, const dq_tensor_t *residual,
                      dq_tensor_t *y) {
    int64_t nx = dq_tensor_nelements(x), nw = dq_tensor_nelements(w), ny = dq_tensor_nelements(y);
    size_t xb = s_align((size_t) nx * 2), yb = s_align((size_t) ny * 2);
    size_t wb = w->dtype == DQ_DTYPE_F16 ? 0 : s_align((size_t) nw * 2);
    if (xb + yb + wb >= ctx->work_bytes) return 1;
    char *base = (char *) ctx->work;
    void *x16 = base, *y16 = base + xb, *w16 = wb ? base + xb + yb : w->data;
    if (dq_cuda_convert_to_16(ctx->stream, ctx->device, x->data, x->dtype, nx, x16,
                              DQ_DTYPE_F16) ||
        (wb && dq_cuda_convert_to_16(ctx->stream, ctx->device, w->data, w->dtype, nw, w16,
                                     DQ_DTYPE_F16)) ||
        s_conv_block(ctx, g, x16, DQ_DTYPE_F16, w16, 0, g->co, y16, 0.0f, base + xb + yb + wb,
                     ctx->work_bytes - (xb + yb + wb)) ||
        dq_cuda_widen_f16_bias(ctx->stream, ctx->device, y16,
                               bias ? (const float *) bias->data : NULL,
                               residual ? (const float *) residual->data : NULL,
                               s_bcast(g, residual, y), (float *) y->data))
        return -1;
    return 0;
}

/* y = conv(x, w) + beta * y for x and y of dtype wdt (F32, F16 or BF16): w used in place when
 * its dtype is wdt, else converted to it (widened to f32, or rounded to the 16-bit dtype) in
 * blocks of output channels in the first half of the workspace, cuDNN getting the rest, each
 * block writing its channels of y. */
static int s_conv_blocks(dq_cuda_ctx_t *ctx, const s_geom_t *g, const dq_tensor_t *x,
                         const dq_tensor_t *w, dq_dtype_t wdt, float beta, dq_tensor_t *y) {
    if (w->dtype == wdt)
        return s_conv_block(ctx, g, x->data, wdt, w->data, 0, g->co, y->data, beta, ctx->work,
                            ctx->work_bytes);
    const int64_t k = s_row(g);
    const size_t dsz = dq_dtype_size(wdt), esz = dq_dtype_size(w->dtype);
    int64_t cblock = (int64_t) (ctx->work_bytes / 2 / (dsz * (size_t) k));
    if (cblock < 1) {
        dq_error("conv2d: cuda workspace of %zu bytes too small for one converted weight row of "
                 "%lld %s values",
                 ctx->work_bytes, (long long) k, dq_dtype_name(wdt));
        return -1;
    }
    /* Blocks of a multiple of 8 channels where they split y: a channels-last block then starts
     * 16-byte aligned (cuDNN's vectorised kernels may need it; its heuristics see only the
     * descriptors, not the pointers). */
    if (cblock >= g->co)
        cblock = g->co;
    else if (cblock >= 8)
        cblock &= ~(int64_t) 7;
    /* Scratch for cuDNN starts 256-byte aligned after the converted block. */
    size_t wbytes = s_align((size_t) (cblock * k) * dsz);
    void *ws = (char *) ctx->work + wbytes;
    for (int64_t c0 = 0; c0 < g->co; c0 += cblock) {
        int64_t cb = g->co - c0 < cblock ? g->co - c0 : cblock;
        const void *src = (const char *) w->data + (size_t) (c0 * k) * esz;
        int rc = dq_cuda_is_act16(wdt)
                     ? dq_cuda_convert_to_16(ctx->stream, ctx->device, src, w->dtype, cb * k,
                                             ctx->work, wdt)
                     : dq_cuda_convert_to_f32(ctx->stream, ctx->device, src, w->dtype, cb * k,
                                              (float *) ctx->work);
        if (rc || s_conv_block(ctx, g, x->data, wdt, ctx->work, c0, cb, y->data, beta, ws,
                               ctx->work_bytes - wbytes))
            return -1;
    }
    return 0;
}

/* conv2d in either layout (the op table's entries below). */
static int s_conv(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                  dq_tensor_t *y, bool nhwc) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    const s_geom_t g = s_geom(x, w, y, nhwc, stride, padding);
    if (dq_tensor_nelements(x) > INT32_MAX || dq_tensor_nelements(y) > INT32_MAX) {
        dq_error("conv2d: tensors of more than 2^31 elements are beyond cuDNN's 4-D descriptors");
        return -1;
    }
    if (x->dtype == DQ_DTYPE_F32 && ctx->precision == DQ_CUDA_PRECISION_F16) {
        int rc = s_conv_f16(ctx, &g, x, w, bias, residual, y);
        /* rc 0: done, bias and residual included; rc 1: the f16 copies do not fit the
         * workspace, so the f32 path below tiles instead. */
        if (rc <= 0) return rc;
    }
    /* y starts as residual + bias (each may be absent) and the convolution accumulates onto it
     * (cuDNN's beta). */
    float beta;
    if (dq_cuda_prefill(ctx->stream, ctx->device, y->dtype, y->data,
                        residual ? residual->data : NULL, bias ? (const float *) bias->data : NULL,
                        s_bcast(&g, residual, y), &beta))
        return -1;
    /* F16/BF16 activations (either mode): straight to cuDNN, weights of another dtype rounded to
     * theirs. F32 activations (f32 mode, or the f16 mode's fallback): f32 data, F16/BF16 weights
     * widened, so the products are the CPU's products. */
    return s_conv_blocks(ctx, &g, x, w, x->dtype, beta, y);
}

int dq_cuda_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                   dq_tensor_t *y) {
    // x: [N, Ci, H, W], w: [Co, Ci, kh, kw], y: [N, Co, Ho, Wo]
    return s_conv(be, x, w, bias, stride, padding, residual, y, false);
}

int dq_cuda_conv2d_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                        const dq_tensor_t *bias, int stride, int padding,
                        const dq_tensor_t *residual, dq_tensor_t *y) {
    // x: [N, H, W, Ci], w: [Co, kh, kw, Ci], y: [N, Ho, Wo, Co]
    return s_conv(be, x, w, bias, stride, padding, residual, y, true);
}
