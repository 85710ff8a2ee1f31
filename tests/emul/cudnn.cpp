/* tests/emul/cudnn.cpp: the emulated cuDNN subset: descriptors, one heuristic answer (implicit
 * GEMM with FMA math, no scratch), and convolution forward as cuDNN defines it:
 * y[n, k, p, q] = alpha * sum_{c, r, s} x[n, c, p*u - pad_h + r, q*v - pad_w + s] * w[k, c, r, s]
 * + beta * y (cross-correlation; zero outside x), x and y addressed through their strides (so
 * NCHW and NHWC alike), w packed as KCRS (NCHW filter format) or KRSC (NHWC). Sums in double,
 * stored in the descriptor's type (f16 rounds once, as pseudo-half does). The descriptors' sizes
 * must agree with each other as cuDNN requires (else BAD_PARAM); an NHWC filter takes x and y
 * with their channels innermost (stride 1), the configurations cuDNN documents for it (else
 * NOT_SUPPORTED). y's elements overlapping each other, x or the workspace stop the test with a
 * message (on a GPU: a race that nothing reports). */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "tests/emul/include/cudnn.h"

struct cudnnContext {
    cudaStream_t stream;
};
struct cudnnTensorStruct {
    cudnnDataType_t type;
    int dims[4];    /* n, c, h, w */
    int strides[4]; /* in elements */
    bool set;
};
struct cudnnFilterStruct {
    cudnnDataType_t type;
    cudnnTensorFormat_t format; /* NCHW: KCRS packed; NHWC: KRSC packed */
    int dims[4];                /* k, c, r, s whatever the format */
    bool set;
};
struct cudnnConvolutionStruct {
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnMathType_t math;
    bool set;
};

namespace {

double s_get(const void *p, cudnnDataType_t t, long long i) {
    if (t == CUDNN_DATA_HALF) return __half2float(((const __half *) p)[i]);
    if (t == CUDNN_DATA_BFLOAT16) return __bfloat162float(((const __nv_bfloat16 *) p)[i]);
    return ((const float *) p)[i];
}

void s_put(void *p, cudnnDataType_t t, long long i, double v) {
    if (t == CUDNN_DATA_HALF)
        ((__half *) p)[i] = __float2half_rn((float) v);
    else if (t == CUDNN_DATA_BFLOAT16)
        ((__nv_bfloat16 *) p)[i] = __float2bfloat16_rn((float) v);
    else
        ((float *) p)[i] = (float) v;
}

bool s_type_ok(cudnnDataType_t t) {
    return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_HALF || t == CUDNN_DATA_BFLOAT16;
}

/* Bytes from a tensor's first element to past its last. */
long long s_extent(const cudnnTensorStruct *t) {
    long long e = 1;
    for (int i = 0; i < 4; i++)
        e += (long long) (t->dims[i] - 1) * t->strides[i];
    return e * (t->type == CUDNN_DATA_FLOAT ? 4 : 2);
}

/* Whether two byte ranges [a, a + na) and [b, b + nb) share a byte. */
bool s_overlap(const void *a, long long na, const void *b, long long nb) {
    const char *pa = (const char *) a, *pb = (const char *) b;
    return na > 0 && nb > 0 && pa < pb + nb && pb < pa + na;
}

/* No two elements of t at one address: taken by increasing stride, each dim (of more than one
 * element) must step past everything the smaller dims span. */
bool s_no_self_overlap(const cudnnTensorStruct *t) {
    int order[4] = {0, 1, 2, 3};
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && t->strides[order[j]] < t->strides[order[j - 1]]; j--)
            std::swap(order[j], order[j - 1]);
    long long span = 1; /* elements the smaller dims reach, plus one */
    for (int i = 0; i < 4; i++) {
        int d = order[i];
        if (t->dims[d] == 1) continue;
        if (t->strides[d] < span) return false;
        span = (long long) t->strides[d] * (t->dims[d] - 1) + span;
    }
    return true;
}

/* A GPU runs a convolution whose output overlaps itself, x or the workspace without a word
 * (cuDNN does not look at the pointers) and races; here that caller's bug stops the test with a
 * message, as a barrier deadlock does (runtime.cpp). */
