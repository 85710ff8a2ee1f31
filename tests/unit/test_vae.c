/* tests/unit/test_vae.c: the VAE decoder and the RGB8 conversion against diffusers' outputs.
 *
 * Fixtures: tests/fixtures/vae_decode_{1x8x8,2x8x8,1x6x8}.safetensors (tests/reference/fx_vae.py):
 * latents as the pipeline holds them, vae.decode(latents / 0.18215) in f32, the postprocessed
 * [0, 1] image and its RGB8 pixels. Pass: decoded relative L2 <= 1e-4 (the values reached are
 * printed); RGB8 within 1/255 on >= 99.9% of values and never more than 3/255 off (the project's
 * image rule; the counts of differing values are printed); both model layouts bit-identical; the
 * arena's peak equal to the advertised size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/image.h"
#include "kernels/safetensors.h"
#include "kernels/vae_decoder.h"

#define TOL 1e-4

static char s_path[4096];

static const char *s_src(const char *rel) {
    const char *top = getenv("top_srcdir");
    snprintf(s_path, sizeof s_path, "%s/%s", top ? top : ".", rel);
    return s_path;
}

/* One decode fixture. */
typedef struct {
    int n, h, w;              /* latents [n, 4, h, w] */
    float *latents, *decoded; /* owned: [n,4,h,w], [n,3,8h,8w] */
    float *image;             /* owned: [n, 8h, 8w, 3] */
    uint8_t *rgb8;            /* owned: [n, 8h, 8w, 3] */
} s_fixture_t;

static void *s_copy(dq_safetensors_t *st, const char *name, dq_dtype_t dtype, size_t n) {
    const dq_st_tensor_t *t = dq_safetensors_find(st, name);
    if (!t || t->dtype != dtype || t->nbytes != n * dq_dtype_size(dtype))
        fail_msg("fixture tensor %s missing or not %zu %s", name, n, dq_dtype_name(dtype));
    void *p = malloc(t->nbytes);
    assert_non_null(p);
    memcpy(p, t->data, t->nbytes);
    return p;
}

static void s_fixture_load(s_fixture_t *f, const char *stem) {
    char rel[256], err[512] = "";
    snprintf(rel, sizeof rel, "tests/fixtures/%s.safetensors", stem);
    dq_safetensors_t *st = dq_safetensors_open(s_src(rel), err, sizeof err);
    if (!st) fail_msg("%s", err);
    const dq_st_tensor_t *lat = dq_safetensors_find(st, "latents");
    assert_non_null(lat);
    assert_int_equal(lat->ndim, 4);
    f->n = (int) lat->shape[0];
    f->h = (int) lat->shape[2];
    f->w = (int) lat->shape[3];
    size_t nl = (size_t) f->n * 4 * f->h * f->w, ni = (size_t) f->n * 3 * 64 * f->h * f->w;
    f->latents = s_copy(st, "latents", DQ_DTYPE_F32, nl);
    f->decoded = s_copy(st, "decoded", DQ_DTYPE_F32, ni);
    f->image = s_copy(st, "image_f32", DQ_DTYPE_F32, ni);
    f->rgb8 = s_copy(st, "rgb8", DQ_DTYPE_U8, ni);
    dq_safetensors_destroy(&st);
}

static void s_fixture_free(s_fixture_t *f) {
    free(f->latents);
    free(f->decoded);
    free(f->image);
    free(f->rgb8);
}

static double s_rel_l2(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(got[i]));
        double d = (double) got[i] - want[i];
        num += d * d;
        den += (double) want[i] * want[i];
    }
    return sqrt(num / den);
}

static dq_model_t *s_load(bool single_file) {
    char err[512] = "", dir[4096];
    snprintf(dir, sizeof dir, "%s", s_src("tests/fixtures/tiny-sd"));
    dq_model_t *m = single_file
                        ? dq_model_load_with_configs(s_src("tests/fixtures/tiny-sd.safetensors"),
                                                     dir, err, sizeof err)
                        : dq_model_load(dir, err, sizeof err);
    if (!m) fail_msg("load: %s", err);
    return m;
}

