/* tests/unit/test_pipeline.c: the whole text-to-image pipeline on the tiny model against the
 * images diffusers made (tests/fixtures/pipeline_*.json), and batching that changes no picture. */
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

static int s_setup(void **state) {
    (void) state;
    char err[1024] = "";
    dq_pipeline_params_t params;
    dq_pipeline_params_init(&params);
    params.model_path = strdup(s_src("tests/fixtures/tiny-sd"));
    s_pipeline = dq_pipeline_new(&params, err, sizeof err);
    free((char *) params.model_path);
    if (!s_pipeline) fprintf(stderr, "pipeline: %s\n", err);
    return s_pipeline ? 0 : -1;
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

/* The rule for final images: within 1/255 on at least 99.9% of values, never 3/255 off;
 * and the final latents within relative L2 1e-4 of diffusers'. */
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
    const float *ref = want_lat->data;
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        double d = (double) out.latents[0][k] - ref[k];
        num += d * d;
        den += (double) ref[k] * ref[k];
    }
    double rel_l2 = sqrt(num / den);
    print_message("# %s: latents relative L2 %.3g\n", name, rel_l2);
    assert_true(rel_l2 <= 1e-4);

    size_t per_image = (size_t) req.width * req.height * 3, off_by_one = 0, worst = 0;
    const uint8_t *want = want_rgb->data;
    for (int k = 0; k < req.num_images_per_prompt; k++)
        for (size_t p = 0; p < per_image; p++) {
            int d = abs((int) out.rgb[0][k][p] - (int) want[k * per_image + p]);
            if (d > 1) off_by_one++;
            if ((size_t) d > worst) worst = (size_t) d;
        }
    size_t total = per_image * (size_t) req.num_images_per_prompt;
    print_message("# %s: %zu of %zu values more than 1/255 off, worst %zu/255\n", name, off_by_one,
                  total, worst);
    assert_true(off_by_one * 1000 <= total);
    assert_true(worst < 3);
    s_output_free(&out);
    dq_safetensors_destroy(&st);
    json_decref(fx);
}

static void test_pndm(void **state) { (void) state; s_check_fixture("pipeline_pndm_astronaut"); }
static void test_ddim_no_cfg(void **state) { (void) state; s_check_fixture("pipeline_ddim_nocfg"); }
static void test_euler(void **state) { (void) state; s_check_fixture("pipeline_euler_city"); }
static void test_euler_a_non_square(void **state) {
    (void) state;
    s_check_fixture("pipeline_euler_a_castle_48x64");
}
static void test_lms_non_square(void **state) {
    (void) state;
    s_check_fixture("pipeline_lms_portrait_64x48");
}
static void test_dpmpp_2m(void **state) { (void) state; s_check_fixture("pipeline_dpmpp_2m_city"); }
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
    assert_memory_equal(alone.latents[0], together.latents[1], alone.latent_count[0] * sizeof(float));
    assert_memory_equal(alone.rgb[0][0], together.rgb[1][0], (size_t) 64 * 48 * 3);
    /* The two images of one request differ (each has its own noise). */
    assert_memory_not_equal(together.rgb[0][0], together.rgb[0][1], (size_t) 64 * 48 * 3);
    s_output_free(&alone);
    s_output_free(&together);
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
        cmocka_unit_test(test_ddim_no_cfg),
        cmocka_unit_test(test_euler),
        cmocka_unit_test(test_euler_a_non_square),
        cmocka_unit_test(test_lms_non_square),
        cmocka_unit_test(test_dpmpp_2m),
        cmocka_unit_test(test_dpmpp_2m_karras_two_images),
        cmocka_unit_test(test_batching_changes_nothing),
        cmocka_unit_test(test_stop_from_callback),
    };
    return cmocka_run_group_tests_name("pipeline", tests, s_setup, s_teardown);
}
