/* tests/unit/test_ops_act_dtype.c: the op layer's activation dtype rules (kernels/backend.h):
 * activations F32, F16 or BF16, one dtype per op (cpy and get_rows convert), biases and norm
 * parameters F32, F16 and BF16 only where the backend's supports_activation says so. The CPU
 * backend takes F32 only and says so; a recording fake backend that takes F16 shows what passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/ops.h"

/* ---- stderr capture (the ops log why they refuse) ---- */

static FILE *s_tmp;
static int s_saved_fd = -1;
static char s_text[8192];

static void s_capture_begin(void) {
    s_tmp = tmpfile();
    assert_non_null(s_tmp);
    fflush(stderr);
    s_saved_fd = dup(STDERR_FILENO);
    assert_true(s_saved_fd >= 0);
    assert_true(dup2(fileno(s_tmp), STDERR_FILENO) >= 0);
}

/* What was logged since s_capture_begin. */
static const char *s_capture_end(void) {
    fflush(stderr);
    dup2(s_saved_fd, STDERR_FILENO);
    close(s_saved_fd);
    rewind(s_tmp);
    size_t n = fread(s_text, 1, sizeof s_text - 1, s_tmp);
    s_text[n] = '\0';
    fclose(s_tmp);
    return s_text;
}

/* Asserts that call returned -1 and logged a line containing want. */
#define S_REFUSED(call, want)                                                                     \
    do {                                                                                          \
        s_capture_begin();                                                                        \
        int rc_ = (call);                                                                         \
        const char *log_ = s_capture_end();                                                       \
        if (rc_ != -1 || !strstr(log_, (want)))                                                   \
            fail_msg("%s: rc %d, log \"%s\", expected -1 and \"%s\"", #call, rc_, log_, (want)); \
    } while (0)

/* ---- host tensors (no buffer: plain host memory, which the op layer lets through) ---- */

static unsigned char s_mem[16][4096];
static int s_nmem;

static dq_tensor_t s_t(dq_dtype_t dt, int ndim, const int64_t *shape) {
    dq_tensor_t t;
    assert_true(s_nmem < 16);
    assert_int_equal(dq_tensor_init(&t, dt, ndim, shape, s_mem[s_nmem++], NULL, "t"), 0);
    assert_true(dq_tensor_nbytes(&t) <= sizeof s_mem[0]);
    return t;
}

/* ---- a fake backend that takes F16 activations (except for softmax) and records calls ---- */

static int s_calls;

static bool s_fake_supports_op(const dq_backend_t *be, dq_op_t op, dq_dtype_t w) {
    (void) be;
    (void) op;
    return w == DQ_DTYPE_F32 || w == DQ_DTYPE_F16 || w == DQ_DTYPE_BF16;
}
static bool s_fake_supports_act(const dq_backend_t *be, dq_op_t op, dq_dtype_t dt) {
    (void) be;
    return dt == DQ_DTYPE_F16 && op != DQ_OP_SOFTMAX;
}
static int s_fake_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                         const dq_tensor_t *b, const dq_tensor_t *r, dq_tensor_t *y) {
    (void) be, (void) x, (void) w, (void) b, (void) r, (void) y;
    return s_calls++, 0;
}
static int s_fake_unary(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be, (void) x, (void) y;
    return s_calls++, 0;
}
static int s_fake_binary(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b,
                         dq_tensor_t *y) {
    (void) be, (void) a, (void) b, (void) y;
    return s_calls++, 0;
}
static int s_fake_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                            const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    (void) be, (void) q, (void) k, (void) v, (void) heads, (void) causal, (void) y;
    return s_calls++, 0;
}
static int s_fake_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *g,
                             const dq_tensor_t *b, float eps, dq_tensor_t *y) {
    (void) be, (void) x, (void) g, (void) b, (void) eps, (void) y;
    return s_calls++, 0;
}
static int s_fake_get_rows(dq_backend_t *be, const dq_tensor_t *t, const dq_tensor_t *ids,
                           dq_tensor_t *y) {
    (void) be, (void) t, (void) ids, (void) y;
    return s_calls++, 0;
}