/* Decodes f's latents; returns the image [n, 3, 8h, 8w] (malloc'd). Checks the arena's peak. */
static float *s_decode(dq_backend_t *be, dq_vae_decoder_t *dec, const s_fixture_t *f) {
    const int fac = dq_vae_decoder_factor(dec);
    assert_int_equal(fac, 8);
    const int64_t ls[4] = {f->n, 4, f->h, f->w}, is[4] = {f->n, 3, f->h * fac, f->w * fac};
    dq_arena_t *io = dq_arena_new(be, 1 << 20, 2);
    assert_non_null(io);
    dq_tensor_t *lat = dq_arena_tensor(io, DQ_DTYPE_F32, 4, ls, "latents");
    dq_tensor_t *img = dq_arena_tensor(io, DQ_DTYPE_F32, 4, is, "image");
    assert_non_null(lat);
    assert_non_null(img);
    assert_int_equal(dq_tensor_upload(be, lat, 0, f->latents, dq_tensor_nbytes(lat)), 0);
    size_t bytes = dq_vae_decoder_arena_bytes(dec, f->n, f->h, f->w);
    assert_true(bytes > 0);
    dq_arena_t *arena = dq_arena_new(be, bytes, dq_vae_decoder_arena_tensors(dec));
    assert_non_null(arena);
    assert_int_equal(dq_vae_decoder_decode(dec, arena, lat, img), 0);
    assert_int_equal(dq_arena_peak(arena), bytes);
    assert_int_equal(dq_arena_used(arena), 0);
    float *out = malloc(dq_tensor_nbytes(img));
    assert_non_null(out);
    assert_int_equal(dq_tensor_download(be, img, 0, out, dq_tensor_nbytes(img)), 0);
    /* run() on latents divided as torch divides them is the same computation */
    float *z = malloc(dq_tensor_nbytes(lat));
    assert_non_null(z);
    size_t nl = (size_t) dq_tensor_nelements(lat);
    for (size_t i = 0; i < nl; i++)
        z[i] = f->latents[i] / 0.18215f;
    assert_int_equal(dq_tensor_upload(be, lat, 0, z, dq_tensor_nbytes(lat)), 0);
    assert_int_equal(dq_vae_decoder_run(dec, arena, lat, img), 0);
    float *again = malloc(dq_tensor_nbytes(img));
    assert_non_null(again);
    assert_int_equal(dq_tensor_download(be, img, 0, again, dq_tensor_nbytes(img)), 0);
    assert_memory_equal(again, out, dq_tensor_nbytes(img));
    free(again);
    free(z);
    dq_arena_destroy(&arena);
    dq_arena_destroy(&io);
    return out;
}

/* RGB8 of got vs the fixture: counts values off by 1 and the largest difference. */
static void s_check_rgb8(const s_fixture_t *f, const float *decoded, const char *what) {
    size_t n = (size_t) f->n * 3 * 64 * f->h * f->w;
    uint8_t *rgb = malloc(n);
    float *img = malloc(n * sizeof(float));
    assert_non_null(rgb);
    assert_non_null(img);
    dq_image_to_rgb8(decoded, f->n, 3, f->h * 8, f->w * 8, rgb);
    dq_image_postprocess(decoded, f->n, 3, f->h * 8, f->w * 8, img);
    size_t off1 = 0;
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int) rgb[i] - (int) f->rgb8[i]);
        if (d > worst) worst = d;
        if (d >= 1) off1++;
    }
    double img_err = s_rel_l2(img, f->image, n);
    print_message("# %s: [0,1] image relative L2 %.3g; RGB8 %zu of %zu values differ, max %d\n",
                  what, img_err, off1, n, worst);
    assert_true(img_err <= TOL);
    assert_true(worst <= 3);
    assert_true((double) off1 <= 0.001 * (double) n);
    /* the reference's own decoded floats convert to exactly its pixels */
    dq_image_to_rgb8(f->decoded, f->n, 3, f->h * 8, f->w * 8, rgb);
    assert_memory_equal(rgb, f->rgb8, n);
    dq_image_postprocess(f->decoded, f->n, 3, f->h * 8, f->w * 8, img);
    assert_memory_equal(img, f->image, n * sizeof(float));
    free(rgb);
    free(img);
}