void s_no_races(const char *fn, const cudnnTensorStruct *xd, const void *x,
                const cudnnTensorStruct *yd, const void *y, const void *ws, size_t ws_bytes) {
    const char *what = !s_no_self_overlap(yd)                        ? "y overlaps itself"
                       : s_overlap(y, s_extent(yd), x, s_extent(xd)) ? "y overlaps x"
                       : s_overlap(y, s_extent(yd), ws, (long long) ws_bytes)
                           ? "y overlaps the workspace"
                           : nullptr;
    if (!what) return;
    fprintf(stderr,
            "cudnn emulation: %s: %s (y at %p, %lld bytes; x at %p; workspace at %p, %zu "
            "bytes)\n",
            fn, what, y, s_extent(yd), x, ws, ws_bytes);
    exit(3);
}

/* The descriptors fit one convolution: channels agree, y's size is the formula's. */
cudnnStatus_t s_check(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                      cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y) {
    if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set)
        return CUDNN_STATUS_BAD_PARAM;
    if (x->type != w->type || x->type != y->type || c->dil_h != 1 || c->dil_w != 1)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (w->format == CUDNN_TENSOR_NHWC && (x->strides[1] != 1 || y->strides[1] != 1))
        return CUDNN_STATUS_NOT_SUPPORTED;
    int ho = (x->dims[2] + 2 * c->pad_h - w->dims[2]) / c->u + 1;
    int wo = (x->dims[3] + 2 * c->pad_w - w->dims[3]) / c->v + 1;
    if (x->dims[1] != w->dims[1] || y->dims[0] != x->dims[0] || y->dims[1] != w->dims[0] ||
        y->dims[2] != ho || y->dims[3] != wo)
        return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

/* The convolution itself (descriptors already checked). */
void s_conv_run(double a, const cudnnTensorStruct *xd, const void *x, const cudnnFilterStruct *wd,
                const void *w, const cudnnConvolutionStruct *cd, double b,
                const cudnnTensorStruct *yd, void *y) {
    const int *xs = xd->strides, *ys = yd->strides;
    int C = xd->dims[1], H = xd->dims[2], W = xd->dims[3];
    int K = yd->dims[1], R = wd->dims[2], S = wd->dims[3], crs = C * R * S;
    /* The filter as doubles in KCRS order, and per output pixel its input patch (zeros
     * outside x): then each output is one contiguous dot product. */
    std::vector<double> wv((size_t) K * crs), patch(crs);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++)
            for (int r = 0; r < R; r++)
                for (int t = 0; t < S; t++) {
                    long long src = wd->format == CUDNN_TENSOR_NHWC
                                        ? (((long long) k * R + r) * S + t) * C + c
                                        : (((long long) k * C + c) * R + r) * S + t;
                    wv[(size_t) k * crs + ((size_t) c * R + r) * S + t] = s_get(w, wd->type, src);
                }
    for (int n = 0; n < yd->dims[0]; n++)
        for (int p = 0; p < yd->dims[2]; p++)
            for (int q = 0; q < yd->dims[3]; q++) {
                for (int c = 0; c < C; c++)
                    for (int r = 0; r < R; r++)
                        for (int t = 0; t < S; t++) {
                            int hi = p * cd->u - cd->pad_h + r, wi = q * cd->v - cd->pad_w + t;
                            bool in = hi >= 0 && hi < H && wi >= 0 && wi < W;
                            long long xi = (long long) n * xs[0] + (long long) c * xs[1] +
                                           (long long) hi * xs[2] + (long long) wi * xs[3];
                            patch[((size_t) c * R + r) * S + t] = in ? s_get(x, xd->type, xi) : 0.0;
                        }
                for (int k = 0; k < K; k++) {
                    const double *wk = &wv[(size_t) k * crs];
                    double sum = 0.0;
                    for (int i = 0; i < crs; i++) sum += wk[i] * patch[i];
                    long long yi = (long long) n * ys[0] + (long long) k * ys[1] +
                                   (long long) p * ys[2] + (long long) q * ys[3];
                    double v = a * sum + (b != 0.0 ? b * s_get(y, yd->type, yi) : 0.0);
                    s_put(y, yd->type, yi, v);
                }
            }
}

} // namespace

