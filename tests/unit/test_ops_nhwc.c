/* tests/unit/test_ops_nhwc.c: the CPU backend's channels-last ops (conv2d_nhwc,
 * group_norm(_silu)_nhwc, upsample_nearest2x_nhwc) against naive double-precision references
 * written in NHWC indexing, and the op layer's checks of their shapes.
 *
 * Convolutions run with a workspace that forces banding and weight blocks (2 KiB) and a roomy one
 * (4 MiB), with each kind of residual. Pass criteria as in test_ops_cpu.c: finite outputs,
 * relative L2 at most 1e-5 (GEMM) or 1e-6 (norms), guards untouched; group_norm_silu_nhwc
 * bit-identical to group_norm_nhwc followed by silu; upsampling exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "kernels/ops.h"
#include "tests/unit/ops_harness.h"

#define TOL_GEMM 1e-5
#define TOL_ELEM 1e-6
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* The residual of a case: none, a tensor of its own, y itself, or one row per image. */
typedef enum { RES_NONE, RES_OWN, RES_Y, RES_IMAGE } s_res_t;

static double *s_ref(int64_t n) {
    double *r = calloc((size_t) n, sizeof *r);
    assert_non_null(r);
    return r;
}

static void s_conv_case(dqt_env_t *env, int64_t n, int64_t h, int64_t w, int64_t ci, int64_t co,
                        int64_t kk, int stride, int pad, dq_dtype_t wt, int with_bias,
                        s_res_t res) {
    int64_t ho = (h + 2 * pad - kk) / stride + 1, wo = (w + 2 * pad - kk) / stride + 1;
    dq_backend_t *be = dqt_backend(env);
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(n, h, w, ci), -1, 1);
    dq_tensor_t *wgt = dqt_weight(env, wt, 4, SHAPE(co, kk, kk, ci), 0.3f);
    dq_tensor_t *bias = with_bias ? dqt_input(env, 1, SHAPE(co), -1, 1) : NULL;
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(n, ho, wo, co));
    const dq_tensor_t *r = NULL;
    const float *rh = NULL;
    if (res == RES_IMAGE) {
        r = dqt_input(env, 4, SHAPE(n, 1, 1, co), -1, 1);
        rh = dqt_host(env, r);
    } else if (res != RES_NONE) {
        dq_tensor_t *own = dqt_input(env, 4, y->shape, -1, 1);
        rh = dqt_host(env, own);
        r = own;
        if (res == RES_Y) {
            assert_int_equal(dq_tensor_upload(be, y, 0, rh, dq_tensor_nbytes(y)), 0);
            r = y;
        }
    }
    assert_int_equal(dq_op_conv2d_nhwc(be, x, wgt, bias, stride, pad, r, y), 0);
    const float *xh = dqt_host(env, x), *wh = dqt_host(env, wgt);
    const float *bh = bias ? dqt_host(env, bias) : NULL;
    double *ref = s_ref(n * ho * wo * co);
    for (int64_t b = 0; b < n; b++)
        for (int64_t oy = 0; oy < ho; oy++)
            for (int64_t ox = 0; ox < wo; ox++)
                for (int64_t o = 0; o < co; o++) {
                    int64_t at = ((b * ho + oy) * wo + ox) * co + o;
                    double s = bh ? bh[o] : 0.0;
                    if (rh) s += res == RES_IMAGE ? rh[b * co + o] : rh[at];
                    for (int64_t i = 0; i < kk; i++)
                        for (int64_t j = 0; j < kk; j++) {
                            int64_t iy = oy * stride - pad + i, ix = ox * stride - pad + j;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            for (int64_t c = 0; c < ci; c++)
                                s += (double) xh[((b * h + iy) * w + ix) * ci + c] *
                                     wh[((o * kk + i) * kk + j) * ci + c];
                        }
                    ref[at] = s;
                }
    dqt_expect_close(env, y, ref, TOL_GEMM, "conv2d_nhwc");
    free(ref);
}

/* 3x3 with padding, stride 2, 1x1 (the direct sgemm), no padding; F16/BF16 weights; every kind
 * of residual; in a workspace that forces bands and weight blocks and in a roomy one. */