/* Every fixture (batch 1 and 2, square and 6x8), both layouts, f32 weights. */
static void test_decode_fixtures(void **state) {
    (void) state;
    static const char *stems[] = {"vae_decode_1x8x8", "vae_decode_2x8x8", "vae_decode_1x6x8"};
    dq_backend_t *be = dq_backend_cpu_new(0, 1);
    assert_non_null(be);
    dq_vae_decoder_t *dec[2];
    for (int layout = 0; layout < 2; layout++) {
        dq_model_t *model = s_load(layout == 1);
        char err[512] = "";
        dec[layout] = dq_vae_decoder_new(be, model, DQ_DTYPE_F32, DQ_DTYPE_F32, err, sizeof err);
        if (!dec[layout]) fail_msg("%s", err);
        dq_model_destroy(&model);
    }
    assert_int_equal(dq_vae_decoder_latent_channels(dec[0]), 4);
    assert_int_equal(dq_vae_decoder_out_channels(dec[0]), 3);
    assert_true(dq_vae_decoder_scaling_factor(dec[0]) == 0.18215);
    for (size_t s = 0; s < sizeof stems / sizeof *stems; s++) {
        s_fixture_t f;
        s_fixture_load(&f, stems[s]);
        size_t n = (size_t) f.n * 3 * 64 * f.h * f.w;
        float *out[2];
        for (int layout = 0; layout < 2; layout++) {
            out[layout] = s_decode(be, dec[layout], &f);
            double e = s_rel_l2(out[layout], f.decoded, n);
            print_message("# %s %s: decoded relative L2 %.3g\n", stems[s],
                          layout ? "single file" : "diffusers folder", e);
            assert_true(e <= TOL);
        }
        assert_memory_equal(out[0], out[1], n * sizeof(float));
        s_check_rgb8(&f, out[0], stems[s]);
        free(out[0]);
        free(out[1]);
        s_fixture_free(&f);
    }
    dq_vae_decoder_destroy(&dec[0]);
    dq_vae_decoder_destroy(&dec[1]);
    assert_null(dec[0]);
    dq_backend_destroy(&be);
}

/* Channels last (DQ_LAYOUT=nhwc, what CUDA's f16 mode runs): activations [N, H, W, C], conv
 * weights permuted at load, the attention on the activation as tokens; every fixture, F32 and
 * F16 weights, within the same bounds (the arena's peak is still what it advertises). */
static void test_decode_fixtures_nhwc(void **state) {
    (void) state;
    static const char *stems[] = {"vae_decode_1x8x8", "vae_decode_2x8x8", "vae_decode_1x6x8"};
    dq_backend_t *be = dq_backend_cpu_new(0, 1);
    assert_non_null(be);
    for (int half = 0; half < 2; half++) {
        dq_model_t *model = s_load(false);
        char err[512] = "";
        assert_int_equal(setenv("DQ_LAYOUT", "nhwc", 1), 0);
        dq_vae_decoder_t *dec = dq_vae_decoder_new(
            be, model, half ? DQ_DTYPE_F16 : DQ_DTYPE_F32, DQ_DTYPE_F32, err, sizeof err);
        assert_int_equal(unsetenv("DQ_LAYOUT"), 0);
        if (!dec) fail_msg("%s", err);
        dq_model_destroy(&model);
        for (size_t k = 0; k < sizeof stems / sizeof *stems; k++) {
            s_fixture_t f;
            s_fixture_load(&f, stems[k]);
            size_t n = (size_t) f.n * 3 * 64 * f.h * f.w;
            float *out = s_decode(be, dec, &f);
            double e = s_rel_l2(out, f.decoded, n);
            print_message("# %s NHWC, %s weights: decoded relative L2 %.3g\n", stems[k],
                          half ? "F16" : "F32", e);
            assert_true(e <= TOL);
            s_check_rgb8(&f, out, stems[k]);
            free(out);
            s_fixture_free(&f);
        }
        dq_vae_decoder_destroy(&dec);
    }
    dq_backend_destroy(&be);
}

