/* tests/unit/test_unet.c: the UNet against diffusers' outputs (tests/fixtures/unet_*), with the
 * tiny model loaded from its diffusers folder and from its single-file checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/arena.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/safetensors.h"
#include "kernels/unet.h"
#include "kernels/unet_blocks.h"

/* f32 against the reference's f32: the engine and PyTorch sum in different orders. */
#define TOL_REL_L2 1e-4

static char s_path[4096];

static const char *s_src(const char *rel) {
    const char *top = getenv("top_srcdir");
    snprintf(s_path, sizeof s_path, "%s/%s", top ? top : ".", rel);
    return s_path;
}

/* One unet_* fixture: inputs and expected outputs as host f32. */
typedef struct {
    int64_t n, h, w, l, d, nt;
    float *sample, *ctx, *noise_pred, *time_proj;
    float timesteps[8];
} s_fix_t;

static float *s_f32(dq_safetensors_t *st, const char *name, int64_t *shape, int ndim) {
    const dq_st_tensor_t *t = dq_safetensors_find(st, name);
    assert_non_null(t);
    assert_int_equal(t->dtype, DQ_DTYPE_F32);
    assert_int_equal(t->ndim, ndim);
    if (shape)
        for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    float *p = malloc(t->nbytes);
    assert_non_null(p);
    memcpy(p, t->data, t->nbytes);
    return p;
}

static void s_fix_load(const char *stem, s_fix_t *f) {
    char rel[128], err[512] = "";
    snprintf(rel, sizeof rel, "tests/fixtures/%s.safetensors", stem);
    dq_safetensors_t *st = dq_safetensors_open(s_src(rel), err, sizeof err);
    if (!st) fail_msg("%s", err);
    int64_t s[5];
    f->sample = s_f32(st, "sample", s, 4);
    f->n = s[0], f->h = s[2], f->w = s[3];
    f->ctx = s_f32(st, "encoder_hidden_states", s, 3);
    f->l = s[1], f->d = s[2];
    f->noise_pred = s_f32(st, "noise_pred", s, 5);
    f->nt = s[0];
    assert_true(f->nt <= 8);
    f->time_proj = s_f32(st, "time_proj", NULL, 2);
    const dq_st_tensor_t *ts = dq_safetensors_find(st, "timesteps");
    assert_non_null(ts);
    assert_int_equal(ts->dtype, DQ_DTYPE_I64);
    for (int64_t i = 0; i < f->nt; i++) {
        int64_t v;
        memcpy(&v, (const char *) ts->data + i * 8, 8);
        f->timesteps[i] = (float) v;
    }
    dq_safetensors_destroy(&st);
}

static void s_fix_free(s_fix_t *f) {
    free(f->sample);
    free(f->ctx);
    free(f->noise_pred);
    free(f->time_proj);
}

static double s_rel_l2(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double) got[i] - want[i];
        num += d * d;
        den += (double) want[i] * want[i];
    }
    return sqrt(num / den);
}

static dq_model_t *s_model(int single_file) {
    char err[512] = "";
    dq_model_t *m;
    if (single_file) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", s_src("tests/fixtures/tiny-sd"));
        m = dq_model_load_with_configs(s_src("tests/fixtures/tiny-sd.safetensors"), dir, err,
                                       sizeof err);
    } else {
        m = dq_model_load(s_src("tests/fixtures/tiny-sd"), err, sizeof err);
    }
    if (!m) fail_msg("load: %s", err);
    return m;
}

/* I/O tensors of a forward in one arena: sample, context and out, uploaded from host arrays. */
typedef struct {
    dq_arena_t *a;
    dq_tensor_t *sample, *ctx, *out;
} s_io_t;

static void s_io_new(s_io_t *io, dq_backend_t *be, int64_t n, int64_t h, int64_t w, int64_t l,
                     int64_t d) {
    io->a = dq_arena_new(be, (size_t) (n * (8 * h * w + l * d)) * 4 + 4096, 8);
    assert_non_null(io->a);
    io->sample = dq_arena_tensor(io->a, DQ_DTYPE_F32, 4, (int64_t[]){n, 4, h, w}, "sample");
    io->ctx = dq_arena_tensor(io->a, DQ_DTYPE_F32, 3, (int64_t[]){n, l, d}, "context");
    io->out = dq_arena_tensor(io->a, DQ_DTYPE_F32, 4, (int64_t[]){n, 4, h, w}, "out");
    assert_non_null(io->out);
}

