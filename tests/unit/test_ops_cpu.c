/* tests/unit/test_ops_cpu.c: every CPU op against a naive double-precision reference.
 *
 * Each case runs twice: with a tiny backend workspace (2 KiB, so conv2d, attention and F16/BF16
 * linear must tile) and a roomy one (4 MiB). Inputs are random, shapes odd, batches > 1.
 * Pass criteria: every output element finite, relative L2 error ||y - ref|| / ||ref|| at most
 * TOL_GEMM = 1e-5 for sgemm-based ops (f32 accumulation over K) and TOL_ELEM = 1e-6 for the
 * rest, and the 16 sentinel floats on each side of every output untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/ops.h"
#include "tests/unit/ops_harness.h"

#define TOL_GEMM 1e-5
#define TOL_ELEM 1e-6
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static double *s_ref(int64_t n) {
    double *r = calloc((size_t) n, sizeof *r);
    assert_non_null(r);
    return r;
}

/* Runs a case with a workspace that forces tiling and with a roomy one. */
static void s_both(void (*fn)(dqt_env_t *)) {
    const size_t sizes[2] = {2u << 10, 4u << 20};
    for (int i = 0; i < 2; i++) {
        dqt_env_t *env = dqt_env_new(sizes[i]);
        fn(env);
        dqt_env_free(&env);
    }
}
#define CASE(name)                                                                                 \
    static void test_##name(void **state) {                                                        \
        (void) state;                                                                              \
        s_both(s_##name);                                                                          \
    }

/* The residual of a linear or conv2d case: none, a tensor of its own, y itself (y += op), x
 * (the input, when it has y's shape), or (conv2d) one value per image and channel. */
typedef enum { RES_NONE, RES_OWN, RES_Y, RES_X, RES_PLANES } s_res_t;

/* The residual tensor for mode res (NULL for RES_NONE) and its values on the host in *rh; for
 * RES_Y the values are first written into y. */
static const dq_tensor_t *s_residual(dqt_env_t *env, s_res_t res, const dq_tensor_t *x,
                                     dq_tensor_t *y, const float **rh) {
    *rh = NULL;
    if (res == RES_NONE) return NULL;
    if (res == RES_X) {
        *rh = dqt_host(env, x);
        return x;
    }
    int64_t planes[4] = {y->shape[0], y->shape[1], 1, 1};
    dq_tensor_t *r = dqt_input(env, y->ndim, res == RES_PLANES ? planes : y->shape, -1, 1);
    *rh = dqt_host(env, r);
    if (res == RES_OWN || res == RES_PLANES) return r;
    assert_int_equal(dq_tensor_upload(dqt_backend(env), y, 0, *rh, dq_tensor_nbytes(y)), 0);
    return y;
}

/* ---- linear and matmul ---- */

static void s_linear_case(dqt_env_t *env, int64_t b, int64_t m, int64_t k, int64_t n,
                          dq_dtype_t wt, int with_bias, s_res_t res) {
    dq_tensor_t *x = dqt_input(env, 3, SHAPE(b, m, k), -1, 1);
    dq_tensor_t *w = dqt_weight(env, wt, 2, SHAPE(n, k), 0.5f);
    dq_tensor_t *bias = with_bias ? dqt_input(env, 1, SHAPE(n), -1, 1) : NULL;
    dq_tensor_t *y = dqt_output(env, 3, SHAPE(b, m, n));
    const float *rh;
    const dq_tensor_t *r = s_residual(env, res, x, y, &rh);
    assert_int_equal(dq_op_linear_residual(dqt_backend(env), x, w, bias, r, y), 0);
    const float *xh = dqt_host(env, x), *wh = dqt_host(env, w);
    const float *bh = bias ? dqt_host(env, bias) : NULL;
    double *ref = s_ref(b * m * n);
    for (int64_t row = 0; row < b * m; row++)
        for (int64_t j = 0; j < n; j++) {
            double s = (bh ? bh[j] : 0.0) + (rh ? rh[row * n + j] : 0.0);
            for (int64_t i = 0; i < k; i++) s += (double) xh[row * k + i] * wh[j * k + i];
            ref[row * n + j] = s;
        }
    dqt_expect_close(env, y, ref, TOL_GEMM, "linear");
    free(ref);
}

static void s_linear(dqt_env_t *env) {
    s_linear_case(env, 2, 7, 33, 19, DQ_DTYPE_F32, 1, RES_NONE);
    s_linear_case(env, 1, 1, 5, 3, DQ_DTYPE_F32, 0, RES_NONE);
    s_linear_case(env, 3, 5, 77, 130, DQ_DTYPE_F16, 1, RES_NONE);
    s_linear_case(env, 2, 4, 64, 41, DQ_DTYPE_BF16, 1, RES_NONE);
}
CASE(linear)

/* y = linear(x) + residual: a residual of its own, y itself, x itself; with and without a bias,
 * through the one-sgemm path and the F16 weight blocks. */
static void s_linear_residual(dqt_env_t *env) {
    s_linear_case(env, 2, 7, 33, 19, DQ_DTYPE_F32, 1, RES_OWN);
    s_linear_case(env, 2, 7, 33, 19, DQ_DTYPE_F32, 1, RES_Y);
    s_linear_case(env, 2, 7, 33, 19, DQ_DTYPE_F32, 0, RES_Y);
    s_linear_case(env, 1, 6, 21, 21, DQ_DTYPE_F32, 1, RES_X);
    s_linear_case(env, 3, 5, 77, 130, DQ_DTYPE_F16, 0, RES_OWN);
    s_linear_case(env, 3, 5, 77, 130, DQ_DTYPE_F16, 1, RES_Y);
}
CASE(linear_residual)

static void s_matmul_case(dqt_env_t *env, int trans_b, int shared_b, float alpha) {
    int64_t bat = 6, m = 5, k = 7, n = 4;
    dq_tensor_t *a = dqt_input(env, 4, SHAPE(2, 3, m, k), -1, 1);
    int64_t bb = shared_b ? 1 : bat;
    dq_tensor_t *b = trans_b ? dqt_input(env, 3, SHAPE(bb, n, k), -1, 1)
                             : dqt_input(env, 3, SHAPE(bb, k, n), -1, 1);
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(2, 3, m, n));
    assert_int_equal(dq_op_matmul(dqt_backend(env), a, b, trans_b, alpha, y), 0);
    const float *ah = dqt_host(env, a), *bh = dqt_host(env, b);
    double *ref = s_ref(bat * m * n);
    for (int64_t p = 0; p < bat; p++) {
        const float *bp = bh + (shared_b ? 0 : p * k * n);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0.0;
                for (int64_t l = 0; l < k; l++)
                    s += (double) ah[(p * m + i) * k + l] *
                         (trans_b ? bp[j * k + l] : bp[l * n + j]);
                ref[(p * m + i) * n + j] = alpha * s;
            }
    }
    dqt_expect_close(env, y, ref, TOL_GEMM, "matmul");
    free(ref);
}

static void s_matmul(dqt_env_t *env) {
    s_matmul_case(env, 0, 0, 1.0f);
    s_matmul_case(env, 1, 0, 0.5f);
    s_matmul_case(env, 0, 1, 1.0f);
    s_matmul_case(env, 1, 1, -2.0f);
}
CASE(matmul)

/* ---- conv2d ---- */