/* Half-precision weight storage (the fixture's weights are f16-exact) decodes to the same values
 * within the bound; a batch's images equal the images decoded one at a time within it. */
static void test_f16_weights_and_batch(void **state) {
    (void) state;
    dq_backend_t *be = dq_backend_cpu_new(0, 1);
    dq_model_t *model = s_load(false);
    char err[512] = "";
    dq_vae_decoder_t *dec =
        dq_vae_decoder_new(be, model, DQ_DTYPE_F16, DQ_DTYPE_F32, err, sizeof err);
    if (!dec) fail_msg("%s", err);
    s_fixture_t f;
    s_fixture_load(&f, "vae_decode_2x8x8");
    size_t per = (size_t) 3 * 64 * f.h * f.w;
    float *out = s_decode(be, dec, &f);
    assert_true(s_rel_l2(out, f.decoded, 2 * per) <= TOL);
    s_fixture_t one = f;
    one.n = 1;
    for (int b = 0; b < 2; b++) {
        one.latents = f.latents + (size_t) b * 4 * f.h * f.w;
        float *single = s_decode(be, dec, &one);
        assert_true(s_rel_l2(single, f.decoded + b * per, per) <= TOL);
        free(single);
    }
    free(out);
    s_fixture_free(&f);
    dq_vae_decoder_destroy(&dec);
    dq_model_destroy(&model);
    dq_backend_destroy(&be);
}

/* Wrong shapes and a small arena fail cleanly, leaving the arena empty. */
static void test_rejects_bad_input(void **state) {
    (void) state;
    dq_backend_t *be = dq_backend_cpu_new(0, 1);
    dq_model_t *model = s_load(false);
    char err[512] = "";
    /* F16 or BF16 activations on the CPU backend, which takes F32 only; I32 is none at all */
    assert_null(dq_vae_decoder_new(be, model, DQ_DTYPE_F32, DQ_DTYPE_F16, err, sizeof err));
    assert_non_null(strstr(err, "F32 only"));
    assert_null(dq_vae_decoder_new(be, model, DQ_DTYPE_F32, DQ_DTYPE_BF16, err, sizeof err));
    assert_non_null(strstr(err, "activations in BF16: the cpu backend takes F32 only"));
    assert_null(dq_vae_decoder_new(be, model, DQ_DTYPE_F32, DQ_DTYPE_I32, err, sizeof err));
    assert_non_null(strstr(err, "activations must be F32, F16 or BF16, not I32"));
    dq_vae_decoder_t *dec =
        dq_vae_decoder_new(be, model, DQ_DTYPE_F32, DQ_DTYPE_F32, err, sizeof err);
    assert_non_null(dec);
    dq_arena_t *io = dq_arena_new(be, 1 << 20, 8);
    dq_tensor_t *lat = dq_arena_tensor(io, DQ_DTYPE_F32, 4, (int64_t[]){1, 4, 4, 6}, "latents");
    dq_tensor_t *lat3 = dq_arena_tensor(io, DQ_DTYPE_F32, 4, (int64_t[]){1, 3, 4, 6}, "latents3");
    dq_tensor_t *img = dq_arena_tensor(io, DQ_DTYPE_F32, 4, (int64_t[]){1, 3, 32, 48}, "image");
    dq_tensor_t *img_t = dq_arena_tensor(io, DQ_DTYPE_F32, 4, (int64_t[]){1, 3, 48, 32}, "image_t");
    assert_non_null(img_t);
    float zeros[96] = {0};
    assert_int_equal(dq_tensor_upload(be, lat, 0, zeros, sizeof zeros), 0);
    size_t bytes = dq_vae_decoder_arena_bytes(dec, 1, 4, 6);
    assert_int_equal(dq_vae_decoder_arena_bytes(dec, 0, 4, 6), 0);
    assert_int_equal(dq_vae_decoder_arena_bytes(dec, 1, 1 << 20, 6), 0);
    dq_arena_t *small = dq_arena_new(be, bytes - 64, dq_vae_decoder_arena_tensors(dec));
    assert_int_equal(dq_vae_decoder_decode(dec, small, lat, img), -1);
    assert_int_equal(dq_arena_used(small), 0);
    dq_arena_t *arena = dq_arena_new(be, bytes, dq_vae_decoder_arena_tensors(dec));
    assert_int_equal(dq_vae_decoder_decode(dec, arena, lat3, img), -1);
    assert_int_equal(dq_vae_decoder_decode(dec, arena, lat, img_t), -1);
    assert_int_equal(dq_arena_used(arena), 0);
    /* non-square 4x6 -> 32x48 works */
    assert_int_equal(dq_vae_decoder_decode(dec, arena, lat, img), 0);
    dq_arena_destroy(&small);
    dq_arena_destroy(&arena);
    dq_arena_destroy(&io);
    dq_vae_decoder_destroy(&dec);
    dq_model_destroy(&model);
    dq_backend_destroy(&be);
}

