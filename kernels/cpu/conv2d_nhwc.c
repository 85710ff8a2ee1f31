/* kernels/cpu/conv2d_nhwc.c: 2-D convolution on channels-last data (x[N, H, W, Ci],
 * w[Co, kh, kw, Ci], y[N, Ho, Wo, Co]) as patches @ W^T: with the channels innermost, a pixel's
 * receptive field is kh*kw runs of Ci contiguous floats, and its output is one row of Co. */
#include <cblas.h>
#include <string.h>

#include "common/log.h"
#include "kernels/cpu/cpu_internal.h"

/* Geometry of one convolution, in elements. */
typedef struct {
    int64_t h, w, ci;    /* input height, width, channels */
    int64_t ho, wo, co;  /* output height, width, channels */
    int64_t kh, kw;      /* kernel height, width */
    int64_t stride, pad; /* same in both directions */
} s_geom_t;

/* patches[m, K] for output pixels [q0, q0+m) (row-major over Ho x Wo) of one image x[h, w, ci];
 * K = kh*kw*ci in w's (i, j, c) order; zero padding. */
static void s_patches(const s_geom_t *g, const float *x, int64_t q0, int64_t m, float *patches) {
    int64_t k = g->kh * g->kw * g->ci;
#pragma omp parallel for if (m * k >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < m; r++) {
        int64_t oh = (q0 + r) / g->wo, ow = (q0 + r) % g->wo;
        float *dst = patches + r * k;
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t ih = oh * g->stride - g->pad + i;
            for (int64_t j = 0; j < g->kw; j++, dst += g->ci) {
                int64_t iw = ow * g->stride - g->pad + j;
                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
                    memset(dst, 0, (size_t) g->ci * sizeof *dst);
                else
                    memcpy(dst, x + (ih * g->w + iw) * g->ci, (size_t) g->ci * sizeof *dst);
            }
        }
    }
}

int dq_cpu_conv2d_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                       const dq_tensor_t *bias, int stride, int padding,
                       const dq_tensor_t *residual, dq_tensor_t *y) {
    dq_cpu_ctx_t *ctx = dq_cpu_ctx(be);
    s_geom_t g = {.h = x->shape[1], .w = x->shape[2], .ci = x->shape[3], .ho = y->shape[1],
                  .wo = y->shape[2], .co = y->shape[3], .kh = w->shape[1], .kw = w->shape[2],
                  .stride = stride, .pad = padding};
    int64_t n = x->shape[0], k = g.kh * g.kw * g.ci, p = g.ho * g.wo;
    bool direct = g.kh == 1 && g.kw == 1 && stride == 1 && padding == 0;

    /* Workspace: converted weight rows (F16/BF16 only) first, then the patches of a band of
     * output pixels. */
    size_t avail = ctx->work_floats;
    int64_t co_block = g.co;
    if (w->dtype != DQ_DTYPE_F32) {
        co_block = (int64_t) ((direct ? avail : avail / 2) / (size_t) k);
        if (co_block > g.co) co_block = g.co;
    }
    size_t wfloats = w->dtype != DQ_DTYPE_F32 ? (size_t) (co_block * k) : 0;
    float *wbuf = ctx->work, *patches = ctx->work + wfloats;
    int64_t band = direct ? p : (int64_t) ((avail - wfloats) / (size_t) k);
    if (co_block < 1 || band < 1) {
        dq_error("conv2d_nhwc: cpu workspace of %zu floats too small for K=%lld "
                 "(need about %lld floats)",
                 ctx->work_floats, (long long) k,
                 (long long) (k + (w->dtype != DQ_DTYPE_F32 ? k : 0)));
        return -1;
    }
    if (band > p) band = p;

    const float *xd = x->data, *bd = bias ? bias->data : NULL;
    const float *rd = residual ? residual->data : NULL;
    float *yd = y->data;
    /* y starts as residual + bias and the sgemms add to it (beta = 1). A [N, 1, 1, Co]
     * residual is one row for each pixel of its image. */
    bool per_image = rd && dq_tensor_nelements(residual) != dq_tensor_nelements(y);
    bool filled = false;
    if (per_image) {
        for (int64_t i = 0; i < n; i++)
            filled = dq_cpu_prefill(yd + i * p * g.co, rd + i * g.co, DQ_CPU_RES_ROW, bd, p, g.co,
                                    0);
    } else {
        filled = dq_cpu_prefill(yd, rd, DQ_CPU_RES_SAME, bd, n * p, g.co, 0);
    }
    float beta = filled ? 1.0f : 0.0f;
    /* F16/BF16 weights that fit one block are converted once for every image and band. */
    const float *wp = NULL;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = xd + i * g.h * g.w * g.ci;
        float *yi = yd + i * p * g.co;
        for (int64_t q0 = 0; q0 < p; q0 += band) {
            int64_t m = p - q0 < band ? p - q0 : band;
            /* 1x1, stride 1, no padding: x's pixels are the patches */
            const float *a = xi + q0 * g.ci;
            if (!direct) {
                s_patches(&g, xi, q0, m, patches);
                a = patches;
            }
            for (int64_t c0 = 0; c0 < g.co; c0 += co_block) {
                int64_t cb = g.co - c0 < co_block ? g.co - c0 : co_block;
                if (!wp || co_block < g.co) wp = dq_cpu_weight_rows(w, c0, cb, k, wbuf);
                /* y[pixels of the band, c0..] += patches[m, K] @ W[cb, K]^T; ldc = Co. */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint) m, (blasint) cb,
                            (blasint) k, 1.0f, a, (blasint) k, wp, (blasint) k, beta,
                            yi + q0 * g.co + c0, (blasint) g.co);
            }
        }
    }
    return 0;
}
