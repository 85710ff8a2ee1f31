/* tests/unit/test_pipeline.c: the whole text-to-image pipeline on the tiny model against the
 * images diffusers made (tests/fixtures/pipeline_*.json), and batching that changes no picture.
 *
 * Where it renders: env DIFFQ_TEST_DEVICE ("cpu", the default, "cuda", "cuda:N") and
 * DIFFQ_TEST_PRECISION ("f32", the default, "f16" or "bf16"); tests/gpu/check.sh sets them on a
 * GPU. f32 anywhere is held to the rule (latents within relative L2 1e-4, pixels within
 * 1/255 on 99.9% of values and never 3/255 off). f16 and bf16 (CUDA only) get the looser rules
 * below, sized by tests/gpu/f16_emulate.py. On the CPU a request alone and in a batch give the same bits; on
 * CUDA cuBLAS/cuDNN may pick other kernels for other batch sizes, so there they must agree within
 * the fixture rule of the precision instead (and the test says whether the bits matched).
 * CUDA graphs (the UNet's steps recorded and replayed) must change no bit anywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/pipeline.h"
#include "kernels/safetensors.h"

static char s_path[4096];

static const char *s_src(const char *rel) {
    const char *top = getenv("top_srcdir");
    snprintf(s_path, sizeof s_path, "%s/%s", top ? top : ".", rel);
    return s_path;
}

static dq_pipeline_t *s_pipeline;
static int s_f16;  /* DIFFQ_TEST_PRECISION=f16: the f16 rule below */
static int s_bf16; /* DIFFQ_TEST_PRECISION=bf16: the bf16 rule below */
static int s_cuda; /* not the CPU: batching is compared within tolerance, not bit for bit */

/* The f16 rule. tests/gpu/f16_emulate.py --act16 rounds diffusers' matrix operands as the f16
 * mode does and every op's output inside the UNet and the VAE decoder (their activations are
 * F16 in that mode) and finds, over every fixture: latents relative L2 at most 8.4e-3, images at
 * least 53.2 dB PSNR, mean |difference| at most 0.30/255, worst 3/255 (with F32 activations, as
 * first sized: 6.2e-3, 55.0 dB, 0.21/255, 2/255). The bounds are about 3.5 times those (PSNR:
 * 13 dB below; worst: 8 times); a wrong kernel (a missed tile, a bad layout, NaN) lands far
 * outside them, as the worst-value bound catches a small wrong region that the means would hide.
 * On the CUDA emulation the three fixtures it runs come out at 4.9e-3 to 8.5e-3 and 54.2 to
 * 55.8 dB, next to the script's 4.2e-3 to 8.1e-3 and 54.4 to 56.8 dB for them. */
#define S_F16_MAX_REL_L2 3e-2
#define S_F16_MIN_PSNR_DB 40.0
#define S_F16_MAX_MEAN_ABS 1.0
#define S_F16_MAX_WORST 24

/* The bf16 rule, sized the same way: `f16_emulate.py --act16 --bf16` (every rounding to bf16,
 * 8-bit significand) finds over every fixture latents relative L2 at most 8.5e-2, at least
 * 37.2 dB PSNR, mean |difference| at most 2.55/255, worst 18/255: about ten times f16's, as
 * bf16's precision is an eighth of f16's. The bounds are about 3.5 times those (PSNR 12 dB
 * below); a wrong kernel still lands far outside (relative L2 near 1, PSNR under 20 dB). */
#define S_BF16_MAX_REL_L2 3e-1
#define S_BF16_MIN_PSNR_DB 25.0
#define S_BF16_MAX_MEAN_ABS 9.0
#define S_BF16_MAX_WORST 64

/* The tiny model's pipeline on the test's device and precision, or NULL (reason on stderr). */
static dq_pipeline_t *s_pipeline_new(void) {
    char err[1024] = "";
    dq_pipeline_params_t params;
    dq_pipeline_params_init(&params);
    params.model_path = strdup(s_src("tests/fixtures/tiny-sd"));
    const char *dev = getenv("DIFFQ_TEST_DEVICE"), *prec = getenv("DIFFQ_TEST_PRECISION");
#ifdef DQ_TEST_EMUL_PRECISION
    /* tests/emul: the pipeline on the CUDA backend running on the CPU emulation of CUDA. */
    dev = "cuda:0";
    prec = DQ_TEST_EMUL_PRECISION;
#endif
    params.device = dev && *dev ? dev : "cpu";
    params.precision = prec && *prec ? prec : "f32";
    dq_pipeline_t *p = dq_pipeline_new(&params, err, sizeof err);
    free((char *) params.model_path);
    if (!p)
        fprintf(stderr, "pipeline (device %s, precision %s): %s\n", params.device,
                params.precision, err);
    return p;
}