/* The RGB8 rule on chosen values: clamping, round half to even, NaN. */
static void test_rgb8_rounding(void **state) {
    (void) state;
    /* a v in [0, 1] with v * 255 == 126.5 exactly in f32; d = 2 * (v - 0.5) maps back to v */
    float v = 126.5f / 255.0f;
    for (int i = 0; i < 64 && v * 255.0f != 126.5f; i++)
        v = nextafterf(v, v * 255.0f < 126.5f ? 1.0f : 0.0f);
    assert_true(v * 255.0f == 126.5f);
    float d[7] = {0.0f, 2.0f * (v - 0.5f), -5.0f, 5.0f, NAN, -1.0f, 1.0f};
    uint8_t rgb[7];
    dq_image_to_rgb8(d, 1, 1, 1, 7, rgb);
    assert_int_equal(rgb[0], 128); /* 127.5 -> even */
    assert_int_equal(rgb[1], 126); /* 126.5 -> even */
    assert_int_equal(rgb[2], 0);
    assert_int_equal(rgb[3], 255);
    assert_int_equal(rgb[4], 0);
    assert_int_equal(rgb[5], 0);
    assert_int_equal(rgb[6], 255);
    /* NCHW -> NHWC order */
    float chw[6] = {-1, -1, 0, 0, 1, 1}; /* 3 channels of a 1x2 image */
    dq_image_to_rgb8(chw, 1, 3, 1, 2, rgb);
    static const uint8_t want[6] = {0, 128, 255, 0, 128, 255};
    assert_memory_equal(rgb, want, 6);
    float img[6];
    dq_image_postprocess(chw, 1, 3, 1, 2, img);
    assert_true(img[0] == 0.0f && img[1] == 0.5f && img[2] == 1.0f && img[5] == 1.0f);
}

int main(void) {
    dq_log_init("test_vae", DQ_LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_fixtures),
        cmocka_unit_test(test_decode_fixtures_nhwc),
        cmocka_unit_test(test_f16_weights_and_batch),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_rgb8_rounding),
    };
    return cmocka_run_group_tests_name("vae", tests, NULL, NULL);
}