/* Every timestep of a fixture through one UNet: relative L2 of noise_pred under TOL_REL_L2. */
static void s_check_fixture(dq_backend_t *be, dq_unet_t *u, const char *stem, const char *layout) {
    s_fix_t f;
    s_fix_load(stem, &f);
    s_io_t io;
    s_io_new(&io, be, f.n, f.h, f.w, f.l, f.d);
    size_t ns = (size_t) (f.n * 4 * f.h * f.w);
    assert_int_equal(dq_tensor_upload(be, io.sample, 0, f.sample, ns * 4), 0);
    assert_int_equal(dq_tensor_upload(be, io.ctx, 0, f.ctx, (size_t) (f.n * f.l * f.d) * 4), 0);
    float *got = malloc(ns * 4);
    for (int64_t t = 0; t < f.nt; t++) {
        char err[512] = "";
        if (dq_unet_forward(u, io.sample, &f.timesteps[t], 1, io.ctx, io.out, err, sizeof err))
            fail_msg("%s", err);
        assert_int_equal(dq_tensor_download(be, io.out, 0, got, ns * 4), 0);
        double e = s_rel_l2(got, f.noise_pred + t * (int64_t) ns, ns);
        printf("# %s (%s) t=%g: relative L2 %.3g\n", stem, layout, f.timesteps[t], e);
        assert_true(e <= TOL_REL_L2);
    }
    free(got);
    dq_arena_destroy(&io.a);
    s_fix_free(&f);
}

static void s_check_layout(int single_file, bool linear_proj, dq_dtype_t matrix_dtype,
                           bool nhwc) {
    dq_model_t *m = s_model(single_file);
    /* The channels-last network (what CUDA's f16 mode runs) on the CPU's channels-last ops. */
    if (nhwc) assert_int_equal(setenv("DQ_LAYOUT", "nhwc", 1), 0);
    /* SD 2.x's use_linear_projection: tokens first, then proj_in as a Linear with the same
     * [C, C] matrix. A 1x1 conv then a transpose is the same map, so the fixtures still hold. */
    m->cfg.unet.use_linear_projection = linear_proj;
    dq_backend_t *be = dq_backend_cpu_new(0, 0);
    assert_non_null(be);
    char err[512] = "";
    dq_unet_t *u = dq_unet_new_dtype(be, m, matrix_dtype, DQ_DTYPE_F32, err, sizeof err);
    if (nhwc) assert_int_equal(unsetenv("DQ_LAYOUT"), 0);
    if (!u) fail_msg("%s", err);
    dq_model_destroy(&m);
    const char *lay = single_file ? "single file" : "folder";
    if (linear_proj) lay = "folder, linear projections";
    if (matrix_dtype == DQ_DTYPE_F16) lay = "folder, f16 matrices";
    char label[64];
    snprintf(label, sizeof label, "%s%s", lay, nhwc ? ", NHWC" : "");
    lay = label;
    s_check_fixture(be, u, "unet_2x8x8", lay);
    s_check_fixture(be, u, "unet_2x6x8", lay);
    s_check_fixture(be, u, "unet_2x5x7", lay); /* odd sides: upsample to the skip's size */
    dq_unet_destroy(&u);
    assert_null(u);
    dq_unet_destroy(&u);
    dq_backend_destroy(&be);
}

static void test_folder(void **state) {
    (void) state;
    s_check_layout(0, false, DQ_DTYPE_F32, false);
}

static void test_single_file(void **state) {
    (void) state;
    s_check_layout(1, false, DQ_DTYPE_F32, false);
}

static void test_linear_projection(void **state) {
    (void) state;
    s_check_layout(0, true, DQ_DTYPE_F32, false);
}

/* Matrices kept in F16 (the fixture's weights are F16 values, so storage is exact and only the
 * ops' conversion path differs). */
static void test_f16_matrices(void **state) {
    (void) state;
    s_check_layout(0, false, DQ_DTYPE_F16, false);
}

