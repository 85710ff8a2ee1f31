/* tests/unit/test_ops_fixture.c: CPU ops against outputs of PyTorch/diffusers modules.
 *
 * The fixtures (tests/fixtures/ops/<case>.dqt, format in tests/reference/ops_fixture.py) hold
 * random inputs, the module's weights and the module's output computed by torch 2.x in f32 on
 * the CPU. Pass: relative L2 error <= 1e-5 for sgemm-based ops (linear, conv2d, attention) and
 * <= 2e-6 for the others, all outputs finite, guards intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "tests/unit/ops_harness.h"

#define TOL_GEMM 1e-5
#define TOL_ELEM 2e-6
#define MAX_FIX 8

/* One tensor of a fixture file. */
typedef struct {
    char name[32];
    int ndim;
    int64_t shape[DQ_TENSOR_MAX_DIMS];
    float *data; /* owned */
} s_fix_t;

typedef struct {
    s_fix_t t[MAX_FIX];
    int n;
} s_case_t;

static int s_read(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

/* Loads tests/fixtures/ops/<name>.dqt; fails the test (naming the file) on any malformed field. */
static void s_load(const char *name, s_case_t *c) {
    const char *top = getenv("top_srcdir");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/ops/%s.dqt", top ? top : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open fixture %s\n", path);
        fail();
    }
    memset(c, 0, sizeof *c);
    char magic[4];
    uint32_t count;
    if (s_read(f, magic, 4) || memcmp(magic, "DQT1", 4) || s_read(f, &count, 4) || count > MAX_FIX)
        goto bad;
    for (uint32_t i = 0; i < count; i++) {
        s_fix_t *t = &c->t[c->n++];
        uint32_t len, ndim;
        if (s_read(f, &len, 4) || len >= sizeof t->name || s_read(f, t->name, len)) goto bad;
        if (s_read(f, &ndim, 4) || ndim < 1 || ndim > DQ_TENSOR_MAX_DIMS) goto bad;
        t->ndim = (int) ndim;
        int64_t n = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            if (s_read(f, &t->shape[d], 8) || t->shape[d] < 1 || t->shape[d] > (1 << 20)) goto bad;
            n *= t->shape[d];
        }
        if (n > (1 << 22)) goto bad;
        t->data = malloc((size_t) n * sizeof(float));
        if (!t->data || s_read(f, t->data, (size_t) n * sizeof(float))) goto bad;
    }
    fclose(f);
    return;
bad:
    fclose(f);
    print_error("malformed fixture %s (tensor %d)\n", path, c->n);
    fail();
}

static void s_free(s_case_t *c) {
    for (int i = 0; i < c->n; i++) free(c->t[i].data);
    c->n = 0;
}

static const s_fix_t *s_get(const s_case_t *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    print_error("fixture has no tensor '%s'\n", name);
    fail();
    return NULL;
}

static dq_tensor_t *s_in(dqt_env_t *env, const s_case_t *c, const char *name) {
    const s_fix_t *t = s_get(c, name);
    return dqt_input_from(env, t->ndim, t->shape, t->data);
}

static dq_tensor_t *s_out(dqt_env_t *env, const s_case_t *c) {
    const s_fix_t *t = s_get(c, "y");
    return dqt_output(env, t->ndim, t->shape);
}

static void s_expect(dqt_env_t *env, const s_case_t *c, dq_tensor_t *y, double tol,
                     const char *what) {
    const s_fix_t *t = s_get(c, "y");
    int64_t n = dq_tensor_nelements(y);
    double *ref = malloc((size_t) n * sizeof *ref);
    assert_non_null(ref);
    for (int64_t i = 0; i < n; i++) ref[i] = t->data[i];
    double err = dqt_expect_close(env, y, ref, tol, what);
    print_message("%s: relative L2 error vs torch %.3g\n", what, err);
    free(ref);
}

/* Runs one fixture through op(env, case, y). */
typedef int (*s_run_fn)(dqt_env_t *env, const s_case_t *c, dq_tensor_t *y);