const char *cudnnGetErrorString(cudnnStatus_t s) {
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    }
    return "CUDNN_UNKNOWN_STATUS";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    *h = new cudnnContext{nullptr};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
    delete h;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t st) {
    h->stream = st;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    *d = new cudnnTensorStruct{};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t d, cudnnDataType_t t, int n,
                                           int c, int h, int w, int ns, int cs, int hs, int ws) {
    if (!s_type_ok(t) || n < 1 || c < 1 || h < 1 || w < 1 || ns < 1 || cs < 1 || hs < 1 || ws < 1)
        return CUDNN_STATUS_BAD_PARAM;
    *d = cudnnTensorStruct{t, {n, c, h, w}, {ns, cs, hs, ws}, true};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f,
                                         cudnnDataType_t t, int n, int c, int h, int w) {
    /* packed in the format's order; the dims are n, c, h, w either way */
    if (f == CUDNN_TENSOR_NHWC)
        return cudnnSetTensor4dDescriptorEx(d, t, n, c, h, w, h * w * c, 1, w * c, c);
    if (f != CUDNN_TENSOR_NCHW) return CUDNN_STATUS_NOT_SUPPORTED;
    return cudnnSetTensor4dDescriptorEx(d, t, n, c, h, w, c * h * w, h * w, w, 1);
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    *d = new cudnnFilterStruct{};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                         cudnnTensorFormat_t f, int k, int c, int h, int w) {
    if (f != CUDNN_TENSOR_NCHW && f != CUDNN_TENSOR_NHWC) return CUDNN_STATUS_NOT_SUPPORTED;
    if (!s_type_ok(t) || k < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
    *d = cudnnFilterStruct{t, f, {k, c, h, w}, true};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    *d = new cudnnConvolutionStruct{};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h,
                                              int pad_w, int u, int v, int dil_h, int dil_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
    if (pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dil_h < 1 || dil_w < 1 ||
        compute != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_BAD_PARAM;
    if (mode != CUDNN_CROSS_CORRELATION) return CUDNN_STATUS_NOT_SUPPORTED;
    *d = cudnnConvolutionStruct{pad_h, pad_w, u, v, dil_h, dil_w, mode, CUDNN_DEFAULT_MATH, true};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
    cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y, int requested, int *returned,
    cudnnConvolutionFwdAlgoPerf_t *perf) {
    (void) h;
    cudnnStatus_t st = s_check(x, w, conv, y);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (requested < 1) return CUDNN_STATUS_BAD_PARAM;
    std::memset(perf, 0, sizeof *perf);
    perf[0].algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    perf[0].status = CUDNN_STATUS_SUCCESS;
    perf[0].mathType = CUDNN_FMA_MATH;
    *returned = 1;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t h, cudnnTensorDescriptor_t xd, const void *x, cudnnFilterDescriptor_t wd,
    const void *w, cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, void *y,
    int requested, int *returned, cudnnConvolutionFwdAlgoPerf_t *perf, void *ws, size_t ws_bytes) {
    if (h->stream && dq_emul_refused_in_capture()) return CUDNN_STATUS_NOT_SUPPORTED;
    cudnnStatus_t st = s_check(xd, wd, cd, yd);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (requested < 1 || !x || !w || !y) return CUDNN_STATUS_BAD_PARAM;
    s_no_races("cudnnFindConvolutionForwardAlgorithmEx", xd, x, yd, y, ws, ws_bytes);
    /* Earlier work on the stream has run (an emulated stream runs its work at once). */
    s_conv_run(1.0, xd, x, wd, w, cd, 0.0, yd, y);
    std::memset(perf, 0, sizeof *perf);
    perf[0].algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    perf[0].status = CUDNN_STATUS_SUCCESS;
    perf[0].mathType = CUDNN_FMA_MATH;
    perf[0].time = 1.0f;
    *returned = 1;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w,
                                                      cudnnConvolutionDescriptor_t conv,
                                                      cudnnTensorDescriptor_t y,
                                                      cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes) {
    (void) h;
    (void) algo;
    *bytes = 0;
    return s_check(x, w, conv, y);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha,
                                      cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w,
                                      cudnnConvolutionDescriptor_t cd,
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes,
                                      const void *beta, cudnnTensorDescriptor_t yd, void *y) {
    if (algo < 0 || algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT) return CUDNN_STATUS_BAD_PARAM;
    cudnnStatus_t st = s_check(xd, wd, cd, yd);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    s_no_races("cudnnConvolutionForward", xd, x, yd, y, ws, ws_bytes);
    /* alpha and beta are floats for f32 and f16 data (f32 compute), read now; the descriptors
     * are copied, as the caller may destroy them once the call is queued. */
    double a = *(const float *) alpha, b = *(const float *) beta;
    cudnnTensorStruct xs_ = *xd, ys_ = *yd;
    cudnnFilterStruct ws_ = *wd;
    cudnnConvolutionStruct cs_ = *cd;
    dq_emul_stream_op(h->stream, [=] { s_conv_run(a, &xs_, x, &ws_, w, &cs_, b, &ys_, y); });
    return CUDNN_STATUS_SUCCESS;
}