/* Channels last (DQ_LAYOUT=nhwc): activations [N, H, W, C], conv weights permuted at load, the
 * transformers' tokens the activation itself; with conv and linear projections and F16
 * matrices, against the same fixtures. */
static void test_nhwc(void **state) {
    (void) state;
    s_check_layout(0, false, DQ_DTYPE_F32, true);
    s_check_layout(0, true, DQ_DTYPE_F32, true);
    s_check_layout(0, false, DQ_DTYPE_F16, true);
}

/* The sinusoidal embedding equals diffusers' time_proj (float32 the same way). */
static void test_time_proj(void **state) {
    (void) state;
    const char *stems[] = {"unet_2x8x8", "unet_2x6x8", "unet_2x5x7"};
    for (size_t k = 0; k < 3; k++) {
        s_fix_t f;
        s_fix_load(stems[k], &f);
        float got[32];
        for (int64_t t = 0; t < f.nt; t++) {
            dq_unet_time_proj(&f.timesteps[t], 1, 32, true, 0, got);
            double maxd = 0;
            for (int i = 0; i < 32; i++) {
                double d = fabs((double) got[i] - f.time_proj[t * 32 + i]);
                if (d > maxd) maxd = d;
            }
            printf("# time_proj t=%g: max abs diff %.3g\n", f.timesteps[t], maxd);
            /* sin/cos of the same float argument: a few ulp of values in [-1, 1]. */
            assert_true(maxd <= 1e-6);
        }
        s_fix_free(&f);
    }
}

/* A batch of 4 with a timestep per item (two CFG pairs at different t) gives each item the
 * fixture's result for its own t; a second call of the same size reuses the cut arena and
 * returns identical numbers. */