static void s_conv_case_res(dqt_env_t *env, int64_t n, int64_t ci, int64_t h, int64_t w,
                            int64_t co, int64_t kk, int stride, int pad, dq_dtype_t wt,
                            int with_bias, s_res_t res) {
    int64_t ho = (h + 2 * pad - kk) / stride + 1, wo = (w + 2 * pad - kk) / stride + 1;
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(n, ci, h, w), -1, 1);
    dq_tensor_t *wgt = dqt_weight(env, wt, 4, SHAPE(co, ci, kk, kk), 0.3f);
    dq_tensor_t *bias = with_bias ? dqt_input(env, 1, SHAPE(co), -1, 1) : NULL;
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(n, co, ho, wo));
    const float *rh;
    const dq_tensor_t *r = s_residual(env, res, x, y, &rh);
    assert_int_equal(dq_op_conv2d_residual(dqt_backend(env), x, wgt, bias, stride, pad, r, y), 0);
    const float *xh = dqt_host(env, x), *wh = dqt_host(env, wgt);
    const float *bh = bias ? dqt_host(env, bias) : NULL;
    double *ref = s_ref(n * co * ho * wo);
    for (int64_t b = 0; b < n; b++)
        for (int64_t o = 0; o < co; o++)
            for (int64_t oy = 0; oy < ho; oy++)
                for (int64_t ox = 0; ox < wo; ox++) {
                    int64_t at = ((b * co + o) * ho + oy) * wo + ox;
                    double rv = !rh ? 0.0 : res == RES_PLANES ? rh[b * co + o] : rh[at];
                    double s = (bh ? bh[o] : 0.0) + rv;
                    for (int64_t c = 0; c < ci; c++)
                        for (int64_t i = 0; i < kk; i++)
                            for (int64_t j = 0; j < kk; j++) {
                                int64_t iy = oy * stride - pad + i, ix = ox * stride - pad + j;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                s += (double) xh[((b * ci + c) * h + iy) * w + ix] *
                                     wh[((o * ci + c) * kk + i) * kk + j];
                            }
                    ref[at] = s;
                }
    dqt_expect_close(env, y, ref, TOL_GEMM, "conv2d");
    free(ref);
}

static void s_conv_case(dqt_env_t *env, int64_t n, int64_t ci, int64_t h, int64_t w, int64_t co,
                        int64_t kk, int stride, int pad, dq_dtype_t wt, int with_bias) {
    s_conv_case_res(env, n, ci, h, w, co, kk, stride, pad, wt, with_bias, RES_NONE);
}

static void s_conv2d(dqt_env_t *env) {
    s_conv_case(env, 2, 3, 9, 11, 5, 3, 1, 1, DQ_DTYPE_F32, 1);  /* resnet 3x3 */
    s_conv_case(env, 1, 4, 10, 7, 6, 3, 2, 1, DQ_DTYPE_F32, 1);  /* downsample, stride 2 */
    s_conv_case(env, 2, 6, 5, 3, 4, 1, 1, 0, DQ_DTYPE_F32, 1);   /* 1x1 shortcut */
    s_conv_case(env, 1, 2, 6, 6, 3, 3, 1, 0, DQ_DTYPE_F32, 0);   /* no padding, no bias */
    s_conv_case(env, 2, 5, 7, 5, 7, 3, 1, 1, DQ_DTYPE_F16, 1);   /* f16 weights */
    s_conv_case(env, 1, 3, 4, 5, 9, 1, 1, 0, DQ_DTYPE_BF16, 1);  /* bf16 1x1 */
}
CASE(conv2d)

/* y = conv2d(x) + residual through im2col, the 1x1 sgemm and F16 weight blocks (Winograd's
 * cases are in test_conv2d_winograd). */
static void s_conv2d_residual(dqt_env_t *env) {
    s_conv_case_res(env, 2, 3, 9, 11, 5, 3, 1, 1, DQ_DTYPE_F32, 1, RES_OWN);
    s_conv_case_res(env, 2, 3, 9, 11, 5, 3, 1, 1, DQ_DTYPE_F32, 1, RES_Y);
    s_conv_case_res(env, 2, 6, 5, 3, 6, 1, 1, 0, DQ_DTYPE_F32, 0, RES_X);
    s_conv_case_res(env, 2, 5, 7, 5, 7, 3, 1, 1, DQ_DTYPE_F16, 1, RES_Y);
    s_conv_case_res(env, 2, 3, 9, 11, 5, 3, 1, 1, DQ_DTYPE_F32, 1, RES_PLANES);
    s_conv_case_res(env, 3, 6, 5, 3, 4, 1, 1, 0, DQ_DTYPE_F32, 0, RES_PLANES);
}
CASE(conv2d_residual)

/* A residual must have y's shape and dtype and either be y or stay clear of it. */
static void test_residual_checked(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    dq_backend_t *be = dqt_backend(env);
    dq_tensor_t *x = dqt_input(env, 2, SHAPE(4, 8), -1, 1);
    dq_tensor_t *w = dqt_weight(env, DQ_DTYPE_F32, 2, SHAPE(6, 8), 0.5f);
    dq_tensor_t *y = dqt_output(env, 2, SHAPE(4, 6));
    dq_tensor_t *wrong = dqt_input(env, 2, SHAPE(6, 4), -1, 1);
    dq_tensor_t *big = dqt_input(env, 2, SHAPE(5, 6), -1, 1);
    dq_tensor_t shifted; /* y's shape, starting one row into big: overlaps y when y is big */
    assert_int_equal(dq_op_linear_residual(be, x, w, NULL, wrong, y), -1);
    /* per-plane residuals are conv2d's only */
    dq_tensor_t *y4 = dqt_output(env, 4, SHAPE(1, 4, 1, 6));
    dq_tensor_t *x4 = dqt_input(env, 4, SHAPE(1, 4, 1, 8), -1, 1);
    dq_tensor_t *p4 = dqt_input(env, 4, SHAPE(1, 4, 1, 1), -1, 1);
    assert_int_equal(dq_op_linear_residual(be, x4, w, NULL, p4, y4), -1);
    dq_tensor_t ybig;
    assert_int_equal(dq_tensor_init(&ybig, DQ_DTYPE_F32, 2, SHAPE(4, 6), big->data, big->buffer,
                                    "y in big"),
                     0);
    assert_int_equal(dq_tensor_init(&shifted, DQ_DTYPE_F32, 2, SHAPE(4, 6),
                                    (float *) big->data + 6, big->buffer, "shifted"),
                     0);
    assert_int_equal(dq_op_linear_residual(be, x, w, NULL, &shifted, &ybig), -1);
    /* the same memory as y through another struct is y itself */
    dq_tensor_t yview;
    assert_int_equal(dq_tensor_init(&yview, DQ_DTYPE_F32, 2, SHAPE(4, 6), big->data, big->buffer,
                                    "y again"),
                     0);
    assert_int_equal(dq_op_linear_residual(be, x, w, NULL, &yview, &ybig), 0);
    dqt_env_free(&env);
}

/* 3x3 stride-1 convolutions with enough 2x2 output tiles (128 an image) for Winograd F(2x2, 3x3)
 * (kernels/cpu/conv2d_winograd.c), also with odd sizes (a last tile row and column half
 * outside), and with each kind of residual. */
