/* kernels/cpu/conv2d.c: 2-D convolution (NCHW): 3x3 through kernels/cpu/conv2d_winograd.c where it
 * applies, else banded im2col + sgemm; 1x1 as a plain sgemm. */
#include <cblas.h>
#include <string.h>

#include "common/log.h"
#include "kernels/cpu/cpu_internal.h"

/* Geometry of one convolution, in elements. */
typedef struct {
    int64_t ci, h, w;     /* input channels, height, width */
    int64_t co, kh, kw;   /* output channels, kernel height, width */
    int64_t ho, wo;       /* output height, width */
    int64_t stride, pad;  /* same in both directions */
} s_geom_t;

/* col[K, rows*wo] for output rows [oh0, oh0+rows) of one image x[ci, h, w], where
 * K = ci*kh*kw ordered (ci, i, j) like the weight's [Co, Ci, kh, kw] rows. Zero padding. */
static void s_im2col(const s_geom_t *g, const float *x, int64_t oh0, int64_t rows, float *col) {
    int64_t kk = g->kh * g->kw, cols = rows * g->wo;
#pragma omp parallel for if (g->ci * kk * cols >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < g->ci * kk; r++) {
        int64_t c = r / kk, i = (r % kk) / g->kw, j = r % g->kw;
        const float *xc = x + c * g->h * g->w;
        float *dst = col + r * cols;
        for (int64_t oh = 0; oh < rows; oh++) {
            int64_t ih = (oh0 + oh) * g->stride - g->pad + i;
            float *d = dst + oh * g->wo;
            if (ih < 0 || ih >= g->h) {
                memset(d, 0, (size_t) g->wo * sizeof *d);
                continue;
            }
            const float *xr = xc + ih * g->w;
            for (int64_t ow = 0; ow < g->wo; ow++) {
                int64_t iw = ow * g->stride - g->pad + j;
                d[ow] = iw >= 0 && iw < g->w ? xr[iw] : 0.0f;
            }
        }
    }
}

int dq_cpu_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                  dq_tensor_t *y) {
    if (dq_cpu_conv2d_winograd(be, x, w, bias, stride, padding, residual, y) == 0) return 0;
    dq_cpu_ctx_t *ctx = dq_cpu_ctx(be);
    // x: [N, Ci, H, W], w: [Co, Ci, kh, kw], y: [N, Co, Ho, Wo]
    s_geom_t g = {.ci = x->shape[1], .h = x->shape[2], .w = x->shape[3], .co = w->shape[0],
                  .kh = w->shape[2], .kw = w->shape[3], .ho = y->shape[2], .wo = y->shape[3],
                  .stride = stride, .pad = padding};
    int64_t k = g.ci * g.kh * g.kw, p = g.ho * g.wo;
    bool direct = g.kh == 1 && g.kw == 1 && stride == 1 && padding == 0;

    /* Workspace: converted weight rows (F16/BF16 only) first, the im2col band after them. */
    size_t avail = ctx->work_floats;
    int64_t co_block = g.co;
    if (w->dtype != DQ_DTYPE_F32) {
        size_t per = direct ? avail : avail / 2;
        co_block = (int64_t) (per / (size_t) k);
        if (co_block > g.co) co_block = g.co;
    }
    float *wbuf = ctx->work;
    size_t wfloats = w->dtype != DQ_DTYPE_F32 ? (size_t) (co_block * k) : 0;
    float *col = ctx->work + wfloats;
    int64_t band = direct ? g.ho : (int64_t) ((avail - wfloats) / (size_t) (k * g.wo));
    if (co_block < 1 || band < 1) {
        dq_error("conv2d: cpu workspace of %zu floats too small for K=%lld, Wo=%lld "
                 "(need about %lld floats)",
                 ctx->work_floats, (long long) k, (long long) g.wo,
                 (long long) (k * g.wo + (w->dtype != DQ_DTYPE_F32 ? k : 0)));
        return -1;
    }
    if (band > g.ho) band = g.ho;

    const float *xd = x->data;
    float *yd = y->data;
    /* y starts as residual + bias and the sgemms add to it (beta = 1): one pass over y fewer
     * than zeroing it (OpenBLAS's beta = 0) and adding the terms afterwards. */
    bool res_planes = residual && dq_tensor_nelements(residual) != dq_tensor_nelements(y);
    float beta = dq_cpu_prefill(yd, residual ? residual->data : NULL,
                                res_planes ? DQ_CPU_RES_PLANE : DQ_CPU_RES_SAME,
                                bias ? bias->data : NULL, x->shape[0] * g.co, p, g.co)
                     ? 1.0f
                     : 0.0f;
    /* F16/BF16 weights that fit one block are converted once for every image and band. */
    const float *wp = NULL;
    for (int64_t n = 0; n < x->shape[0]; n++) {
        const float *xn = xd + n * g.ci * g.h * g.w;
        float *yn = yd + n * g.co * p;
        for (int64_t oh0 = 0; oh0 < g.ho; oh0 += band) {
            int64_t rows = g.ho - oh0 < band ? g.ho - oh0 : band, cols = rows * g.wo;
            const float *b = xn;
            if (!direct) {
                s_im2col(&g, xn, oh0, rows, col);
                b = col;
            }
            for (int64_t c0 = 0; c0 < g.co; c0 += co_block) {
                int64_t cb = g.co - c0 < co_block ? g.co - c0 : co_block;
                if (!wp || co_block < g.co) wp = dq_cpu_weight_rows(w, c0, cb, k, wbuf);
                /* y[c0.., oh0*wo ..] += W[cb, K] @ col[K, cols]; ldc = P strides whole images. */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint) cb,
                            (blasint) cols, (blasint) k, 1.0f, wp, (blasint) k, b, (blasint) cols,
                            beta, yn + c0 * p + oh0 * g.wo, (blasint) p);
            }
        }
    }
    return 0;
}
