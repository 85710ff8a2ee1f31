/* tests/unit/test_ops_fixture.c: CPU ops against outputs of PyTorch/diffusers modules.
 *
 * The fixtures (tests/fixtures/ops/<case>.safetensors, with <case>.json holding the op's
 * parameters; made by tests/reference/ops_fixture.py) hold random inputs, the module's weights
 * and the module's output "y" computed by torch 2.x in f32 on the CPU.
 * Pass: relative L2 error <= 1e-5 for sgemm-based ops (linear, conv2d, attention) and <= 2e-6
 * for the others, all outputs finite, guards intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
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
    json_t *params; /* owned: the "params" object of <case>.json */
} s_case_t;

static void s_path(char *buf, size_t len, const char *name, const char *ext) {
    const char *top = getenv("top_srcdir");
    snprintf(buf, len, "%s/tests/fixtures/ops/%s.%s", top ? top : ".", name, ext);
}

/* Reads a whole file; fails the test naming it. */
static unsigned char *s_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open fixture %s\n", path);
        fail();
    }
    unsigned char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t) n)) &&
        fread(buf, 1, (size_t) n, f) != (size_t) n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) {
        print_error("cannot read fixture %s\n", path);
        fail();
    }
    *len = (size_t) n;
    return buf;
}

/* Loads <name>.safetensors (F32 tensors only) and the params of <name>.json. A malformed field
 * fails the test with the file and the tensor named. */
static void s_load(const char *name, s_case_t *c) {
    char path[1024];
    memset(c, 0, sizeof *c);
    s_path(path, sizeof path, name, "json");
    json_error_t jerr;
    json_t *meta = json_load_file(path, 0, &jerr);
    if (!meta || !json_is_object(json_object_get(meta, "params"))) {
        print_error("%s:%d: bad fixture metadata: %s\n", path, jerr.line, jerr.text);
        fail();
    }
    c->params = json_incref(json_object_get(meta, "params"));
    json_decref(meta);

    s_path(path, sizeof path, name, "safetensors");
    size_t len;
    unsigned char *file = s_slurp(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0 && len >= 8; i--) hlen = hlen << 8 | file[i];
    if (len < 8 || hlen > len - 8) goto bad;
    json_t *header = json_loadb((const char *) file + 8, (size_t) hlen, 0, &jerr);
    if (!json_is_object(header)) goto bad;
    const unsigned char *data = file + 8 + hlen;
    size_t data_len = len - 8 - (size_t) hlen;
    const char *key;
    json_t *info;
    json_object_foreach(header, key, info) {
        if (strcmp(key, "__metadata__") == 0) continue;
        if (c->n >= MAX_FIX || strlen(key) >= sizeof c->t[0].name) goto bad_header;
        s_fix_t *t = &c->t[c->n++];
        snprintf(t->name, sizeof t->name, "%s", key);
        json_t *shape = json_object_get(info, "shape");
        json_t *offs = json_object_get(info, "data_offsets");
        if (!json_is_string(json_object_get(info, "dtype")) ||
            strcmp(json_string_value(json_object_get(info, "dtype")), "F32") != 0 ||
            !json_is_array(shape) || json_array_size(shape) < 1 ||
            json_array_size(shape) > DQ_TENSOR_MAX_DIMS || !json_is_array(offs) ||
            json_array_size(offs) != 2)
            goto bad_header;
        t->ndim = (int) json_array_size(shape);
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->shape[d] = json_integer_value(json_array_get(shape, (size_t) d));
            if (t->shape[d] < 1 || t->shape[d] > (1 << 20)) goto bad_header;
            n *= t->shape[d];
        }
        json_int_t b = json_integer_value(json_array_get(offs, 0));
        json_int_t e = json_integer_value(json_array_get(offs, 1));
        if (b < 0 || e < b || (size_t) e > data_len || (e - b) != n * (json_int_t) sizeof(float))
            goto bad_header;
        t->data = malloc((size_t) n * sizeof(float));
        assert_non_null(t->data);
        memcpy(t->data, data + b, (size_t) n * sizeof(float)); /* little-endian host assumed */
    }
    json_decref(header);
    free(file);
    return;
bad_header:
    json_decref(header);
bad:
    free(file);
    print_error("malformed fixture %s (tensor %d)\n", path, c->n);
    fail();
}

static double s_param(const s_case_t *c, const char *key) {
    json_t *v = json_object_get(c->params, key);
    if (!json_is_number(v) && !json_is_boolean(v)) {
        print_error("fixture params have no number '%s'\n", key);
        fail();
    }
    return json_is_boolean(v) ? (double) json_is_true(v) : json_number_value(v);
}

static void s_free(s_case_t *c) {
    for (int i = 0; i < c->n; i++) free(c->t[i].data);
    c->n = 0;
    json_decref(c->params);
    c->params = NULL;
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
static int s_conv2d(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_conv2d(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "w"), s_in(e, c, "b"),
                        (int) s_param(c, "stride"), (int) s_param(c, "padding"), y);
}
static int s_group_norm(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_group_norm(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "gamma"),
                            s_in(e, c, "beta"), (int) s_param(c, "groups"),
                            (float) s_param(c, "eps"), y);
}
static int s_layer_norm(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_layer_norm(dqt_backend(e), s_in(e, c, "x"), s_in(e, c, "gamma"),
                            s_in(e, c, "beta"), (float) s_param(c, "eps"), y);
}
static int s_softmax(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_softmax(dqt_backend(e), s_in(e, c, "x"), y);
}
static int s_attention(dqt_env_t *e, const s_case_t *c, dq_tensor_t *y) {
    return dq_op_attention(dqt_backend(e), s_in(e, c, "q"), s_in(e, c, "k"), s_in(e, c, "v"),
                           (int) s_param(c, "heads"), s_param(c, "causal") != 0.0, y);
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
    s_check("conv2d_s1p1", s_conv2d, TOL_GEMM);
    s_check("conv2d_s2p1", s_conv2d, TOL_GEMM);
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
    s_check("attention_causal", s_attention, TOL_GEMM);
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