static void test_conv2d_winograd(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    s_conv_case(env, 2, 8, 24, 24, 6, 3, 1, 1, DQ_DTYPE_F32, 1);
    s_conv_case(env, 1, 5, 33, 35, 7, 3, 1, 1, DQ_DTYPE_F32, 0);
    s_conv_case_res(env, 2, 8, 24, 24, 6, 3, 1, 1, DQ_DTYPE_F32, 1, RES_OWN);
    s_conv_case_res(env, 1, 5, 33, 35, 7, 3, 1, 1, DQ_DTYPE_F32, 0, RES_Y);
    s_conv_case_res(env, 1, 6, 24, 24, 6, 3, 1, 1, DQ_DTYPE_F32, 1, RES_X);
    s_conv_case_res(env, 2, 4, 23, 25, 5, 3, 1, 1, DQ_DTYPE_F32, 1, RES_PLANES);
    dqt_env_free(&env);
}

/* Winograd takes 3x3 stride 1 padding 1 F32 convolutions with 128 tiles an image or more when
 * the workspace holds 16 tiles, whatever the batch; anything else is left to im2col (1). */
static void test_conv2d_winograd_applies(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    dq_backend_t *be = dqt_backend(env);
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(2, 4, 24, 22), -1, 1);
    dq_tensor_t *w = dqt_weight(env, DQ_DTYPE_F32, 4, SHAPE(4, 4, 3, 3), 0.3f);
    dq_tensor_t *w16 = dqt_weight(env, DQ_DTYPE_F16, 4, SHAPE(4, 4, 3, 3), 0.3f);
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(2, 4, 24, 22));
    dq_tensor_t *ys = dqt_output(env, 4, SHAPE(2, 4, 12, 11));
    dq_tensor_t *xs = dqt_input(env, 4, SHAPE(3, 4, 24, 20), -1, 1); /* 3 x 120 tiles */
    dq_tensor_t *yss = dqt_output(env, 4, SHAPE(3, 4, 24, 20));
    /* (Not with the pthread build of OpenBLAS: see kernels/cpu/conv2d_winograd.c.) */
    int want = openblas_get_parallel() == 1 ? 1 : 0;
    assert_int_equal(dq_cpu_conv2d_winograd(be, x, w, NULL, 1, 1, NULL, y), want);
    assert_int_equal(dq_cpu_conv2d_winograd(be, x, w16, NULL, 1, 1, NULL, y), 1);
    assert_int_equal(dq_cpu_conv2d_winograd(be, x, w, NULL, 2, 1, NULL, ys), 1);
    assert_int_equal(dq_cpu_conv2d_winograd(be, xs, w, NULL, 1, 1, NULL, yss), 1);
    dqt_env_free(&env);
    env = dqt_env_new(2u << 10);
    be = dqt_backend(env);
    x = dqt_input(env, 4, SHAPE(2, 4, 24, 22), -1, 1);
    w = dqt_weight(env, DQ_DTYPE_F32, 4, SHAPE(4, 4, 3, 3), 0.3f);
    y = dqt_output(env, 4, SHAPE(2, 4, 24, 22));
    assert_int_equal(dq_cpu_conv2d_winograd(be, x, w, NULL, 1, 1, NULL, y), 1);
    dqt_env_free(&env);
}

static void test_conv2d_winograd_blocks(void **state) {
    (void) state;
    /* 256 KiB: U of all 48x48 channel pairs does not fit next to 64 tiles, so blocks of 6
     * output channels and chunks of 70 tiles; 1 MiB: all channels, chunks of 146 tiles. */
    const size_t sizes[2] = {256u << 10, 1u << 20};
    for (int i = 0; i < 2; i++) {
        dqt_env_t *env = dqt_env_new(sizes[i]);
        s_conv_case(env, 1, 48, 32, 31, 48, 3, 1, 1, DQ_DTYPE_F32, 1);
        dqt_env_free(&env);
    }
}

/* ---- norms and softmax ---- */

/* group_norm (silu 0) or group_norm_silu (silu 1) against the double reference. */
static void s_group_norm_case(dqt_env_t *env, int ndim, const int64_t *shape, int groups,
                              int affine, int silu) {
    float eps = 1e-5f;
    dq_tensor_t *x = dqt_input(env, ndim, shape, 2.0f, 4.0f); /* offset mean: tests stability */
    int64_t n = shape[0], c = shape[1], total = dq_tensor_nelements(x), s = total / (n * c);
    dq_tensor_t *g = affine ? dqt_input(env, 1, SHAPE(c), 0.5f, 1.5f) : NULL;
    dq_tensor_t *b = affine ? dqt_input(env, 1, SHAPE(c), -1, 1) : NULL;
    dq_tensor_t *y = dqt_output(env, ndim, shape);
    dq_backend_t *be = dqt_backend(env);
    assert_int_equal(silu ? dq_op_group_norm_silu(be, x, g, b, groups, eps, y)
                          : dq_op_group_norm(be, x, g, b, groups, eps, y),
                     0);
    const float *xh = dqt_host(env, x), *gh = g ? dqt_host(env, g) : NULL;
    const float *bh = b ? dqt_host(env, b) : NULL;
    double *ref = s_ref(total);
    int64_t cpg = c / groups, len = cpg * s;
    for (int64_t q = 0; q < n * groups; q++) {
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < len; i++) mean += xh[q * len + i];
        mean /= (double) len;
        for (int64_t i = 0; i < len; i++) var += pow(xh[q * len + i] - mean, 2);
        var /= (double) len; /* biased, as torch */
        for (int64_t i = 0; i < len; i++) {
            int64_t ch = (q % groups) * cpg + i / s;
            double v = (xh[q * len + i] - mean) / sqrt(var + eps);
            if (gh) v = v * gh[ch] + bh[ch];
            ref[q * len + i] = silu ? v / (1.0 + exp(-v)) : v;
        }
    }
    dqt_expect_close(env, y, ref, TOL_ELEM, silu ? "group_norm_silu" : "group_norm");
    free(ref);
}

static void s_group_norm(dqt_env_t *env) {
    for (int silu = 0; silu < 2; silu++) {
        s_group_norm_case(env, 4, SHAPE(2, 12, 5, 7), 4, 1, silu);
        s_group_norm_case(env, 3, SHAPE(3, 6, 10), 3, 0, silu);
        s_group_norm_case(env, 4, SHAPE(1, 32, 3, 3), 32, 1, silu);
    }
}
CASE(group_norm)

/* group_norm_silu gives the bits of group_norm followed by silu in place (the sequence the
 * UNet and VAE ran before the fused op), so the model fixtures cannot move. Shapes: one thread
 * and several, channels shorter and longer than the fused op's SiLU span (2048 floats) with
 * remainders, with and without affine. */
static void s_group_norm_silu_bits_case(dqt_env_t *env, int ndim, const int64_t *shape, int groups,
                                        int affine) {
    dq_backend_t *be = dqt_backend(env);
    int64_t c = shape[1];
    dq_tensor_t *x = dqt_input(env, ndim, shape, -3.0f, 5.0f);
    dq_tensor_t *g = affine ? dqt_input(env, 1, SHAPE(c), 0.5f, 1.5f) : NULL;
    dq_tensor_t *b = affine ? dqt_input(env, 1, SHAPE(c), -1, 1) : NULL;
    dq_tensor_t *fused = dqt_output(env, ndim, shape), *two = dqt_output(env, ndim, shape);
    assert_int_equal(dq_op_group_norm_silu(be, x, g, b, groups, 1e-6f, fused), 0);
    assert_int_equal(dq_op_group_norm(be, x, g, b, groups, 1e-6f, two), 0);
    assert_int_equal(dq_op_silu(be, two, two), 0);
    assert_memory_equal(dqt_host(env, fused), dqt_host(env, two),
                        (size_t) dq_tensor_nelements(x) * sizeof(float));
}