static void test_conv2d_nhwc(void **state) {
    (void) state;
    const size_t sizes[2] = {2u << 10, 4u << 20};
    for (int i = 0; i < 2; i++) {
        dqt_env_t *env = dqt_env_new(sizes[i]);
        s_conv_case(env, 2, 9, 11, 5, 7, 3, 1, 1, DQ_DTYPE_F32, 1, RES_NONE);
        s_conv_case(env, 1, 10, 7, 4, 6, 3, 2, 1, DQ_DTYPE_F32, 1, RES_OWN);
        s_conv_case(env, 2, 5, 3, 6, 4, 1, 1, 0, DQ_DTYPE_F32, 1, RES_Y);
        s_conv_case(env, 1, 6, 6, 2, 3, 3, 1, 0, DQ_DTYPE_F32, 0, RES_NONE);
        s_conv_case(env, 2, 7, 5, 5, 7, 3, 1, 1, DQ_DTYPE_F16, 1, RES_IMAGE);
        s_conv_case(env, 1, 4, 5, 3, 9, 1, 1, 0, DQ_DTYPE_BF16, 0, RES_IMAGE);
        s_conv_case(env, 3, 8, 9, 8, 12, 3, 1, 1, DQ_DTYPE_F16, 1, RES_Y);
        dqt_env_free(&env);
    }
}

static void s_group_norm_case(dqt_env_t *env, int ndim, const int64_t *shape, int groups,
                              int affine, int silu) {
    float eps = 1e-5f;
    dq_backend_t *be = dqt_backend(env);
    dq_tensor_t *x = dqt_input(env, ndim, shape, 2.0f, 4.0f); /* offset mean: tests stability */
    int64_t n = shape[0], c = shape[ndim - 1], total = dq_tensor_nelements(x);
    int64_t s = total / (n * c), cpg = c / groups;
    dq_tensor_t *g = affine ? dqt_input(env, 1, SHAPE(c), 0.5f, 1.5f) : NULL;
    dq_tensor_t *b = affine ? dqt_input(env, 1, SHAPE(c), -1, 1) : NULL;
    dq_tensor_t *y = dqt_output(env, ndim, shape);
    assert_int_equal(silu ? dq_op_group_norm_silu_nhwc(be, x, g, b, groups, eps, y)
                          : dq_op_group_norm_nhwc(be, x, g, b, groups, eps, y),
                     0);
    const float *xh = dqt_host(env, x), *gh = g ? dqt_host(env, g) : NULL;
    const float *bh = b ? dqt_host(env, b) : NULL;
    double *ref = s_ref(total);
    for (int64_t q = 0; q < n * groups; q++) {
        int64_t img = q / groups, c0 = (q % groups) * cpg;
        double mean = 0.0, var = 0.0;
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; i < cpg; i++) mean += xh[(img * s + p) * c + c0 + i];
        mean /= (double) (s * cpg);
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; i < cpg; i++) var += pow(xh[(img * s + p) * c + c0 + i] - mean, 2);
        var /= (double) (s * cpg); /* biased, as torch */
        for (int64_t p = 0; p < s; p++)
            for (int64_t i = 0; i < cpg; i++) {
                int64_t at = (img * s + p) * c + c0 + i;
                double v = (xh[at] - mean) / sqrt(var + eps);
                if (gh) v = v * gh[c0 + i] + bh[c0 + i];
                ref[at] = silu ? v / (1.0 + exp(-v)) : v;
            }
    }
    dqt_expect_close(env, y, ref, TOL_ELEM, silu ? "group_norm_silu_nhwc" : "group_norm_nhwc");
    free(ref);
}

static void test_group_norm_nhwc(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    for (int silu = 0; silu < 2; silu++) {
        s_group_norm_case(env, 4, SHAPE(2, 5, 7, 12), 4, 1, silu);
        s_group_norm_case(env, 3, SHAPE(3, 10, 6), 3, 0, silu);
        s_group_norm_case(env, 4, SHAPE(1, 3, 3, 32), 32, 1, silu);
        s_group_norm_case(env, 4, SHAPE(2, 16, 17, 64), 32, 1, silu); /* threaded */
    }
    dqt_env_free(&env);
}

