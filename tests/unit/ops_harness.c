/* tests/unit/ops_harness.c: random tensors, guarded outputs and error norms for op tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/backend_cpu.h"
#include "kernels/dtype.h"
#include "tests/unit/ops_harness.h"

/* A value no op produces by accident: guards must still hold it afterwards. */
#define DQT_SENTINEL 1234.5678f
#define DQT_MAX_TRACKED 256

struct dqt_env {
    dq_backend_t *be;
    dq_arena_t *arena;
    uint64_t rng;
    dq_tensor_t *guarded[DQT_MAX_TRACKED]; /* raw [n + 2*DQT_GUARD] tensors of outputs */
    int n_guarded;
    void *host[DQT_MAX_TRACKED]; /* owned: arrays from dqt_host */
    int n_host;
};

dqt_env_t *dqt_env_new(size_t workspace_bytes) {
    dqt_env_t *env = calloc(1, sizeof *env);
    assert_non_null(env);
    env->be = dq_backend_cpu_new(workspace_bytes, 0);
    assert_non_null(env->be);
    env->arena = dq_arena_new(env->be, (size_t) 32 << 20, 1024);
    assert_non_null(env->arena);
    env->rng = 0x9e3779b97f4a7c15ull;
    return env;
}

void dqt_env_free(dqt_env_t **env_p) {
    dqt_env_t *env = *env_p;
    if (!env) return;
    dqt_check_guards(env);
    for (int i = 0; i < env->n_host; i++) free(env->host[i]);
    dq_arena_destroy(&env->arena);
    dq_backend_destroy(&env->be);
    free(env);
    *env_p = NULL;
}

dq_backend_t *dqt_backend(dqt_env_t *env) { return env->be; }
dq_arena_t *dqt_arena(dqt_env_t *env) { return env->arena; }

/* xorshift64*: reproducible across platforms, unlike rand(). */
static float s_uniform(dqt_env_t *env, float lo, float hi) {
    env->rng ^= env->rng >> 12;
    env->rng ^= env->rng << 25;
    env->rng ^= env->rng >> 27;
    uint64_t r = env->rng * 0x2545f4914f6cdd1dull;
    return lo + (hi - lo) * (float) ((double) (r >> 40) / (double) (1ull << 24));
}

static void *s_track(dqt_env_t *env, void *p) {
    assert_non_null(p);
    assert_true(env->n_host < DQT_MAX_TRACKED);
    env->host[env->n_host++] = p;
    return p;
}

dq_tensor_t *dqt_input(dqt_env_t *env, int ndim, const int64_t *shape, float lo, float hi) {
    dq_tensor_t *t = dq_arena_tensor(env->arena, DQ_DTYPE_F32, ndim, shape, "input");
    assert_non_null(t);
    int64_t n = dq_tensor_nelements(t);
    float *h = malloc((size_t) n * sizeof *h);
    assert_non_null(h);
    for (int64_t i = 0; i < n; i++) h[i] = s_uniform(env, lo, hi);
    assert_int_equal(dq_tensor_upload(env->be, t, 0, h, (size_t) n * sizeof *h), 0);
    free(h);
    return t;
}

dq_tensor_t *dqt_input_from(dqt_env_t *env, int ndim, const int64_t *shape, const float *data) {
    dq_tensor_t *t = dq_arena_tensor(env->arena, DQ_DTYPE_F32, ndim, shape, "input");
    assert_non_null(t);
    assert_int_equal(dq_tensor_upload(env->be, t, 0, data, dq_tensor_nbytes(t)), 0);
    return t;
}