static void test_group_norm_silu_bits(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    s_group_norm_silu_bits_case(env, 4, SHAPE(2, 12, 5, 7), 4, 1);
    s_group_norm_silu_bits_case(env, 3, SHAPE(3, 6, 10), 3, 0);
    s_group_norm_silu_bits_case(env, 4, SHAPE(2, 64, 48, 50), 32, 1); /* 2400: span + 352 */
    s_group_norm_silu_bits_case(env, 4, SHAPE(1, 32, 64, 65), 32, 1); /* 4160: 2 spans + 64 */
    s_group_norm_silu_bits_case(env, 4, SHAPE(1, 64, 32, 32), 32, 0); /* 1024: half a span */
    s_group_norm_silu_bits_case(env, 2, SHAPE(5, 96), 8, 1);          /* [N, C]: s = 1 */
    dqt_env_free(&env);
}

static void s_layer_norm_case(dqt_env_t *env, int ndim, const int64_t *shape, int affine) {
    float eps = 1e-5f;
    dq_tensor_t *x = dqt_input(env, ndim, shape, -3.0f, 5.0f);
    int64_t d = shape[ndim - 1], rows = dq_tensor_nrows(x);
    dq_tensor_t *g = affine ? dqt_input(env, 1, SHAPE(d), 0.5f, 1.5f) : NULL;
    dq_tensor_t *b = affine ? dqt_input(env, 1, SHAPE(d), -1, 1) : NULL;
    dq_tensor_t *y = dqt_output(env, ndim, shape);
    assert_int_equal(dq_op_layer_norm(dqt_backend(env), x, g, b, eps, y), 0);
    const float *xh = dqt_host(env, x), *gh = g ? dqt_host(env, g) : NULL;
    const float *bh = b ? dqt_host(env, b) : NULL;
    double *ref = s_ref(rows * d);
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < d; i++) mean += xh[r * d + i];
        mean /= (double) d;
        for (int64_t i = 0; i < d; i++) var += pow(xh[r * d + i] - mean, 2);
        var /= (double) d;
        for (int64_t i = 0; i < d; i++) {
            double v = (xh[r * d + i] - mean) / sqrt(var + eps);
            ref[r * d + i] = gh ? v * gh[i] + bh[i] : v;
        }
    }
    dqt_expect_close(env, y, ref, TOL_ELEM, "layer_norm");
    free(ref);
}

static void s_layer_norm(dqt_env_t *env) {
    s_layer_norm_case(env, 3, SHAPE(2, 7, 33), 1);
    s_layer_norm_case(env, 2, SHAPE(3, 64), 0);
}
CASE(layer_norm)

static void s_softmax_case(dqt_env_t *env, int64_t rows, int64_t d) {
    dq_tensor_t *x = dqt_input(env, 2, SHAPE(rows, d), -20, 20);
    dq_tensor_t *y = dqt_output(env, 2, SHAPE(rows, d));
    assert_int_equal(dq_op_softmax(dqt_backend(env), x, y), 0);
    const float *xh = dqt_host(env, x);
    double *ref = s_ref(rows * d);
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY, sum = 0.0;
        for (int64_t i = 0; i < d; i++) mx = fmax(mx, xh[r * d + i]);
        for (int64_t i = 0; i < d; i++) sum += exp(xh[r * d + i] - mx);
        for (int64_t i = 0; i < d; i++) ref[r * d + i] = exp(xh[r * d + i] - mx) / sum;
    }
    dqt_expect_close(env, y, ref, TOL_ELEM, "softmax");
    free(ref);
}

static void s_softmax(dqt_env_t *env) { s_softmax_case(env, 6, 17); }
CASE(softmax)

/* ---- attention ---- */

static void s_attention_case(dqt_env_t *env, int64_t b, int64_t lq, int64_t lk, int heads,
                             int64_t d, bool causal) {
    int64_t hd = heads * d;
    dq_tensor_t *q = dqt_input(env, 3, SHAPE(b, lq, hd), -2, 2);
    dq_tensor_t *k = dqt_input(env, 3, SHAPE(b, lk, hd), -2, 2);
    dq_tensor_t *v = dqt_input(env, 3, SHAPE(b, lk, hd), -1, 1);
    dq_tensor_t *y = dqt_output(env, 3, SHAPE(b, lq, hd));
    assert_int_equal(dq_op_attention(dqt_backend(env), q, k, v, heads, causal, y), 0);
    const float *qh = dqt_host(env, q), *kh = dqt_host(env, k), *vh = dqt_host(env, v);
    double *ref = s_ref(b * lq * hd), *p = s_ref(lk);
    for (int64_t n = 0; n < b; n++)
        for (int h = 0; h < heads; h++)
            for (int64_t i = 0; i < lq; i++) {
                double mx = -INFINITY, sum = 0.0;
                int64_t nk = causal ? i + 1 : lk;
                for (int64_t j = 0; j < nk; j++) {
                    double s = 0.0;
                    for (int64_t e = 0; e < d; e++)
                        s += (double) qh[(n * lq + i) * hd + h * d + e] *
                             kh[(n * lk + j) * hd + h * d + e];
                    p[j] = s / sqrt((double) d);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j < nk; j++) sum += (p[j] = exp(p[j] - mx));
                for (int64_t e = 0; e < d; e++) {
                    double o = 0.0;
                    for (int64_t j = 0; j < nk; j++)
                        o += p[j] / sum * vh[(n * lk + j) * hd + h * d + e];
                    ref[(n * lq + i) * hd + h * d + e] = o;
                }
            }
    dqt_expect_close(env, y, ref, TOL_GEMM, causal ? "attention causal" : "attention");
    free(ref);
    free(p);
}

static void s_attention(dqt_env_t *env) {
    s_attention_case(env, 2, 70, 37, 3, 8, false); /* cross-attention shape: Lk != Lq */
    s_attention_case(env, 1, 77, 77, 2, 16, true); /* CLIP: causal self-attention */
    s_attention_case(env, 3, 5, 5, 1, 7, false);   /* single head, odd D */
}
CASE(attention)

/* Shapes that take every branch of the AVX-512 tiles (kernels/cpu/attention_tiled.c): D = 40,
 * 80 and 100 (output column chunks of 3+pad, 3+2, 3+3+1 vectors), Lk whose last K^T panel is
 * 1, 2 or 3 vectors wide, several 64-query tasks with a partial last 8-row group, causal rows
 * across tasks. On a machine without AVX-512 these run the sgemm path again. */
static void s_attention_tiles(dqt_env_t *env) {
    s_attention_case(env, 2, 150, 97, 2, 40, false);
    s_attention_case(env, 1, 70, 77, 3, 80, false);
    s_attention_case(env, 1, 37, 130, 1, 100, false);
    s_attention_case(env, 1, 150, 150, 2, 24, true);
}
CASE(attention_tiles)

/* The tiles run wherever AVX-512 is and the workspace holds the packed K and V, else they
 * decline (1) and leave the op to the sgemm path. */