static int s_setup(void **state) {
    (void) state;
    s_pipeline = s_pipeline_new();
    if (!s_pipeline) return -1;
    s_f16 = strcmp(dq_pipeline_precision(s_pipeline), "f16") == 0;
    s_bf16 = strcmp(dq_pipeline_precision(s_pipeline), "bf16") == 0;
    s_cuda = strcmp(dq_pipeline_device(s_pipeline), "cpu") != 0;
    print_message("# device %s, precision %s\n", dq_pipeline_device(s_pipeline),
                  dq_pipeline_precision(s_pipeline));
    return 0;
}

static int s_teardown(void **state) {
    (void) state;
    dq_pipeline_destroy(&s_pipeline);
    return 0;
}

/* What a render produced: every image's pixels and every request's final latents. */
typedef struct {
    uint8_t *rgb[4][4]; /* [request][image] */
    float *latents[4];  /* [request] */
    size_t latent_count[4];
    int width, height, steps;
} s_output_t;

static int s_on_step(void *ctx, int call, int total) {
    s_output_t *out = ctx;
    assert_true(call >= 1 && call <= total);
    out->steps = call;
    return 0;
}

static int s_on_image(void *ctx, int request, int image, const uint8_t *rgb, int w, int h) {
    s_output_t *out = ctx;
    out->width = w;
    out->height = h;
    out->rgb[request][image] = malloc((size_t) w * h * 3);
    memcpy(out->rgb[request][image], rgb, (size_t) w * h * 3);
    return 0;
}

static int s_on_latents(void *ctx, int request, const float *latents, size_t count) {
    s_output_t *out = ctx;
    out->latents[request] = malloc(count * sizeof(float));
    memcpy(out->latents[request], latents, count * sizeof(float));
    out->latent_count[request] = count;
    return 0;
}

static void s_output_free(s_output_t *out) {
    for (int i = 0; i < 4; i++) {
        free(out->latents[i]);
        for (int k = 0; k < 4; k++) free(out->rgb[i][k]);
    }
    memset(out, 0, sizeof *out);
}

static void s_render(const dq_request_t *reqs, int n, s_output_t *out) {
    memset(out, 0, sizeof *out);
    dq_pipeline_sink_t sink = {out, s_on_step, s_on_image, s_on_latents};
    char err[1024] = "";
    int rc = dq_pipeline_render(s_pipeline, reqs, n, &sink, err, sizeof err);
    if (rc != 0) fail_msg("render: %s", err);
}

/* A request as the fixture describes it. */
static void s_request_from_fixture(const json_t *fx, dq_request_t *req) {
    memset(req, 0, sizeof *req);
    req->prompt = (char *) json_string_value(json_object_get(fx, "prompt"));
    req->negative_prompt = (char *) json_string_value(json_object_get(fx, "negative_prompt"));
    req->seed = (uint64_t) json_integer_value(json_object_get(fx, "seed"));
    req->num_inference_steps = (int) json_integer_value(json_object_get(fx, "num_inference_steps"));
    req->guidance_scale = json_number_value(json_object_get(fx, "guidance_scale"));
    req->width = (int) json_integer_value(json_object_get(fx, "width"));
    req->height = (int) json_integer_value(json_object_get(fx, "height"));
    req->num_images_per_prompt = (int) json_integer_value(json_object_get(fx, "num_images_per_prompt"));
    int sched = dq_scheduler_parse(json_string_value(json_object_get(fx, "scheduler")));
    assert_true(sched > 0);
    req->scheduler = (dq_scheduler_t) sched;
}