static void s_check(const char *name, s_run_fn run, double tol) {
    dqt_env_t *env = dqt_env_new(1u << 20);
    s_case_t c;
    s_load(name, &c);
    dq_tensor_t *y = s_out(env, &c);
    assert_int_equal(run(env, &c, y), 0);
    s_expect(env, &c, y, tol, name);
    s_free(&c);
    dqt_env_free(&env);
}

static int s_linear(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_linear(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "w"), s_in(e, c, "b"), y);
}
static int s_conv_s1(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_conv2d(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "w"), s_in(e, c, "b"), 1, 1,
                        y);
}
static int s_conv_s2(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_conv2d(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "w"), s_in(e, c, "b"), 2, 1,
                        y);
}
static int s_group_norm(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_group_norm(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "gamma"),
                            s_in(e, c, "beta"), 4, 1e-6f, y);
}
static int s_layer_norm(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_layer_norm(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "gamma"),
                            s_in(e, c, "beta"), 1e-5f, y);
}
static int s_softmax(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_softmax(dqt_backend(e), s_in(e, c, "x"), y);
}
static int s_attention(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_attention(dqt_backend(e), s_in(e, c, "q"), s_in(e, c, "k"), s_in(e, c, "v"), 3,
                           false, y);
}
static int s_attention_causal(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_attention(dqt_backend(e), s_in(e, c, "q"), s_in(e, c, "k"), s_in(e, c, "v"), 3,
                           true, y);
}
static int s_gelu(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_gelu(dqt_backend(e), s_in(e, c, "x"), y);
}
static int s_gelu_quick(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_gelu_quick(dqt_backend(e), s_in(e, c, "x"), y);
}
static int s_silu(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_silu(dqt_backend(e), s_in(e, c, "x"), y);
}
/* diffusers GEGLU module = its Linear projection, then our geglu on the [.., 2F] result. */
static int s_geglu(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    dq_tensor_t *x = s_in(e, c, "x"), *w = s_in(e, c, "w");
    dq_tensor_t *h = dq_arena_tensor(dqt_arena(e), DQ_DTYPE_F32, 3,
                                     (const int64_t[]){x->shape[0], x->shape[1], w->shape[0]}, "h");
    assert_non_null(h);
    if (dq_op_linear(dqt_backend(e), x, w, s_in(e, c, "b"), h) != 0) return -1;
    return dq_op_geglu(dqt_backend(e), h, y);
}
static int s_upsample(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_upsample_nearest2x(dqt_backend(e), s_in(e, c, "x"), y);
}

static void test_linear(void **s) { (void) s; s_check("linear", s_linear, TOL_GEMM); }
static void test_conv2d(void **s) {
    (void) s;
    s_check("conv2d_s1p1", s_conv_s1, TOL_GEMM);
    s_check("conv2d_s2p1", s_conv_s2, TOL_GEMM);
}
static void test_norms(void **s) {
    (void) s;
    s_check("group_norm", s_group_norm, TOL_ELEM);
    s_check("layer_norm", s_layer_norm, TOL_ELEM);
    s_check("softmax", s_softmax, TOL_ELEM);
}
static void test_attention(void **s) {
    (void) s;
    s_check("attention", s_attention, TOL_GEMM);
    s_check("attention_causal", s_attention_causal, TOL_GEMM);
}
static void test_activations(void **s) {
    (void) s;
    s_check("gelu", s_gelu, TOL_ELEM);
    s_check("gelu_quick", s_gelu_quick, TOL_ELEM);
    s_check("silu", s_silu, TOL_ELEM);
    s_check("geglu", s_geglu, TOL_GEMM);
    s_check("upsample", s_upsample, 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),    cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_norms),     cmocka_unit_test(test_attention),
        cmocka_unit_test(test_activations),
    };
    return cmocka_run_group_tests_name("ops_fixture", tests, NULL, NULL);
}