static void test_attention_tiled_applies(void **state) {
    (void) state;
    const size_t sizes[2] = {2u << 10, 4u << 20};
    for (int i = 0; i < 2; i++) {
        dqt_env_t *env = dqt_env_new(sizes[i]);
        dq_tensor_t *x = dqt_input(env, 3, SHAPE(1, 150, 160), -1, 1);
        dq_tensor_t *y = dqt_output(env, 3, SHAPE(1, 150, 160));
        int want = i == 1 && __builtin_cpu_supports("avx512f") ? 0 : 1;
        assert_int_equal(dq_cpu_attention_tiled(dqt_backend(env), x, x, x, 2, false, y), want);
        dqt_env_free(&env);
    }
}

/* ---- an item gives the same bits alone and in a batch (the pipeline batches requests) ---- */

/* Convolves a batch of 3 and its middle image alone; the two results must be equal bits. */
static void s_conv_alone_case(dqt_env_t *env, int64_t ci, int64_t h, int64_t w, int64_t co,
                              int64_t kk, int pad) {
    dq_backend_t *be = dqt_backend(env);
    int64_t plane = ci * h * w, out = co * h * w;
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(3, ci, h, w), -1, 1);
    dq_tensor_t *x1 = dqt_input_from(env, 4, SHAPE(1, ci, h, w), dqt_host(env, x) + plane);
    dq_tensor_t *wgt = dqt_weight(env, DQ_DTYPE_F32, 4, SHAPE(co, ci, kk, kk), 0.3f);
    dq_tensor_t *bias = dqt_input(env, 1, SHAPE(co), -1, 1);
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(3, co, h, w));
    dq_tensor_t *y1 = dqt_output(env, 4, SHAPE(1, co, h, w));
    assert_int_equal(dq_op_conv2d(be, x, wgt, bias, 1, pad, y), 0);
    assert_int_equal(dq_op_conv2d(be, x1, wgt, bias, 1, pad, y1), 0);
    assert_memory_equal(dqt_host(env, y) + out, dqt_host(env, y1), (size_t) out * sizeof(float));
}

static void test_batch_invariance(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    s_conv_alone_case(env, 4, 24, 24, 5, 3, 1); /* Winograd: 144 tiles an image */
    s_conv_alone_case(env, 4, 20, 22, 5, 3, 1); /* im2col: 110 tiles an image */
    s_conv_alone_case(env, 40, 8, 8, 6, 3, 1);  /* K = 360: more than one sgemm K block */
    s_conv_alone_case(env, 40, 8, 8, 6, 1, 0);  /* 1x1 */
    dq_backend_t *be = dqt_backend(env);
    int64_t l = 70, hd = 64, n = l * hd;
    dq_tensor_t *q = dqt_input(env, 3, SHAPE(3, l, hd), -2, 2);
    dq_tensor_t *kv = dqt_input(env, 3, SHAPE(3, l, hd), -2, 2);
    dq_tensor_t *q1 = dqt_input_from(env, 3, SHAPE(1, l, hd), dqt_host(env, q) + n);
    dq_tensor_t *kv1 = dqt_input_from(env, 3, SHAPE(1, l, hd), dqt_host(env, kv) + n);
    dq_tensor_t *y = dqt_output(env, 3, SHAPE(3, l, hd));
    dq_tensor_t *y1 = dqt_output(env, 3, SHAPE(1, l, hd));
    assert_int_equal(dq_op_attention(be, q, kv, kv, 2, false, y), 0);
    assert_int_equal(dq_op_attention(be, q1, kv1, kv1, 2, false, y1), 0);
    assert_memory_equal(dqt_host(env, y) + n, dqt_host(env, y1), (size_t) n * sizeof(float));
    dqt_env_free(&env);
}

/* ---- activations ---- */

static double s_gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

static void s_activations_case(dqt_env_t *env, int64_t rows, int64_t cols) {
    const int64_t shape[2] = {rows, cols};
    int64_t n = rows * cols;
    dq_tensor_t *x = dqt_input(env, 2, shape, -6, 6);
    dq_tensor_t *yg = dqt_output(env, 2, shape), *yq = dqt_output(env, 2, shape);
    dq_tensor_t *ys = dqt_output(env, 2, shape);
    dq_backend_t *be = dqt_backend(env);
    assert_int_equal(dq_op_gelu(be, x, yg), 0);
    assert_int_equal(dq_op_gelu_quick(be, x, yq), 0);
    assert_int_equal(dq_op_silu(be, x, ys), 0);
    const float *xh = dqt_host(env, x);
    double *rg = s_ref(n), *rq = s_ref(n), *rs = s_ref(n);
    for (int64_t i = 0; i < n; i++) {
        rg[i] = s_gelu_ref(xh[i]);
        rq[i] = xh[i] / (1.0 + exp(-1.702 * xh[i]));
        rs[i] = xh[i] / (1.0 + exp(-(double) xh[i]));
    }
    dqt_expect_close(env, yg, rg, TOL_ELEM, "gelu");
    dqt_expect_close(env, yq, rq, TOL_ELEM, "gelu_quick");
    dqt_expect_close(env, ys, rs, TOL_ELEM, "silu");
    /* In place: y == x. */
    assert_int_equal(dq_op_silu(be, x, x), 0);
    dqt_expect_close(env, x, rs, TOL_ELEM, "silu in place");
    free(rg);
    free(rq);
    free(rs);
}
static void s_activations(dqt_env_t *env) { s_activations_case(env, 3, 1001); }
CASE(activations)

/* An element's bits do not depend on where it falls in a call's range: the same floats given
 * to silu, gelu, gelu_quick (and to geglu's halves) at another offset and length, so that an
 * element sits in a whole vector in one call and in the tail in the other, give the same bits.
 * (GCC once contracted multiply-adds differently in a clone's vector body and its scalar
 * remainder; group_norm_silu's channel spans rely on this too.) */
typedef int (*s_unary_fn)(dq_backend_t *, const dq_tensor_t *, dq_tensor_t *);