/* How far one render is from another: latents and RGB8 pixels. */
typedef struct {
    double rel_l2;         /* of the latents */
    size_t over_one;       /* pixel values more than 1/255 off */
    size_t total;          /* pixel values compared */
    int worst;             /* largest |difference| in 1/255 */
    double mean_abs, psnr; /* mean |difference| in 1/255; PSNR in dB (99 when equal) */
} s_diff_t;

static s_diff_t s_compare(const float *lat, const float *ref_lat, size_t n, const uint8_t *const *rgb,
                          const uint8_t *ref_rgb, int images, size_t per_image) {
    s_diff_t d = {0};
    double num = 0, den = 0, sum_abs = 0, sum_sq = 0;
    for (size_t k = 0; k < n; k++) {
        double e = (double) lat[k] - ref_lat[k];
        num += e * e;
        den += (double) ref_lat[k] * ref_lat[k];
    }
    d.rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    for (int k = 0; k < images; k++)
        for (size_t p = 0; p < per_image; p++) {
            int e = abs((int) rgb[k][p] - (int) ref_rgb[k * per_image + p]);
            if (e > 1) d.over_one++;
            if (e > d.worst) d.worst = e;
            sum_abs += e;
            sum_sq += (double) e * e;
        }
    d.total = per_image * (size_t) images;
    d.mean_abs = sum_abs / (double) d.total;
    double mse = sum_sq / (double) d.total;
    d.psnr = mse > 0 ? 10 * log10(255.0 * 255.0 / mse) : 99.0;
    return d;
}

/* The rule of this run's precision (see the file comment, S_F16_* and S_BF16_*). */
static void s_assert_close(const char *name, const s_diff_t *d) {
    print_message("# %s: latents relative L2 %.3g; %zu of %zu values more than 1/255 off, worst "
                  "%d/255, mean %.3f/255, PSNR %.1f dB\n",
                  name, d->rel_l2, d->over_one, d->total, d->worst, d->mean_abs, d->psnr);
    if (s_f16) {
        assert_true(d->rel_l2 <= S_F16_MAX_REL_L2);
        assert_true(d->psnr >= S_F16_MIN_PSNR_DB);
        assert_true(d->mean_abs <= S_F16_MAX_MEAN_ABS);
        assert_true(d->worst <= S_F16_MAX_WORST);
    } else if (s_bf16) {
        assert_true(d->rel_l2 <= S_BF16_MAX_REL_L2);
        assert_true(d->psnr >= S_BF16_MIN_PSNR_DB);
        assert_true(d->mean_abs <= S_BF16_MAX_MEAN_ABS);
        assert_true(d->worst <= S_BF16_MAX_WORST);
    } else {
        assert_true(d->rel_l2 <= 1e-4);
        assert_true(d->over_one * 1000 <= d->total);
        assert_true(d->worst < 3);
    }
}

/* The rule for final images: within 1/255 on at least 99.9% of values, never 3/255 off;
 * and the final latents within relative L2 1e-4 of diffusers' (f16, bf16: the looser rules
 * above). */
static void s_check_fixture(const char *name) {
    char rel[256], err[1024] = "";
    snprintf(rel, sizeof rel, "tests/fixtures/%s.json", name);
    json_error_t jerr;
    json_t *fx = json_load_file(s_src(rel), 0, &jerr);
    if (!fx) fail_msg("%s: %s", rel, jerr.text);
    snprintf(rel, sizeof rel, "tests/fixtures/%s.safetensors", name);
    dq_safetensors_t *st = dq_safetensors_open(s_src(rel), err, sizeof err);
    if (!st) fail_msg("%s", err);
    const dq_st_tensor_t *want_lat = dq_safetensors_find(st, "latents");
    const dq_st_tensor_t *want_rgb = dq_safetensors_find(st, "rgb8");
    assert_non_null(want_lat);
    assert_non_null(want_rgb);

    dq_request_t req;
    s_request_from_fixture(fx, &req);
    s_output_t out;
    s_render(&req, 1, &out);
    assert_int_equal(out.width, req.width);
    assert_int_equal(out.height, req.height);

    size_t n = out.latent_count[0];
    assert_int_equal(n * sizeof(float), want_lat->nbytes);
    size_t per_image = (size_t) req.width * req.height * 3;
    assert_int_equal(per_image * (size_t) req.num_images_per_prompt, want_rgb->nbytes);
    s_diff_t d = s_compare(out.latents[0], want_lat->data, n, (const uint8_t *const *) out.rgb[0],
                           want_rgb->data, req.num_images_per_prompt, per_image);
    s_assert_close(name, &d);
    s_output_free(&out);
    dq_safetensors_destroy(&st);
    json_decref(fx);
}