static const dq_backend_ops_t s_fake_ops = {
    .name = "fake16",
    .supports_op = s_fake_supports_op,
    .supports_activation = s_fake_supports_act,
    .linear = s_fake_linear,
    .layer_norm = s_fake_layer_norm,
    .softmax = s_fake_unary,
    .attention = s_fake_attention,
    .gelu = s_fake_unary,
    .add = s_fake_binary,
    .cpy = s_fake_unary,
    .get_rows = s_fake_get_rows,
};
static dq_backend_t s_fake = {.ops = &s_fake_ops, .ctx = NULL};

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* The CPU backend takes F32 activations only and says so, whichever operand is F16. */
static void test_cpu_refuses_f16(void **state) {
    (void) state;
    s_nmem = 0;
    dq_backend_t *cpu = dq_backend_cpu_new(4u << 10, 1);
    assert_non_null(cpu);
    assert_true(dq_backend_supports_activation(cpu, DQ_OP_LINEAR, DQ_DTYPE_F32));
    assert_false(dq_backend_supports_activation(cpu, DQ_OP_LINEAR, DQ_DTYPE_F16));
    dq_tensor_t x16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8)), y16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 4));
    dq_tensor_t w = s_t(DQ_DTYPE_F16, 2, SHAPE(4, 8)), g16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8));
    S_REFUSED(dq_op_linear(cpu, &x16, &w, NULL, &y16),
              "x is F16 but backend cpu takes F32 activations only");
    S_REFUSED(dq_op_gelu(cpu, &x16, &g16), "backend cpu takes F32 activations only");
    /* The converting ops: an F16 output is an F16 activation too. */
    dq_tensor_t x32 = s_t(DQ_DTYPE_F32, 2, SHAPE(3, 8));
    S_REFUSED(dq_op_cpy(cpu, &x32, &g16), "y is F16 but backend cpu takes F32 activations only");
    int32_t *ids = (int32_t *) s_mem[s_nmem];
    dq_tensor_t id = s_t(DQ_DTYPE_I32, 1, SHAPE(3));
    ids[0] = ids[1] = ids[2] = 0;
    dq_tensor_t table = s_t(DQ_DTYPE_F32, 2, SHAPE(5, 8));
    S_REFUSED(dq_op_get_rows(cpu, &table, &id, &g16), "takes F32 activations only");
    dq_backend_destroy(&cpu);
}

/* All activations of one op share a dtype; the first one's sets it. */
static void test_mixed_dtypes_refused(void **state) {
    (void) state;
    s_nmem = 0;
    s_calls = 0;
    dq_tensor_t x16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8)), y32 = s_t(DQ_DTYPE_F32, 2, SHAPE(3, 4));
    dq_tensor_t y16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 4)), w = s_t(DQ_DTYPE_F32, 2, SHAPE(4, 8));
    S_REFUSED(dq_op_linear(&s_fake, &x16, &w, NULL, &y32),
              "y must be F16 (an op's activations share one dtype)");
    dq_tensor_t a32 = s_t(DQ_DTYPE_F32, 2, SHAPE(3, 8)), b16 = s_t(DQ_DTYPE_F16, 1, SHAPE(8));
    dq_tensor_t o32 = s_t(DQ_DTYPE_F32, 2, SHAPE(3, 8));
    S_REFUSED(dq_op_add(&s_fake, &a32, &b16, &o32), "b must be F32 (an op's activations");
    dq_tensor_t q = s_t(DQ_DTYPE_F16, 3, SHAPE(1, 3, 8)), v32 = s_t(DQ_DTYPE_F32, 3, SHAPE(1, 3, 8));
    dq_tensor_t ya = s_t(DQ_DTYPE_F16, 3, SHAPE(1, 3, 8));
    S_REFUSED(dq_op_attention(&s_fake, &q, &q, &v32, 2, false, &ya), "v must be F16");
    /* Only F32, F16 and BF16 are activation dtypes, and this backend takes no BF16 ones. */
    dq_tensor_t xu = s_t(DQ_DTYPE_U8, 2, SHAPE(3, 8)), yu = s_t(DQ_DTYPE_U8, 2, SHAPE(3, 8));
    S_REFUSED(dq_op_gelu(&s_fake, &xu, &yu), "x must be F32, F16 or BF16 (activations)");
    dq_tensor_t xb = s_t(DQ_DTYPE_BF16, 2, SHAPE(3, 8)), yb = s_t(DQ_DTYPE_BF16, 2, SHAPE(3, 8));
    S_REFUSED(dq_op_gelu(&s_fake, &xb, &yb), "does not take BF16 activations for this op");
    assert_int_equal(s_calls, 0); /* nothing reached the backend */
    assert_int_equal(dq_op_linear(&s_fake, &x16, &w, NULL, &y16), 0);
    assert_int_equal(s_calls, 1);
}