static void test_activation_offsets(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    dq_backend_t *be = dqt_backend(env);
    enum { N = 1001 };
    /* (offset, length) of the second call: past whole vectors, inside one, a tail alone. */
    static const int64_t cuts[][2] = {{3, N - 3}, {1, N - 6}, {17, 40}, {29, 5}, {0, 1}, {31, 33}};
    dq_tensor_t *x = dqt_input(env, 1, SHAPE(N), -8, 8);
    const float *xh = dqt_host(env, x);
    static const s_unary_fn ops[] = {dq_op_silu, dq_op_gelu, dq_op_gelu_quick};
    static const char *const names[] = {"silu", "gelu", "gelu_quick"};
    for (int o = 0; o < 3; o++) {
        dq_tensor_t *y = dqt_output(env, 1, SHAPE(N));
        assert_int_equal(ops[o](be, x, y), 0);
        const float *yh = dqt_host(env, y);
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            int64_t off = cuts[c][0], len = cuts[c][1];
            dq_tensor_t *xs = dqt_input_from(env, 1, SHAPE(len), xh + off);
            dq_tensor_t *ys = dqt_output(env, 1, SHAPE(len));
            assert_int_equal(ops[o](be, xs, ys), 0);
            if (memcmp(yh + off, dqt_host(env, ys), (size_t) len * sizeof(float)) != 0)
                fail_msg("%s: [%lld, +%lld) differs from the whole call", names[o],
                         (long long) off, (long long) len);
        }
    }
    /* The shared loop itself, on unaligned host pointers. */
    float *ya = calloc(N, sizeof *ya), *yb = calloc(N, sizeof *yb);
    assert_non_null(ya);
    assert_non_null(yb);
    dq_cpu_sigmoid_mul(xh, ya, N, 1.0f);
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int64_t off = cuts[c][0], len = cuts[c][1];
        dq_cpu_sigmoid_mul(xh + off, yb + off, len, 1.0f);
        assert_memory_equal(ya + off, yb + off, (size_t) len * sizeof(float));
    }
    free(ya);
    free(yb);
    /* geglu: rows of [hidden | gate]; the second call takes columns [off, off + len) of each. */
    enum { F = 301 };
    dq_tensor_t *g = dqt_input(env, 2, SHAPE(2, 2 * F), -6, 6);
    dq_tensor_t *gy = dqt_output(env, 2, SHAPE(2, F));
    assert_int_equal(dq_op_geglu(be, g, gy), 0);
    const float *gh = dqt_host(env, g), *gyh = dqt_host(env, gy);
    float *sub = calloc(2 * 2 * F, sizeof *sub);
    assert_non_null(sub);
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        int64_t off = cuts[c][0] % F, len = cuts[c][1] < F - off ? cuts[c][1] : F - off;
        for (int64_t r = 0; r < 2; r++)
            for (int64_t i = 0; i < len; i++) {
                sub[r * 2 * len + i] = gh[r * 2 * F + off + i];
                sub[r * 2 * len + len + i] = gh[r * 2 * F + F + off + i];
            }
        dq_tensor_t *gs = dqt_input_from(env, 2, SHAPE(2, 2 * len), sub);
        dq_tensor_t *gys = dqt_output(env, 2, SHAPE(2, len));
        assert_int_equal(dq_op_geglu(be, gs, gys), 0);
        const float *gysh = dqt_host(env, gys);
        for (int64_t r = 0; r < 2; r++)
            if (memcmp(gyh + r * F + off, gysh + r * len, (size_t) len * sizeof(float)) != 0)
                fail_msg("geglu: row %lld [%lld, +%lld) differs from the whole call",
                         (long long) r, (long long) off, (long long) len);
    }
    free(sub);
    dqt_env_free(&env);
}

static void s_geglu_case(dqt_env_t *env, int64_t rows, int64_t f) {
    dq_tensor_t *x = dqt_input(env, 3, SHAPE(2, rows / 2, 2 * f), -4, 4);
    dq_tensor_t *y = dqt_output(env, 3, SHAPE(2, rows / 2, f));
    assert_int_equal(dq_op_geglu(dqt_backend(env), x, y), 0);
    const float *xh = dqt_host(env, x);
    double *ref = s_ref(rows * f);
    /* diffusers GEGLU: hidden_states, gate = proj(x).chunk(2, dim=-1); hidden * gelu(gate) */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < f; i++)
            ref[r * f + i] = xh[r * 2 * f + i] * s_gelu_ref(xh[r * 2 * f + f + i]);
    dqt_expect_close(env, y, ref, TOL_ELEM, "geglu");
    free(ref);
}
static void s_geglu(dqt_env_t *env) { s_geglu_case(env, 10, 13); }
CASE(geglu)

/* ---- broadcasting binary ops and scale ---- */

static void s_binary_case(dqt_env_t *env, const int64_t *as, int is_mul, int bnd,
                          const int64_t *bshape) {
    dq_tensor_t *a = dqt_input(env, 4, as, -2, 2);
    dq_tensor_t *b = dqt_input(env, bnd, bshape, -2, 2);
    dq_tensor_t *y = dqt_output(env, 4, as);
    dq_backend_t *be = dqt_backend(env);
    assert_int_equal(is_mul ? dq_op_mul(be, a, b, y) : dq_op_add(be, a, b, y), 0);
    const float *ah = dqt_host(env, a), *bh = dqt_host(env, b);
    int64_t bs[4];
    for (int i = 0; i < 4; i++) bs[i] = i < 4 - bnd ? 1 : bshape[i - (4 - bnd)];
    double *ref = s_ref(as[0] * as[1] * as[2] * as[3]);
    for (int64_t i0 = 0; i0 < as[0]; i0++)
        for (int64_t i1 = 0; i1 < as[1]; i1++)
            for (int64_t i2 = 0; i2 < as[2]; i2++)
                for (int64_t i3 = 0; i3 < as[3]; i3++) {
                    int64_t ai = ((i0 * as[1] + i1) * as[2] + i2) * as[3] + i3;
                    int64_t bi = (i0 % bs[0]) * bs[1] + i1 % bs[1];
                    bi = (bi * bs[2] + i2 % bs[2]) * bs[3] + i3 % bs[3];
                    ref[ai] = is_mul ? (double) ah[ai] * bh[bi] : (double) ah[ai] + bh[bi];
                }
    dqt_expect_close(env, y, ref, TOL_ELEM, is_mul ? "mul" : "add");
    /* In place: a += b. */
    if (!is_mul) {
        assert_int_equal(dq_op_add(be, a, b, a), 0);
        dqt_expect_close(env, a, ref, TOL_ELEM, "add in place");
    }
    free(ref);
}

static void s_binary(dqt_env_t *env) {
    const int64_t *as = SHAPE(2, 3, 4, 5);
    for (int m = 0; m < 2; m++) {
        s_binary_case(env, as, m, 4, SHAPE(2, 3, 4, 5)); /* same shape */
        s_binary_case(env, as, m, 3, SHAPE(3, 1, 1));    /* channel bias */
        s_binary_case(env, as, m, 4, SHAPE(2, 3, 1, 1)); /* time embedding per (n, c) */
        s_binary_case(env, as, m, 1, SHAPE(5));          /* last-dim bias */
        s_binary_case(env, as, m, 4, SHAPE(1, 3, 4, 1)); /* mixed */
    }
}
CASE(binary)

static void s_scale(dqt_env_t *env) {
    dq_tensor_t *x = dqt_input(env, 2, SHAPE(4, 9), -3, 3);
    dq_tensor_t *y = dqt_output(env, 2, SHAPE(4, 9));
    assert_int_equal(dq_op_scale(dqt_backend(env), x, 0.18215f, 0.5f, y), 0);
    const float *xh = dqt_host(env, x);
    double *ref = s_ref(36);
    for (int i = 0; i < 36; i++) ref[i] = xh[i] * (double) 0.18215f + 0.5;
    dqt_expect_close(env, y, ref, TOL_ELEM, "scale");
    free(ref);
}
CASE(scale)

/* ---- layout ops ---- */

static void s_upsample(dqt_env_t *env) {
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(2, 3, 4, 5), -1, 1);
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(2, 3, 8, 10));
    assert_int_equal(dq_op_upsample_nearest2x(dqt_backend(env), x, y), 0);
    const float *xh = dqt_host(env, x);
    double *ref = s_ref(6 * 80);
    for (int p = 0; p < 6; p++)
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 10; j++)
                ref[(p * 8 + i) * 10 + j] = xh[(p * 4 + i / 2) * 5 + j / 2];
    dqt_expect_close(env, y, ref, 0.0, "upsample_nearest2x");
    free(ref);
}
CASE(upsample)