/* On the CUDA emulation (tests/emul/) every product is summed in double on one core: it runs
 * the fixtures that differ for the networks (guidance, a non-square size, two images in a batch,
 * batching, stopping) and leaves out the others (S_FULL_ONLY), whose differences are in the
 * host's samplers. */
#ifdef DQ_TEST_EMUL_PRECISION
#define S_FULL_ONLY_FN __attribute__((unused))
#define S_FULL_ONLY(test)
#else
#define S_FULL_ONLY_FN
#define S_FULL_ONLY(test) cmocka_unit_test(test),
#endif

static void test_pndm(void **state) { (void) state; s_check_fixture("pipeline_pndm_astronaut"); }
S_FULL_ONLY_FN static void test_ddim_no_cfg(void **state) {
    (void) state;
    s_check_fixture("pipeline_ddim_nocfg");
}
S_FULL_ONLY_FN static void test_euler(void **state) {
    (void) state;
    s_check_fixture("pipeline_euler_city");
}
static void test_euler_a_non_square(void **state) {
    (void) state;
    s_check_fixture("pipeline_euler_a_castle_48x64");
}
S_FULL_ONLY_FN static void test_lms_non_square(void **state) {
    (void) state;
    s_check_fixture("pipeline_lms_portrait_64x48");
}
S_FULL_ONLY_FN static void test_dpmpp_2m(void **state) {
    (void) state;
    s_check_fixture("pipeline_dpmpp_2m_city");
}
static void test_dpmpp_2m_karras_two_images(void **state) {
    (void) state;
    s_check_fixture("pipeline_dpmpp_2m_karras_two");
}

/* A request alone and the same request in a batch with others give the same bits. */
static void test_batching_changes_nothing(void **state) {
    (void) state;
    dq_request_t a = {.prompt = "a lighthouse at dusk", .negative_prompt = "", .seed = 7,
                      .num_inference_steps = 3, .guidance_scale = 7.5, .width = 64, .height = 48,
                      .num_images_per_prompt = 1, .scheduler = DQ_SCHED_EULER_A};
    dq_request_t batch[3] = {a, a, a};
    batch[0].prompt = "a forest";
    batch[0].seed = 99;
    batch[0].num_images_per_prompt = 2;
    batch[2].prompt = "the sea";
    batch[2].guidance_scale = 1.0; /* no guidance: mixed in the same batch */
    s_output_t alone, together;
    s_render(&a, 1, &alone);
    s_render(batch, 3, &together);
    assert_int_equal(alone.latent_count[0], together.latent_count[1]);
    size_t n = alone.latent_count[0], px = (size_t) 64 * 48 * 3;
    int same = !memcmp(alone.latents[0], together.latents[1], n * sizeof(float)) &&
               !memcmp(alone.rgb[0][0], together.rgb[1][0], px);
    print_message("# batching: alone and in a batch are %s\n",
                  same ? "bit-identical" : "different bits");
    if (s_cuda) {
        s_diff_t d = s_compare(together.latents[1], alone.latents[0], n,
                               (const uint8_t *const *) together.rgb[1], alone.rgb[0][0], 1, px);
        s_assert_close("batching", &d);
    } else {
        assert_true(same);
    }
    /* The two images of one request differ (each has its own noise). */
    assert_memory_not_equal(together.rgb[0][0], together.rgb[0][1], (size_t) 64 * 48 * 3);
    s_output_free(&alone);
    s_output_free(&together);
}

/* CUDA graphs change no bit (docs/cuda.md): a request rendered twice by the shared pipeline (the
 * second render replays, with that render's own tensors, the graph the UNet recorded) and once
 * by a pipeline made with DQ_CUDA_GRAPHS=0 (op by op) gives the same latents and pixels. On CUDA
 * the UNet must have used graphs; the CPU has none and says so. */