static void test_batch_per_item_timesteps(void **state) {
    (void) state;
    s_fix_t f;
    s_fix_load("unet_2x8x8", &f);
    assert_true(f.nt >= 2 && f.n == 2);
    dq_model_t *m = s_model(0);
    dq_backend_t *be = dq_backend_cpu_new(0, 0);
    char err[512] = "";
    dq_unet_t *u = dq_unet_new(be, m, err, sizeof err);
    if (!u) fail_msg("%s", err);
    dq_model_destroy(&m);
    const int64_t nb = 4;
    const size_t item = (size_t) (4 * f.h * f.w), citem = (size_t) (f.l * f.d);
    s_io_t io;
    s_io_new(&io, be, nb, f.h, f.w, f.l, f.d);
    float ts[4] = {f.timesteps[0], f.timesteps[0], f.timesteps[1], f.timesteps[1]};
    for (int b = 0; b < nb; b++) {
        assert_int_equal(dq_tensor_upload(be, io.sample, b * item * 4, f.sample + (b % 2) * item,
                                          item * 4), 0);
        assert_int_equal(dq_tensor_upload(be, io.ctx, b * citem * 4, f.ctx + (b % 2) * citem,
                                          citem * 4), 0);
    }
    float *got = malloc(nb * item * 4), *again = malloc(nb * item * 4);
    if (dq_unet_forward(u, io.sample, ts, 4, io.ctx, io.out, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(dq_tensor_download(be, io.out, 0, got, nb * item * 4), 0);
    for (int b = 0; b < nb; b++) {
        const float *want = f.noise_pred + ((b / 2) * 2 + (b % 2)) * item;
        double e = s_rel_l2(got + b * item, want, item);
        printf("# batch 4, item %d (t=%g): relative L2 %.3g\n", b, ts[b], e);
        assert_true(e <= TOL_REL_L2);
    }
    size_t arena = dq_unet_arena_bytes(u);
    assert_true(arena > 0);
    if (dq_unet_forward(u, io.sample, ts, 4, io.ctx, io.out, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(dq_tensor_download(be, io.out, 0, again, nb * item * 4), 0);
    assert_memory_equal(got, again, nb * item * 4);
    assert_int_equal(dq_unet_arena_bytes(u), arena);
    printf("# arena for [4, 4, %lld, %lld]: %zu bytes\n", (long long) f.h, (long long) f.w, arena);
    free(got);
    free(again);
    dq_arena_destroy(&io.a);
    dq_unet_destroy(&u);
    dq_backend_destroy(&be);
    s_fix_free(&f);
}

/* Bad arguments are errors with a message, not crashes. */
static void test_bad_arguments(void **state) {
    (void) state;
    dq_model_t *m = s_model(0);
    dq_backend_t *be = dq_backend_cpu_new(1 << 20, 1);
    char err[512] = "";
    dq_unet_t *u = dq_unet_new(be, m, err, sizeof err);
    assert_non_null(u);
    s_io_t io;
    s_io_new(&io, be, 2, 8, 8, 77, 32);
    float t = 10;
    /* n_timesteps neither 1 nor N */
    assert_int_equal(dq_unet_forward(u, io.sample, &t, 3, io.ctx, io.out, err, sizeof err), -1);
    assert_non_null(strstr(err, "timesteps"));
    /* context of the wrong width */
    dq_tensor_t ctx2;
    assert_int_equal(dq_tensor_reshape(&ctx2, io.ctx, 3, (int64_t[]){2, 154, 16}), 0);
    err[0] = '\0';
    assert_int_equal(dq_unet_forward(u, io.sample, &t, 1, &ctx2, io.out, err, sizeof err), -1);
    assert_non_null(strstr(err, "context"));
    /* out aliasing sample */
    assert_int_equal(dq_unet_forward(u, io.sample, &t, 1, io.ctx, io.sample, err, sizeof err),
                     -1);
    dq_arena_destroy(&io.a);
    dq_unet_destroy(&u);
    /* F16 activations on the CPU backend, which takes F32 only */
    err[0] = '\0';
    assert_null(dq_unet_new_dtype(be, m, DQ_DTYPE_F32, DQ_DTYPE_F16, err, sizeof err));
    assert_non_null(strstr(err, "F32 only"));
    /* another block type in the config */
    snprintf(m->cfg.unet.down_block_types[1], DQ_CONFIG_STR, "AttnDownBlock2D");
    err[0] = '\0';
    assert_null(dq_unet_new(be, m, err, sizeof err));
    assert_non_null(strstr(err, "AttnDownBlock2D"));
    dq_model_destroy(&m);
    dq_backend_destroy(&be);
}

/* The FLOP count equals what torch.utils.flop_counter.FlopCounterMode counts for diffusers'
 * UNet2DConditionModel (convolutions, matmuls, SDPA) with the same config and input sizes
 * (context length 77); numbers from diffusers 0.42.1 / torch 2.15 on the meta device. */
static void test_flops(void **state) {
    (void) state;
    static const struct {
        const char *preset; /* "sd15", or "tiny": tests/fixtures/tiny-sd's config */
        int n, h, w;
        double flops;
    } cases[] = {
        {"sd15", 1, 64, 64, 803273441280.0}, {"sd15", 2, 32, 32, 360212889600.0},
        {"sd15", 2, 5, 7, 22262978560.0},    {"tiny", 1, 64, 64, 14950641664.0},
        {"tiny", 2, 32, 32, 3351732224.0},   {"tiny", 2, 5, 7, 83125248.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dq_model_configs_t cfg;
        if (!strcmp(cases[i].preset, "sd15")) {
            assert_int_equal(dq_model_preset("sd15", &cfg), 0);
        } else {
            dq_model_t *m = s_model(0);
            cfg = m->cfg;
            dq_model_destroy(&m);
        }
        double f = dq_unet_flops(&cfg.unet, cases[i].n, cases[i].h, cases[i].w, 77);
        printf("# %s UNet, %dx4x%dx%d: %.0f FLOP (torch counts %.0f)\n", cases[i].preset,
               cases[i].n, cases[i].h, cases[i].w, f, cases[i].flops);
        assert_true(fabs(f - cases[i].flops) <= 1e-12 * cases[i].flops);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_proj),
        cmocka_unit_test(test_folder),
        cmocka_unit_test(test_single_file),
        cmocka_unit_test(test_linear_projection),
        cmocka_unit_test(test_f16_matrices),
        cmocka_unit_test(test_nhwc),
        cmocka_unit_test(test_batch_per_item_timesteps),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