static void s_concat_case(dqt_env_t *env, int dim) {
    int64_t as[4] = {2, 3, 4, 5}, bs[4] = {2, 3, 4, 5}, ys[4] = {2, 3, 4, 5};
    bs[dim] = 2;
    ys[dim] = as[dim] + bs[dim];
    dq_tensor_t *a = dqt_input(env, 4, as, -1, 1), *b = dqt_input(env, 4, bs, -1, 1);
    dq_tensor_t *y = dqt_output(env, 4, ys);
    assert_int_equal(dq_op_concat(dqt_backend(env), a, b, dim, y), 0);
    const float *ah = dqt_host(env, a), *bh = dqt_host(env, b);
    double *ref = s_ref(dq_tensor_nelements(y));
    int64_t idx[4];
    for (idx[0] = 0; idx[0] < ys[0]; idx[0]++)
        for (idx[1] = 0; idx[1] < ys[1]; idx[1]++)
            for (idx[2] = 0; idx[2] < ys[2]; idx[2]++)
                for (idx[3] = 0; idx[3] < ys[3]; idx[3]++) {
                    int64_t yi = ((idx[0] * ys[1] + idx[1]) * ys[2] + idx[2]) * ys[3] + idx[3];
                    int from_a = idx[dim] < as[dim];
                    const int64_t *s = from_a ? as : bs;
                    int64_t j[4] = {idx[0], idx[1], idx[2], idx[3]};
                    if (!from_a) j[dim] -= as[dim];
                    int64_t si = ((j[0] * s[1] + j[1]) * s[2] + j[2]) * s[3] + j[3];
                    ref[yi] = from_a ? ah[si] : bh[si];
                }
    dqt_expect_close(env, y, ref, 0.0, "concat");
    free(ref);
}

static void s_concat(dqt_env_t *env) {
    for (int dim = 0; dim < 4; dim++) s_concat_case(env, dim);
}
CASE(concat)

static void s_cpy(dqt_env_t *env) {
    dq_backend_t *be = dqt_backend(env);
    /* NCHW -> NHWC through a permuted view: y[n, h, w, c] = x[n, c, h, w]. */
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(2, 3, 4, 5), -1, 1);
    dq_tensor_t view;
    assert_int_equal(dq_tensor_permute(&view, x, (const int[]){0, 2, 3, 1}), 0);
    assert_false(dq_tensor_is_contiguous(&view));
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(2, 4, 5, 3));
    assert_int_equal(dq_op_cpy(be, &view, y), 0);
    const float *xh = dqt_host(env, x);
    double *ref = s_ref(120);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < 4; h++)
                for (int w = 0; w < 5; w++)
                    ref[((n * 4 + h) * 5 + w) * 3 + c] = xh[((n * 3 + c) * 4 + h) * 5 + w];
    dqt_expect_close(env, y, ref, 0.0, "cpy permute");
    /* A chunk of the last dim (the second half, as GEGLU's gate). */
    dq_tensor_t half;
    assert_int_equal(dq_tensor_slice(&half, x, 3, 2, 3), 0);
    dq_tensor_t *yh = dqt_output(env, 4, SHAPE(2, 3, 4, 3));
    assert_int_equal(dq_op_cpy(be, &half, yh), 0);
    for (int r = 0; r < 24; r++)
        for (int i = 0; i < 3; i++) ref[r * 3 + i] = xh[r * 5 + 2 + i];
    dqt_expect_close(env, yh, ref, 0.0, "cpy slice");
    /* F16 source becomes F32 exactly. */
    dq_tensor_t *w16 = dqt_weight(env, DQ_DTYPE_F16, 2, SHAPE(7, 3), 2.0f);
    dq_tensor_t *y16 = dqt_output(env, 2, SHAPE(7, 3));
    assert_int_equal(dq_op_cpy(be, w16, y16), 0);
    const float *wh = dqt_host(env, w16);
    for (int i = 0; i < 21; i++) ref[i] = wh[i];
    dqt_expect_close(env, y16, ref, 0.0, "cpy f16");
    free(ref);
}
CASE(cpy)

static void s_get_rows(dqt_env_t *env) {
    dq_backend_t *be = dqt_backend(env);
    dq_tensor_t *table = dqt_weight(env, DQ_DTYPE_F16, 2, SHAPE(10, 6), 1.0f);
    dq_tensor_t *ids = dq_arena_tensor(dqt_arena(env), DQ_DTYPE_I32, 2, SHAPE(2, 3), "ids");
    assert_non_null(ids);
    int32_t idh[6] = {9, 0, 3, 3, 7, 1};
    assert_int_equal(dq_tensor_upload(be, ids, 0, idh, sizeof idh), 0);
    dq_tensor_t *y = dqt_output(env, 3, SHAPE(2, 3, 6));
    assert_int_equal(dq_op_get_rows(be, table, ids, y), 0);
    const float *th = dqt_host(env, table);
    double ref[36];
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < 6; i++) ref[r * 6 + i] = th[idh[r] * 6 + i];
    dqt_expect_close(env, y, ref, 0.0, "get_rows");
    /* An id outside the table is an error, not a read out of bounds. */
    idh[4] = 10;
    assert_int_equal(dq_tensor_upload(be, ids, 0, idh, sizeof idh), 0);
    assert_int_equal(dq_op_get_rows(be, table, ids, y), -1);
    idh[4] = -1;
    assert_int_equal(dq_tensor_upload(be, ids, 0, idh, sizeof idh), 0);
    assert_int_equal(dq_op_get_rows(be, table, ids, y), -1);
}
CASE(get_rows)

/* ---- sizes past DQ_CPU_PAR_MIN, so the OpenMP paths run too ---- */

static void s_large(dqt_env_t *env) {
    s_linear_case(env, 2, 64, 96, 80, DQ_DTYPE_F32, 1, RES_NONE);
    s_linear_case(env, 1, 64, 200, 45, DQ_DTYPE_F16, 1, RES_NONE);
    s_linear_case(env, 2, 64, 96, 80, DQ_DTYPE_F32, 1, RES_Y);
    s_conv_case(env, 1, 8, 24, 24, 4, 3, 1, 1, DQ_DTYPE_F32, 1);
    s_conv_case_res(env, 1, 8, 24, 24, 4, 3, 1, 1, DQ_DTYPE_F32, 1, RES_OWN);
    s_conv_case(env, 1, 6, 20, 9, 5, 3, 1, 1, DQ_DTYPE_BF16, 1);
    s_group_norm_case(env, 4, SHAPE(2, 32, 16, 17), 8, 1, 0);
    s_group_norm_case(env, 4, SHAPE(2, 32, 16, 17), 8, 1, 1);
    s_layer_norm_case(env, 2, SHAPE(40, 300), 1);
    s_softmax_case(env, 30, 400);
    s_attention_case(env, 1, 200, 64, 2, 8, false);
    s_attention_case(env, 1, 200, 200, 2, 8, true);
    s_activations_case(env, 3, 5001);
    s_geglu_case(env, 64, 130);
    s_binary_case(env, SHAPE(2, 8, 32, 33), 0, 3, SHAPE(8, 1, 1));
    s_binary_case(env, SHAPE(2, 8, 32, 33), 1, 4, SHAPE(2, 8, 32, 33));
}

/* A 64 KiB workspace still makes the conv tile (9 of 24 rows per band); 4 MiB does not. */
static void test_large(void **state) {
    (void) state;
    const size_t sizes[2] = {64u << 10, 4u << 20};
    for (int i = 0; i < 2; i++) {
        dqt_env_t *env = dqt_env_new(sizes[i]);
        s_large(env);
        dqt_env_free(&env);
    }
}

/* ---- the vectorisable exp behind softmax, SiLU and quick GELU ---- */