static void test_graphs_change_nothing(void **state) {
    (void) state;
    const int steps = 4;
    dq_request_t a = {.prompt = "a red bicycle", .negative_prompt = "", .seed = 5,
                      .num_inference_steps = steps, .guidance_scale = 7.5, .width = 56,
                      .height = 64, .num_images_per_prompt = 1, .scheduler = DQ_SCHED_EULER};
    dq_step_graph_stats_t before, after;
    dq_pipeline_graph_stats(s_pipeline, &before);
    s_output_t first, second, eager;
    s_render(&a, 1, &first);
    s_render(&a, 1, &second);
    dq_pipeline_graph_stats(s_pipeline, &after);
    if (s_cuda) {
        if (!after.enabled) fail_msg("CUDA graphs are off: %s", after.why_off);
        /* 2 x steps UNet calls over the two renders (Euler: one per step, CFG inside the
         * batch): at most the first call of the new size eager, every other one a launch. */
        print_message("# graphs: %ld eager, %ld recorded, %ld launched over two renders\n",
                      after.eager - before.eager, after.captures - before.captures,
                      after.launches - before.launches);
        assert_true(after.eager - before.eager <= 1);
        assert_true(after.launches - before.launches >= 2 * steps - 1);
    } else {
        assert_false(after.enabled);
        assert_non_null(strstr(after.why_off, "cpu backend has no graphs"));
        assert_int_equal(after.eager - before.eager, 2 * steps);
    }
    assert_int_equal(setenv("DQ_CUDA_GRAPHS", "0", 1), 0);
    dq_pipeline_t *saved = s_pipeline;
    s_pipeline = s_pipeline_new();
    assert_int_equal(unsetenv("DQ_CUDA_GRAPHS"), 0);
    assert_non_null(s_pipeline);
    s_render(&a, 1, &eager);
    dq_pipeline_graph_stats(s_pipeline, &after);
    assert_false(after.enabled);
    if (s_cuda) assert_string_equal(after.why_off, "DQ_CUDA_GRAPHS=0");
    dq_pipeline_destroy(&s_pipeline);
    s_pipeline = saved;
    size_t n = first.latent_count[0], px = (size_t) a.width * a.height * 3;
    assert_int_equal(n, eager.latent_count[0]);
    assert_memory_equal(first.latents[0], second.latents[0], n * sizeof(float));
    assert_memory_equal(first.latents[0], eager.latents[0], n * sizeof(float));
    assert_memory_equal(first.rgb[0][0], second.rgb[0][0], px);
    assert_memory_equal(first.rgb[0][0], eager.rgb[0][0], px);
    s_output_free(&first);
    s_output_free(&second);
    s_output_free(&eager);
}

static int s_stop_at_two(void *ctx, int call, int total) {
    (void) total;
    *(int *) ctx = call;
    return call == 2;
}

static void test_stop_from_callback(void **state) {
    (void) state;
    dq_request_t a = {.prompt = "x", .negative_prompt = "", .seed = 1, .num_inference_steps = 5,
                      .guidance_scale = 7.5, .width = 64, .height = 64,
                      .num_images_per_prompt = 1, .scheduler = DQ_SCHED_MODEL};
    int last = 0;
    dq_pipeline_sink_t sink = {&last, s_stop_at_two, NULL, NULL};
    char err[256] = "";
    assert_int_equal(dq_pipeline_render(s_pipeline, &a, 1, &sink, err, sizeof err), DQ_PIPELINE_STOPPED);
    assert_int_equal(last, 2);
    a.width = 60;
    assert_int_equal(dq_pipeline_render(s_pipeline, &a, 1, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "multiples of 8"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pndm),
        S_FULL_ONLY(test_ddim_no_cfg)
        S_FULL_ONLY(test_euler)
        cmocka_unit_test(test_euler_a_non_square),
        S_FULL_ONLY(test_lms_non_square)
        S_FULL_ONLY(test_dpmpp_2m)
        cmocka_unit_test(test_dpmpp_2m_karras_two_images),
        cmocka_unit_test(test_batching_changes_nothing),
        cmocka_unit_test(test_graphs_change_nothing),
        cmocka_unit_test(test_stop_from_callback),
    };
    return cmocka_run_group_tests_name("pipeline", tests, s_setup, s_teardown);
}
