/* kernels/cpu/conv2d_winograd.c: 3x3 stride-1 convolution as Winograd F(2x2, 3x3) + 16 sgemms. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

/* Why: a 3x3 convolution through im2col costs 9 multiply-adds per input channel and output
 * pixel. F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015)
 * makes each 2x2 block of outputs from a 4x4 block of inputs with 16 products per channel pair
 * instead of 36: 2.25x fewer flops, spent in 16 independent [Co, Ci] x [Ci, tiles] sgemms. Its
 * transforms only add, subtract and halve, so the result stays within a few ulp of the direct
 * sum (tests/unit/test_ops_cpu.c holds it to the same 1e-5 as the sgemm path).
 *
 *   U = G g G^T (weights), V = B^T d B (input tiles), M = U . V (the sgemms, per element of the
 *   4x4), y = A^T M A, with
 *   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1], B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]. */

/* Fewest 2x2 output tiles per image for which this path is taken (the SD 1.5 UNet's 32x32
 * level has 256, its 16x16 level 64): below it the 16 transformed weight matrices cost more to
 * make than the sgemms save. Per image, and the workspace test below does not depend on the
 * batch either: an image must give the same bits alone and in a batch. */
#define S_MIN_TILES 128

/* Widest image taken: s_inputs keeps 4 padded rows on the stack (16 KiB at 1024). */
#define S_MAX_WIDTH 1024

typedef struct {
    int64_t n, ci, h, w, co; /* batch, input channels, height, width, output channels */
    int64_t th, tw, tiles;   /* tile rows and columns per image, th*tw*n */
} s_geom_t;

/* U[16][co0..co0+cb)[ci] for output channels [co0, co0+cb): U[e][o][i] = (G g G^T)[e] of the
 * 3x3 kernel w[co0+o][i]. */