static void test_cpu_expf(void **state) {
    (void) state;
    double worst = 0.0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.0f + (float) i * (175.0f / 400000.0f);
        double want = exp((double) x), got = dq_cpu_expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    print_message("dq_cpu_expf: worst relative error %.3g on [-87, 88]\n", worst);
    assert_true(worst < 2.5e-7); /* 2 ulp at 2^-23 = 1.19e-7 per ulp */
    assert_true(dq_cpu_expf(0.0f) == 1.0f);
    assert_true(dq_cpu_expf(-INFINITY) == 0.0f);
    assert_true(dq_cpu_expf(-1000.0f) == 0.0f);
    assert_true(isinf(dq_cpu_expf(INFINITY)) && dq_cpu_expf(INFINITY) > 0);
    assert_true(isinf(dq_cpu_expf(100.0f)));
    assert_true(isnan(dq_cpu_expf(NAN)));
}

static void test_cpu_erff(void **state) {
    (void) state;
    double worst = 0.0;
    for (int i = 0; i <= 200000; i++) {
        float x = -10.0f + (float) i * (20.0f / 200000.0f);
        double err = fabs((double) dq_cpu_erff(x) - erf((double) x));
        if (err > worst) worst = err;
    }
    print_message("dq_cpu_erff: worst absolute error %.3g on [-10, 10]\n", worst);
    assert_true(worst < 6e-7);
    assert_true(dq_cpu_erff(0.0f) == 0.0f);
    assert_true(dq_cpu_erff(INFINITY) == 1.0f && dq_cpu_erff(-INFINITY) == -1.0f);
    assert_true(isnan(dq_cpu_erff(NAN)));
}

/* ---- argument checking ---- */

static void test_bad_arguments(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 10);
    dq_backend_t *be = dqt_backend(env);
    dq_tensor_t *x = dqt_input(env, 3, SHAPE(2, 3, 8), -1, 1);
    dq_tensor_t *w = dqt_weight(env, DQ_DTYPE_F32, 2, SHAPE(4, 7), 1.0f);
    dq_tensor_t *y = dqt_output(env, 3, SHAPE(2, 3, 4));
    assert_int_equal(dq_op_linear(be, x, w, NULL, y), -1); /* K 8 vs 7 */
    dq_tensor_t *w8 = dqt_weight(env, DQ_DTYPE_F32, 2, SHAPE(4, 8), 1.0f);
    dq_tensor_t *bias = dqt_input(env, 1, SHAPE(5), -1, 1);
    assert_int_equal(dq_op_linear(be, x, w8, bias, y), -1);  /* bias 5 vs N 4 */
    assert_int_equal(dq_op_linear(be, x, w8, NULL, x), -1);  /* y's last dim */
    dq_tensor_t *ya = dqt_output(env, 3, SHAPE(2, 3, 8));
    assert_int_equal(dq_op_attention(be, x, x, x, 3, false, ya), -1); /* 3 does not divide 8 */
    assert_int_equal(dq_op_attention(be, x, x, x, 2, false, y), -1);  /* y's shape */
    dq_tensor_t *odd = dqt_output(env, 3, SHAPE(2, 3, 4));
    assert_int_equal(dq_op_geglu(be, dqt_input(env, 3, SHAPE(2, 3, 7), -1, 1), odd), -1);
    assert_int_equal(dq_op_add(be, x, dqt_input(env, 1, SHAPE(3), -1, 1), x), -1);
    dq_tensor_t view;
    assert_int_equal(dq_tensor_permute(&view, x, (const int[]){0, 2, 1}), 0);
    dq_tensor_t *yv = dqt_output(env, 3, SHAPE(2, 8, 3));
    assert_int_equal(dq_op_gelu(be, &view, yv), -1); /* not contiguous */
    dq_tensor_t *x4 = dqt_input(env, 4, SHAPE(1, 64, 9, 31), -1, 1);
    dq_tensor_t *cw = dqt_weight(env, DQ_DTYPE_F32, 4, SHAPE(2, 64, 3, 3), 1.0f);
    dq_tensor_t *cy = dqt_output(env, 4, SHAPE(1, 2, 9, 31));
    assert_int_equal(dq_op_conv2d(be, x4, cw, NULL, 1, 0, cy), -1); /* wrong y for pad 0 */
    /* Valid, but one im2col row (576 x 31 floats) exceeds the 4 KiB workspace: a clean error. */
    assert_int_equal(dq_op_conv2d(be, x4, cw, NULL, 1, 1, cy), -1);
    assert_int_equal(dq_op_group_norm(be, x4, NULL, NULL, 5, 1e-5f, x4), -1); /* 5 !| 64 */
    /* group_norm_silu shares group_norm's checks. */
    dq_tensor_t *gy = dqt_output(env, 4, SHAPE(1, 64, 9, 31));
    dq_tensor_t *g64 = dqt_input(env, 1, SHAPE(64), -1, 1);
    assert_int_equal(dq_op_group_norm_silu(be, x4, NULL, NULL, 5, 1e-5f, gy), -1);
    assert_int_equal(dq_op_group_norm_silu(be, x4, g64, NULL, 32, 1e-5f, gy), -1); /* no beta */
    assert_int_equal(dq_op_group_norm_silu(be, x4, NULL, NULL, 32, -1.0f, gy), -1);
    assert_int_equal(dq_op_group_norm_silu(be, x4, NULL, NULL, 32, 1e-5f, cy), -1); /* shape */
    assert_int_equal(dq_op_group_norm_silu(be, x4, g64, g64, 32, 1e-5f, gy), 0);
    dq_tensor_t *i64 = dq_arena_tensor(dqt_arena(env), DQ_DTYPE_I64, 1, SHAPE(3), "ids");
    assert_int_equal(dq_op_get_rows(be, w8, i64, y), -1); /* ids must be I32 */
    /* A tensor from another backend's buffer is refused, not read. */
    dqt_env_t *other = dqt_env_new(4u << 10);
    dq_tensor_t *xo = dqt_input(other, 3, SHAPE(2, 3, 8), -1, 1);
    dq_tensor_t *yo = dqt_output(env, 3, SHAPE(2, 3, 8));
    assert_int_equal(dq_op_gelu(be, xo, yo), -1);
    assert_int_equal(dq_op_gelu(dqt_backend(other), xo, yo), -1);
    assert_int_equal(dq_op_gelu(be, x, yo), 0);
    dqt_env_free(&other);
    dqt_env_free(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),     cmocka_unit_test(test_linear_residual),
        cmocka_unit_test(test_matmul),     cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_conv2d_residual), cmocka_unit_test(test_residual_checked),
        cmocka_unit_test(test_conv2d_winograd),
        cmocka_unit_test(test_conv2d_winograd_blocks),
        cmocka_unit_test(test_conv2d_winograd_applies), cmocka_unit_test(test_group_norm),
        cmocka_unit_test(test_group_norm_silu_bits),
        cmocka_unit_test(test_layer_norm), cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_attention),  cmocka_unit_test(test_attention_tiles),
        cmocka_unit_test(test_attention_tiled_applies), cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_activations), cmocka_unit_test(test_activation_offsets),
        cmocka_unit_test(test_geglu),      cmocka_unit_test(test_binary),
        cmocka_unit_test(test_scale),      cmocka_unit_test(test_upsample),
        cmocka_unit_test(test_concat),     cmocka_unit_test(test_cpy),
        cmocka_unit_test(test_get_rows),   cmocka_unit_test(test_large),
        cmocka_unit_test(test_cpu_expf),
        cmocka_unit_test(test_cpu_erff),        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("ops_cpu", tests, NULL, NULL);
}