/* group_norm_silu_nhwc gives the bits of group_norm_nhwc followed by silu. */
static void test_group_norm_silu_nhwc_bits(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    dq_backend_t *be = dqt_backend(env);
    const int64_t *shapes[2] = {SHAPE(2, 48, 50, 64), SHAPE(1, 5, 7, 12)};
    for (int k = 0; k < 2; k++) {
        const int64_t *shape = shapes[k];
        int64_t c = shape[3];
        dq_tensor_t *x = dqt_input(env, 4, shape, -3.0f, 5.0f);
        dq_tensor_t *g = dqt_input(env, 1, SHAPE(c), 0.5f, 1.5f);
        dq_tensor_t *b = dqt_input(env, 1, SHAPE(c), -1, 1);
        dq_tensor_t *fused = dqt_output(env, 4, shape), *two = dqt_output(env, 4, shape);
        assert_int_equal(dq_op_group_norm_silu_nhwc(be, x, g, b, 4, 1e-6f, fused), 0);
        assert_int_equal(dq_op_group_norm_nhwc(be, x, g, b, 4, 1e-6f, two), 0);
        assert_int_equal(dq_op_silu(be, two, two), 0);
        assert_memory_equal(dqt_host(env, fused), dqt_host(env, two),
                            (size_t) dq_tensor_nelements(x) * sizeof(float));
    }
    dqt_env_free(&env);
}

static void test_upsample_nhwc(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    const int64_t n = 2, h = 4, w = 5, c = 3;
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(n, h, w, c), -1, 1);
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(n, 2 * h, 2 * w, c));
    assert_int_equal(dq_op_upsample_nearest2x_nhwc(dqt_backend(env), x, y), 0);
    const float *xh = dqt_host(env, x);
    double *ref = s_ref(n * 4 * h * w * c);
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < 2 * h; i++)
            for (int64_t j = 0; j < 2 * w; j++)
                for (int64_t k = 0; k < c; k++)
                    ref[((b * 2 * h + i) * 2 * w + j) * c + k] =
                        xh[((b * h + i / 2) * w + j / 2) * c + k];
    dqt_expect_close(env, y, ref, 0.0, "upsample_nearest2x_nhwc");
    free(ref);
    dqt_env_free(&env);
}

/* Shapes in the wrong layout are refused with a message, not run. */
static void test_nhwc_checked(void **state) {
    (void) state;
    dqt_env_t *env = dqt_env_new(4u << 20);
    dq_backend_t *be = dqt_backend(env);
    dq_tensor_t *x = dqt_input(env, 4, SHAPE(1, 6, 6, 4), -1, 1);
    dq_tensor_t *kcrs = dqt_weight(env, DQ_DTYPE_F32, 4, SHAPE(8, 4, 3, 3), 0.3f);
    dq_tensor_t *krsc = dqt_weight(env, DQ_DTYPE_F32, 4, SHAPE(8, 3, 3, 4), 0.3f);
    dq_tensor_t *y = dqt_output(env, 4, SHAPE(1, 6, 6, 8));
    dq_tensor_t *nchw_y = dqt_output(env, 4, SHAPE(1, 8, 6, 6));
    dq_tensor_t *plane_nchw = dqt_input(env, 4, SHAPE(1, 8, 1, 1), -1, 1);
    assert_int_equal(dq_op_conv2d_nhwc(be, x, kcrs, NULL, 1, 1, NULL, y), -1);
    assert_int_equal(dq_op_conv2d_nhwc(be, x, krsc, NULL, 1, 1, NULL, nchw_y), -1);
    assert_int_equal(dq_op_conv2d_nhwc(be, x, krsc, NULL, 1, 1, plane_nchw, y), -1);
    dq_tensor_t *up = dqt_output(env, 4, SHAPE(1, 12, 12, 4));
    dq_tensor_t *up_nchw = dqt_output(env, 4, SHAPE(1, 12, 12, 8));
    assert_int_equal(dq_op_upsample_nearest2x_nhwc(be, x, up), 0);
    assert_int_equal(dq_op_upsample_nearest2x_nhwc(be, x, up_nchw), -1);
    dq_tensor_t *gy = dqt_output(env, 4, SHAPE(1, 6, 6, 4));
    assert_int_equal(dq_op_group_norm_nhwc(be, x, NULL, NULL, 3, 1e-5f, gy), -1); /* 3 ∤ 4 */
    assert_int_equal(dq_op_group_norm_nhwc(be, x, NULL, NULL, 2, 1e-5f, gy), 0);
    dqt_env_free(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_nhwc),
        cmocka_unit_test(test_group_norm_nhwc),
        cmocka_unit_test(test_group_norm_silu_nhwc_bits),
        cmocka_unit_test(test_upsample_nhwc),
        cmocka_unit_test(test_nhwc_checked),
    };
    return cmocka_run_group_tests_name("ops_nhwc", tests, NULL, NULL);
}