static void s_weights(const s_geom_t *g, const float *w, int64_t co0, int64_t cb, float *u) {
    int64_t plane = cb * g->ci;
#pragma omp for schedule(static)
    for (int64_t oi = 0; oi < plane; oi++) {
        const float *k = w + (co0 * g->ci + oi) * 9;
        float t[4][3], r[16];
        for (int j = 0; j < 3; j++) {
            t[0][j] = k[j];
            t[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
            t[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
            t[3][j] = k[6 + j];
        }
        for (int i = 0; i < 4; i++) {
            r[i * 4 + 0] = t[i][0];
            r[i * 4 + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
            r[i * 4 + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
            r[i * 4 + 3] = t[i][2];
        }
        for (int e = 0; e < 16; e++) u[e * plane + oi] = r[e];
    }
}

/* V[16][ci][nt] for tiles [t0, t0+nt) (tile t = (image, tile row, tile column)), zero padding
 * of 1 around each image. */
static void s_inputs(const s_geom_t *g, const float *x, int64_t t0, int64_t nt, float *v) {
    int64_t plane = g->ci * nt, wp = 2 * g->tw + 2;
    /* One padded row band per (channel, tile row): 4 input rows, 1 zero column left and
     * enough right to fill the last tile; then the tile loop reads without bounds checks. */
    float band[4][wp];
#pragma omp for schedule(static)
    for (int64_t c = 0; c < g->ci; c++) {
        for (int64_t t = t0; t < t0 + nt;) {
            int64_t img = t / (g->th * g->tw), ty = t / g->tw % g->th, tx0 = t % g->tw;
            int64_t run = g->tw - tx0; /* tiles left in this tile row */
            if (run > t0 + nt - t) run = t0 + nt - t;
            const float *xc = x + (img * g->ci + c) * g->h * g->w;
            for (int r = 0; r < 4; r++) {
                int64_t iy = 2 * ty - 1 + r;
                memset(band[r], 0, sizeof band[r]);
                if (iy >= 0 && iy < g->h) memcpy(band[r] + 1, xc + iy * g->w, sizeof(float) * g->w);
            }
            float *vc = v + c * nt + (t - t0);
            for (int64_t k = 0; k < run; k++) {
                const int64_t x0 = 2 * (tx0 + k);
                float d[4][4], s[4][4];
                for (int r = 0; r < 4; r++)
                    for (int j = 0; j < 4; j++) d[r][j] = band[r][x0 + j];
                for (int j = 0; j < 4; j++) {
                    s[0][j] = d[0][j] - d[2][j];
                    s[1][j] = d[1][j] + d[2][j];
                    s[2][j] = d[2][j] - d[1][j];
                    s[3][j] = d[1][j] - d[3][j];
                }
                for (int r = 0; r < 4; r++) {
                    vc[(r * 4 + 0) * plane + k] = s[r][0] - s[r][2];
                    vc[(r * 4 + 1) * plane + k] = s[r][1] + s[r][2];
                    vc[(r * 4 + 2) * plane + k] = s[r][2] - s[r][1];
                    vc[(r * 4 + 3) * plane + k] = s[r][1] - s[r][3];
                }
            }
            t += run;
        }
    }
}

/* y (+ bias, + residual: both may be NULL, residual may be y, or with res_planes one value a
 * plane) for output channels [co0, co0+cb) and tiles [t0, t0+nt) from M[16][cb][nt]. */
static void s_outputs(const s_geom_t *g, const float *m, const float *bias, const float *res,
                      bool res_planes, int64_t co0, int64_t cb, int64_t t0, int64_t nt,
                      float *y) {
    int64_t plane = cb * nt;
#pragma omp for schedule(static)
    for (int64_t o = 0; o < cb; o++) {
        float bv = bias ? bias[co0 + o] : 0.0f;
        const float *mo = m + o * nt;
        for (int64_t k = 0; k < nt; k++) {
            int64_t t = t0 + k;
            int64_t img = t / (g->th * g->tw), ty = t / g->tw % g->th, tx = t % g->tw;
            float a[4][4], s[2][4];
            for (int e = 0; e < 16; e++) a[e / 4][e % 4] = mo[e * plane + k];
            for (int j = 0; j < 4; j++) {
                s[0][j] = a[0][j] + a[1][j] + a[2][j];
                s[1][j] = a[1][j] - a[2][j] - a[3][j];
            }
            int64_t yplane = img * g->co + co0 + o;
            int64_t at = (yplane * g->h + 2 * ty) * g->w + 2 * tx;
            float *yo = y + at;
            const float *ro = res && !res_planes ? res + at : NULL;
            float pv = res && res_planes ? res[yplane] : 0.0f;
            for (int r = 0; r < 2 && 2 * ty + r < g->h; r++) {
                for (int c = 0; c < 2 && 2 * tx + c < g->w; c++) {
                    float v = c == 0 ? s[r][0] + s[r][1] + s[r][2] + bv
                                     : s[r][1] - s[r][2] - s[r][3] + bv;
                    if (ro) v += ro[r * g->w + c];
                    else if (res) v += pv;
                    yo[r * g->w + c] = v;
                }
            }
        }
    }
}

/* M[e] = U[e] V[e]: [cn, ci] x [ci, tn]. */
static void s_gemm(const s_geom_t *g, int e, int64_t cn, int64_t tn, const float *u,
                   const float *v, float *m) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint) cn, (blasint) tn,
                (blasint) g->ci, 1.0f, u + e * cn * g->ci, (blasint) g->ci, v + e * g->ci * tn,
                (blasint) tn, 0.0f, m + e * cn * tn, (blasint) tn);
}

int dq_cpu_conv2d_winograd(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                           const dq_tensor_t *bias, int stride, int padding,
                           const dq_tensor_t *residual, dq_tensor_t *y) {
    dq_cpu_ctx_t *ctx = dq_cpu_ctx(be);
    // x: [N, Ci, H, W], w: [Co, Ci, 3, 3], y: [N, Co, H, W]
    /* The 16 sgemms of a chunk run on one thread each: the OpenMP (or serial) build of
     * OpenBLAS runs sgemm single-threaded inside a parallel region, where a product's bits
     * cannot depend on its width (the number of tiles, so the batch). The pthread build would
     * thread each call by its size: then this path is not taken. */
    if (w->dtype != DQ_DTYPE_F32 || w->shape[2] != 3 || w->shape[3] != 3 || stride != 1 ||
        padding != 1 || openblas_get_parallel() == 1)
        return 1;
    s_geom_t g = {.n = x->shape[0], .ci = x->shape[1], .h = x->shape[2], .w = x->shape[3],
                  .co = w->shape[0]};
    if (g.w > S_MAX_WIDTH) return 1;
    g.th = (g.h + 1) / 2;
    g.tw = (g.w + 1) / 2;
    g.tiles = g.n * g.th * g.tw;
    if (g.th * g.tw < S_MIN_TILES) return 1;
    /* Workspace: U for a block of cb output channels, V for a chunk of nt tiles, M for both.
     * Prefer all channels at once (U made once) and then as many tiles as fit. */
    int64_t avail = (int64_t) ctx->work_floats, cb = g.co, nt = 0;
    for (;;) {
        int64_t left = avail - 16 * cb * g.ci;
        nt = left > 0 ? left / (16 * (g.ci + cb)) : 0;
        if (nt >= 64 || cb == 1) break;
        cb = (cb + 1) / 2;
    }
    if (nt < 16) return 1;
    if (nt > g.tiles) nt = g.tiles;
    float *u = ctx->work, *v = u + 16 * cb * g.ci, *m = v + 16 * g.ci * nt;
    const float *xd = x->data, *wd = w->data, *bd = bias ? bias->data : NULL;
    const float *rd = residual ? residual->data : NULL;
    bool res_planes = residual && dq_tensor_nelements(residual) != dq_tensor_nelements(y);
    float *yd = y->data;
#pragma omp parallel
    for (int64_t t0 = 0; t0 < g.tiles; t0 += nt) {
        int64_t tn = g.tiles - t0 < nt ? g.tiles - t0 : nt;
        s_inputs(&g, xd, t0, tn, v);
        for (int64_t co0 = 0; co0 < g.co; co0 += cb) {
            int64_t cn = g.co - co0 < cb ? g.co - co0 : cb;
            /* U of all channels is made once; U of a block again for each chunk of tiles. */
            if (cb < g.co || t0 == 0) s_weights(&g, wd, co0, cn, u);
#pragma omp for schedule(dynamic)
            for (int e = 0; e < 16; e++) s_gemm(&g, e, cn, tn, u, v, m);
            s_outputs(&g, m, bd, rd, res_planes, co0, cn, t0, tn, yd);
        }
    }
    return 0;
}