dq_tensor_t *dqt_weight(dqt_env_t *env, dq_dtype_t dtype, int ndim, const int64_t *shape,
                        float scale) {
    dq_tensor_t *t = dq_arena_tensor(env->arena, dtype, ndim, shape, "weight");
    assert_non_null(t);
    int64_t n = dq_tensor_nelements(t);
    size_t esz = dq_dtype_size(dtype);
    unsigned char *h = malloc((size_t) n * esz);
    assert_non_null(h);
    for (int64_t i = 0; i < n; i++) {
        float f = s_uniform(env, -scale, scale);
        uint16_t v16 = dtype == DQ_DTYPE_F16 ? dq_f32_to_f16(f) : dq_f32_to_bf16(f);
        memcpy(h + (size_t) i * esz, dtype == DQ_DTYPE_F32 ? (void *) &f : (void *) &v16, esz);
    }
    assert_int_equal(dq_tensor_upload(env->be, t, 0, h, (size_t) n * esz), 0);
    free(h);
    return t;
}

dq_tensor_t *dqt_output(dqt_env_t *env, int ndim, const int64_t *shape) {
    dq_tensor_t probe;
    assert_int_equal(dq_tensor_init(&probe, DQ_DTYPE_F32, ndim, shape, NULL, NULL, "out"), 0);
    int64_t n = dq_tensor_nelements(&probe), total = n + 2 * DQT_GUARD;
    dq_tensor_t *raw = dq_arena_tensor(env->arena, DQ_DTYPE_F32, 1, &total, "guarded");
    assert_non_null(raw);
    float *h = malloc((size_t) total * sizeof *h);
    assert_non_null(h);
    for (int64_t i = 0; i < total; i++) h[i] = i < DQT_GUARD || i >= DQT_GUARD + n ? DQT_SENTINEL
                                                                                  : NAN;
    assert_int_equal(dq_tensor_upload(env->be, raw, 0, h, (size_t) total * sizeof *h), 0);
    free(h);
    assert_true(env->n_guarded < DQT_MAX_TRACKED);
    env->guarded[env->n_guarded++] = raw;
    /* The output proper starts DQT_GUARD floats (64 bytes: alignment kept) into raw. */
    probe.data = (float *) raw->data + DQT_GUARD;
    probe.buffer = raw->buffer;
    dq_tensor_t *t = dq_arena_view(env->arena, &probe);
    assert_non_null(t);
    return t;
}

float *dqt_host(dqt_env_t *env, const dq_tensor_t *t) {
    int64_t n = dq_tensor_nelements(t);
    size_t bytes = dq_tensor_nbytes(t);
    void *raw = malloc(bytes);
    assert_non_null(raw);
    assert_int_equal(dq_tensor_download(env->be, t, 0, raw, bytes), 0);
    float *f = s_track(env, malloc((size_t) n * sizeof *f));
    assert_int_equal(dq_convert_to_f32(f, raw, t->dtype, (size_t) n), 0);
    free(raw);
    return f;
}

void dqt_check_guards(dqt_env_t *env) {
    for (int g = 0; g < env->n_guarded; g++) {
        dq_tensor_t *raw = env->guarded[g];
        int64_t total = raw->shape[0];
        float *h = malloc((size_t) total * sizeof *h);
        assert_non_null(h);
        assert_int_equal(dq_tensor_download(env->be, raw, 0, h, (size_t) total * sizeof *h), 0);
        for (int64_t i = 0; i < total; i++) {
            if (i >= DQT_GUARD && i < total - DQT_GUARD) continue;
            if (h[i] != DQT_SENTINEL) {
                print_error("output %d: guard float %lld overwritten with %g\n", g,
                            (long long) (i < DQT_GUARD ? i - DQT_GUARD : i - (total - DQT_GUARD)),
                            (double) h[i]);
                free(h);
                fail();
            }
        }
        free(h);
    }
}

double dqt_expect_close(dqt_env_t *env, const dq_tensor_t *t, const double *ref, double tol,
                        const char *what) {
    int64_t n = dq_tensor_nelements(t);
    const float *got = dqt_host(env, t);
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            print_error("%s: element %lld is %g (ref %g)\n", what, (long long) i, (double) got[i],
                        ref[i]);
            fail();
        }
        double d = got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    double err = sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
    if (!(err <= tol)) {
        print_error("%s: relative L2 error %.3g > tolerance %.3g over %lld elements\n", what, err,
                    tol, (long long) n);
        fail();
    }
    dqt_check_guards(env);
    return err;
}