/* Biases and norm parameters stay F32 under F16 activations. */
static void test_params_stay_f32(void **state) {
    (void) state;
    s_nmem = 0;
    s_calls = 0;
    dq_tensor_t x16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8)), y16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 4));
    dq_tensor_t w = s_t(DQ_DTYPE_F16, 2, SHAPE(4, 8));
    dq_tensor_t b16 = s_t(DQ_DTYPE_F16, 1, SHAPE(4)), b32 = s_t(DQ_DTYPE_F32, 1, SHAPE(4));
    S_REFUSED(dq_op_linear(&s_fake, &x16, &w, &b16, &y16),
              "bias must be F32 (biases and norm parameters are F32)");
    assert_int_equal(dq_op_linear(&s_fake, &x16, &w, &b32, &y16), 0);
    dq_tensor_t ln16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8)), g16 = s_t(DQ_DTYPE_F16, 1, SHAPE(8));
    dq_tensor_t g32 = s_t(DQ_DTYPE_F32, 1, SHAPE(8));
    S_REFUSED(dq_op_layer_norm(&s_fake, &x16, &g16, &g16, 1e-5f, &ln16), "gamma must be F32");
    assert_int_equal(dq_op_layer_norm(&s_fake, &x16, &g32, &g32, 1e-5f, &ln16), 0);
    assert_int_equal(s_calls, 2);
}

/* cpy converts between activation dtypes from any view; get_rows writes either dtype. */
static void test_converting_ops(void **state) {
    (void) state;
    s_nmem = 0;
    s_calls = 0;
    dq_tensor_t x32 = s_t(DQ_DTYPE_F32, 3, SHAPE(2, 3, 4)), x16 = s_t(DQ_DTYPE_F16, 3, SHAPE(2, 3, 4));
    dq_tensor_t p32, p16;
    assert_int_equal(dq_tensor_permute(&p32, &x32, (const int[]){0, 2, 1}), 0);
    assert_int_equal(dq_tensor_permute(&p16, &x16, (const int[]){0, 2, 1}), 0);
    dq_tensor_t y16 = s_t(DQ_DTYPE_F16, 3, SHAPE(2, 4, 3)), y32 = s_t(DQ_DTYPE_F32, 3, SHAPE(2, 4, 3));
    assert_int_equal(dq_op_cpy(&s_fake, &p32, &y16), 0); /* F32 -> F16, strided */
    assert_int_equal(dq_op_cpy(&s_fake, &p16, &y32), 0); /* F16 -> F32 */
    assert_int_equal(dq_op_cpy(&s_fake, &p16, &y16), 0); /* F16 -> F16 */
    dq_tensor_t yb = s_t(DQ_DTYPE_BF16, 3, SHAPE(2, 4, 3));
    S_REFUSED(dq_op_cpy(&s_fake, &p32, &yb), "does not take BF16 activations for this op");
    dq_tensor_t table = s_t(DQ_DTYPE_BF16, 2, SHAPE(5, 8)), id = s_t(DQ_DTYPE_I32, 1, SHAPE(3));
    dq_tensor_t r16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8));
    assert_int_equal(dq_op_get_rows(&s_fake, &table, &id, &r16), 0);
    assert_int_equal(s_calls, 4);
}

/* A backend may take F16 activations for some ops only. */
static void test_per_op_support(void **state) {
    (void) state;
    s_nmem = 0;
    s_calls = 0;
    dq_tensor_t x16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8)), y16 = s_t(DQ_DTYPE_F16, 2, SHAPE(3, 8));
    assert_false(dq_backend_supports_activation(&s_fake, DQ_OP_SOFTMAX, DQ_DTYPE_F16));
    assert_true(dq_backend_supports_activation(&s_fake, DQ_OP_SOFTMAX, DQ_DTYPE_F32));
    assert_false(dq_backend_supports_activation(&s_fake, DQ_OP_COUNT, DQ_DTYPE_F32));
    S_REFUSED(dq_op_softmax(&s_fake, &x16, &y16),
              "backend fake16 does not take F16 activations for this op");
    assert_int_equal(dq_op_gelu(&s_fake, &x16, &y16), 0);
    assert_int_equal(s_calls, 1);
}

int main(void) {
    dq_log_init("test_ops_act_dtype", DQ_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_refuses_f16),      cmocka_unit_test(test_mixed_dtypes_refused),
        cmocka_unit_test(test_params_stay_f32),      cmocka_unit_test(test_converting_ops),
        cmocka_unit_test(test_per_op_support),
    };
    return cmocka_run_group_tests_name("ops_act_dtype", tests, NULL, NULL);
}
