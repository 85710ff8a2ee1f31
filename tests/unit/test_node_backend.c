/* tests/unit/test_node_backend.c: the render-backend interface with the null (simulated)
 * backend: deterministic images, step callbacks, stopping, simulated failures, and the PNG bridge
 * to common/png_out.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/backend.h"
#include "node/png.h"
#include "node/rank.h"
#include "common/proto.h"

static char s_err[512];

typedef struct {
    uint32_t steps_seen, last_step, last_total;
    uint32_t stop_after; /* 0: never */
    int images;
    bool pixels_ok;
    uint32_t w, h;
    size_t last_req;
    uint32_t last_index;
} watch_t;

static int s_step(void *user, uint32_t step, uint32_t steps) {
    watch_t *w = user;
    w->steps_seen++;
    w->last_step = step;
    w->last_total = steps;
    return w->stop_after && step >= w->stop_after;
}

static uint64_t s_seeds[2] = {42, 7};

static int s_image(void *user, size_t req, uint32_t index, const uint8_t *rgb, int width,
                   int height, uint32_t ms) {
    watch_t *w = user;
    (void) ms;
    w->images++;
    w->w = (uint32_t) width;
    w->h = (uint32_t) height;
    w->last_req = req;
    w->last_index = index;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            uint8_t want[3];
            dq_null_pixel(s_seeds[req], index, (uint32_t) x, (uint32_t) y, want);
            if (memcmp(want, rgb + ((size_t) y * (size_t) width + (size_t) x) * 3, 3) != 0)
                w->pixels_ok = false;
        }
    return 0;
}

/* Line 1 without an id, images 0 and 1 of 2; strings are literals (never cleared). */
static dq_render_req_t s_req(uint64_t seed, uint32_t w, uint32_t h, uint32_t steps) {
    dq_request_t q = {.id = (char *) "line-1",
                      .id_assigned = true,
                      .prompt = (char *) "a red fox",
                      .negative_prompt = (char *) "",
                      .seed = seed,
                      .num_inference_steps = (int) steps,
                      .guidance_scale = 7.5,
                      .width = (int) w,
                      .height = (int) h,
                      .num_images_per_prompt = 2,
                      .scheduler = DQ_SCHED_DDIM,
                      .line = 1};
    return (dq_render_req_t){.req = q, .image_first = 0, .image_count = 2};
}

static void test_null_renders_deterministic_images(void **state) {
    (void) state;
    dq_render_params_t p = {"cpu", 0, "", 0};
    dq_render_backend_t *b = dq_render_backend_new("null", &p, s_err, sizeof s_err);
    assert_non_null(b);
    assert_string_equal(dq_render_backend_name(b), "null");
    assert_int_equal(dq_render_backend_load(b, "tiny", s_err, sizeof s_err), DQ_RENDER_OK);
    dq_render_req_t reqs[2] = {s_req(42, 512, 24, 3), s_req(7, 16, 16, 2)};
    reqs[1].image_first = 5;
    reqs[1].image_count = 1;
    watch_t w = {.pixels_ok = true};
    dq_render_cb_t cb = {&w, s_step, s_image};
    assert_int_equal(dq_render_backend_render(b, reqs, 2, &cb, s_err, sizeof s_err), DQ_RENDER_OK);
    assert_int_equal(w.images, 3);
    assert_true(w.pixels_ok);
    assert_int_equal(w.steps_seen, 5);
    assert_int_equal(w.last_step, 5);
    assert_int_equal(w.last_total, 5);
    assert_int_equal(w.last_req, 1);
    assert_int_equal(w.last_index, 5);
    assert_int_equal(w.w, 16);
    dq_render_backend_destroy(&b);
    assert_null(b);
}

static void test_null_size_is_capped(void **state) {
    (void) state;
    dq_render_params_t p = {"cpu", 0, "", 0};
    dq_render_backend_t *b = dq_render_backend_new("null", &p, s_err, sizeof s_err);
    dq_render_req_t req = s_req(42, 512, 24, 1);
    watch_t w = {.pixels_ok = true};
    dq_render_cb_t cb = {&w, s_step, s_image};
    assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err), DQ_RENDER_OK);
    assert_int_equal(w.w, DQ_NULL_MAX_SIDE);
    assert_int_equal(w.h, 24);
    dq_render_backend_destroy(&b);
}

static void test_null_different_seeds_differ(void **state) {
    (void) state;
    uint8_t a[3], b[3], c[3];
    dq_null_pixel(1, 0, 3, 4, a);
    dq_null_pixel(2, 0, 3, 4, b);
    dq_null_pixel(1, 1, 3, 4, c);
    assert_memory_not_equal(a, b, 3);
    assert_memory_not_equal(a, c, 3);
}

static void test_null_stops_at_a_step(void **state) {
    (void) state;
    dq_render_params_t p = {"cpu", 1, "", 0};
    dq_render_backend_t *b = dq_render_backend_new("null", &p, s_err, sizeof s_err);
    dq_render_req_t req = s_req(42, 64, 64, 50);
    watch_t w = {.pixels_ok = true, .stop_after = 3};
    dq_render_cb_t cb = {&w, s_step, s_image};
    assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err),
                     DQ_RENDER_STOPPED);
    assert_int_equal(w.steps_seen, 3);
    assert_int_equal(w.images, 0);
    dq_render_backend_destroy(&b);
}

static void test_null_simulated_failures(void **state) {
    (void) state;
    const char *names[] = {"oom", "model", "input", "internal"};
    const int rcs[] = {DQ_RENDER_EOOM, DQ_RENDER_EMODEL, DQ_RENDER_EINPUT, DQ_RENDER_EINTERNAL};
    const int classes[] = {DQ_FAIL_OOM, DQ_FAIL_MODEL, DQ_FAIL_INPUT, DQ_FAIL_INTERNAL};
    for (int i = 0; i < 4; i++) {
        dq_render_params_t p = {"cpu", 0, names[i], 0};
        dq_render_backend_t *b = dq_render_backend_new("null", &p, s_err, sizeof s_err);
        assert_non_null(b);
        dq_render_req_t req = s_req(1, 8, 8, 1);
        watch_t w = {.pixels_ok = true};
        dq_render_cb_t cb = {&w, s_step, s_image};
        assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err), rcs[i]);
        assert_non_null(strstr(s_err, "simulated"));
        assert_int_equal(dq_rank_fail_class(rcs[i]), classes[i]);
        dq_render_backend_destroy(&b);
    }
    dq_render_params_t p = {"cpu", 0, "sometimes", 0};
    assert_null(dq_render_backend_new("null", &p, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "--null-fail"));
}

static void test_unknown_backend(void **state) {
    (void) state;
    dq_render_params_t p = {"cpu", 0, "", 0};
    assert_null(dq_render_backend_new("warp", &p, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "unknown backend 'warp' (known: engine, null)"));
    /* A device the engine cannot open fails when the model loads, as a model error naming it
     * (this test runs without a GPU; with one, tests/gpu/check.sh covers the CUDA path). */
    dq_render_params_t bad = {"tpu:0", 0, "", 0};
    dq_render_backend_t *b = dq_render_backend_new("engine", &bad, s_err, sizeof s_err);
    assert_non_null(b);
    assert_int_equal(dq_render_backend_load(b, "tiny", s_err, sizeof s_err), DQ_RENDER_EMODEL);
    assert_non_null(strstr(s_err, "device 'tpu:0'"));
    dq_render_backend_destroy(&b);
    assert_string_equal(dq_render_rc_name(DQ_RENDER_EOOM), "oom");
    assert_string_equal(dq_render_rc_name(99), "unknown");
}

static void test_png_bridge(void **state) {
    (void) state;
    dq_render_req_t req = s_req(42, 64, 64, 20);
    uint8_t rgb[8 * 8 * 3] = {0};
    uint8_t *png = NULL;
    size_t len = 0;
    assert_int_equal(
        dq_node_png_encode(&req.req, "tiny", 1, rgb, 8, 8, &png, &len, s_err, sizeof s_err), 0);
    assert_true(len > 8);
    assert_memory_equal(png, "\x89PNG", 4);
    /* The parameters text is stored uncompressed (tEXt), so it can be found in the bytes. */
    assert_non_null(memmem(png, len, "Seed: 42", 8));
    assert_non_null(memmem(png, len, "Model: tiny", 11));
    assert_non_null(memmem(png, len, "line-1", 6));
    free(png);
    /* A request with an id carries it into the image's request JSON. */
    req.req.id = (char *) "fox-01";
    req.req.id_assigned = false;
    assert_int_equal(
        dq_node_png_encode(&req.req, "tiny", 1, rgb, 8, 8, &png, &len, s_err, sizeof s_err), 0);
    assert_non_null(memmem(png, len, "\"id\":\"fox-01\"", 13));
    assert_null(memmem(png, len, "line-1", 6));
    free(png);
}

/* ---- The engine backend on the tiny fixture model (tests/fixtures/tiny-sd). */

typedef struct {
    int images;
    uint32_t index, last_step, last_total;
    uint32_t w, h;
    uint8_t *rgb; /* owned copy of the last image */
    uint32_t stop_after;
} engine_watch_t;

static int s_engine_step(void *user, uint32_t step, uint32_t steps) {
    engine_watch_t *w = user;
    w->last_step = step;
    w->last_total = steps;
    return w->stop_after && step >= w->stop_after;
}

static int s_engine_image(void *user, size_t req, uint32_t index, const uint8_t *rgb, int width,
                          int height, uint32_t ms) {
    engine_watch_t *w = user;
    (void) req;
    (void) ms;
    w->images++;
    w->index = index;
    w->w = (uint32_t) width;
    w->h = (uint32_t) height;
    free(w->rgb);
    w->rgb = malloc((size_t) width * (size_t) height * 3);
    memcpy(w->rgb, rgb, (size_t) width * (size_t) height * 3);
    return 0;
}

static void test_engine_renders_the_shards_images(void **state) {
    (void) state;
    char model[4096];
    const char *top = getenv("top_srcdir");
    snprintf(model, sizeof model, "%s/tests/fixtures/tiny-sd", top ? top : "..");
    dq_render_params_t p = {"cpu", 0, NULL, 0};
    dq_render_backend_t *b = dq_render_backend_new("engine", &p, s_err, sizeof s_err);
    assert_non_null(b);
    assert_int_equal(dq_render_backend_load(b, "/no/such/model", s_err, sizeof s_err),
                     DQ_RENDER_EMODEL);
    dq_render_req_t req = s_req(42, 64, 48, 2);
    engine_watch_t w1 = {0}, w2 = {0};
    dq_render_cb_t cb = {&w1, s_engine_step, s_engine_image};
    assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err),
                     DQ_RENDER_EMODEL); /* nothing loaded */
    assert_int_equal(dq_render_backend_load(b, model, s_err, sizeof s_err), DQ_RENDER_OK);
    /* Of a request's 2 images the shard holds only image 1. */
    req.image_first = 1;
    req.image_count = 1;
    assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err), DQ_RENDER_OK);
    assert_int_equal(w1.images, 1);
    assert_int_equal(w1.index, 1);
    assert_int_equal(w1.w, 64);
    assert_int_equal(w1.h, 48);
    assert_int_equal(w1.last_step, w1.last_total);
    /* The same request renders the same pixels. */
    cb.user = &w2;
    assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err), DQ_RENDER_OK);
    assert_memory_equal(w1.rgb, w2.rgb, 64 * 48 * 3);
    /* Stopped after its first step, no image comes. */
    engine_watch_t w3 = {.stop_after = 1};
    cb.user = &w3;
    assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err),
                     DQ_RENDER_STOPPED);
    assert_int_equal(w3.images, 0);
    /* Sizes the model cannot take are the request's fault. */
    req.req.width = 60;
    assert_int_equal(dq_render_backend_render(b, &req, 1, &cb, s_err, sizeof s_err),
                     DQ_RENDER_EINPUT);
    free(w1.rgb);
    free(w2.rgb);
    free(w3.rgb);
    dq_render_backend_destroy(&b);
}

/* The batching rule alone: whole, batchable requests up to max-batch images. */
static void test_engine_batch_rule(void **state) {
    (void) state;
    dq_render_req_t r[4] = {s_req(1, 64, 48, 2), s_req(2, 64, 48, 2), s_req(3, 64, 48, 2),
                            s_req(4, 64, 48, 2)}; /* 2 images each */
    assert_int_equal(dq_render_engine_batch_end(r, 4, 0, 0), 4); /* no limit */
    assert_int_equal(dq_render_engine_batch_end(r, 4, 0, 4), 2);
    assert_int_equal(dq_render_engine_batch_end(r, 4, 0, 5), 2); /* never half a request */
    assert_int_equal(dq_render_engine_batch_end(r, 4, 0, 6), 3);
    assert_int_equal(dq_render_engine_batch_end(r, 4, 2, 4), 4);
    assert_int_equal(dq_render_engine_batch_end(r, 4, 3, 4), 4);
    /* A request with more images than max-batch goes alone. */
    assert_int_equal(dq_render_engine_batch_end(r, 4, 0, 1), 1);
    assert_int_equal(dq_render_engine_batch_end(r, 4, 1, 1), 2);
    /* Requests that cannot share a batch end it, whatever the room. */
    r[1].req.num_inference_steps = 3;
    assert_int_equal(dq_render_engine_batch_end(r, 4, 0, 0), 1);
    assert_int_equal(dq_render_engine_batch_end(r, 4, 1, 8), 2);
    r[1].req.num_inference_steps = 2;
    r[2].req.width = 128;
    assert_int_equal(dq_render_engine_batch_end(r, 4, 0, 8), 2);
}

/* Every image of a render, in order, and the progress as reported. */
typedef struct {
    int images;
    size_t req[8];
    uint32_t index[8];
    uint8_t *rgb[8]; /* owned copies */
    uint32_t calls, last_step, last_total;
    bool backwards; /* a step below the one before, or above its total */
} batch_watch_t;

static int s_batch_step(void *user, uint32_t step, uint32_t steps) {
    batch_watch_t *w = user;
    if (step < w->last_step || step > steps) w->backwards = true;
    w->calls++;
    w->last_step = step;
    w->last_total = steps;
    return 0;
}

static int s_batch_image(void *user, size_t req, uint32_t index, const uint8_t *rgb, int width,
                         int height, uint32_t ms) {
    batch_watch_t *w = user;
    (void) ms;
    if (w->images == 8) return 1;
    size_t size = (size_t) width * (size_t) height * 3;
    w->req[w->images] = req;
    w->index[w->images] = index;
    w->rgb[w->images] = malloc(size);
    if (!w->rgb[w->images]) return 1;
    memcpy(w->rgb[w->images], rgb, size);
    w->images++;
    return 0;
}

static void s_batch_render(const char *model, uint32_t max_batch, const dq_render_req_t *reqs,
                           size_t n, batch_watch_t *w) {
    dq_render_params_t p = {"cpu", 0, NULL, max_batch};
    dq_render_backend_t *b = dq_render_backend_new("engine", &p, s_err, sizeof s_err);
    assert_non_null(b);
    assert_int_equal(dq_render_backend_load(b, model, s_err, sizeof s_err), DQ_RENDER_OK);
    dq_render_cb_t cb = {w, s_batch_step, s_batch_image};
    assert_int_equal(dq_render_backend_render(b, reqs, n, &cb, s_err, sizeof s_err),
                     DQ_RENDER_OK);
    dq_render_backend_destroy(&b);
}

/* --max-batch splits a shard's requests into several pipeline batches: each request's images
 * come once, from its own seed (the same pixels as in one big batch, up to rounding), and the
 * progress counts every batch's steps in one rising count that ends at its total. */
static void test_engine_max_batch(void **state) {
    (void) state;
    char model[4096];
    const char *top = getenv("top_srcdir");
    snprintf(model, sizeof model, "%s/tests/fixtures/tiny-sd", top ? top : "..");
    dq_render_req_t reqs[3] = {s_req(42, 64, 48, 2), s_req(7, 64, 48, 2), s_req(9, 64, 48, 2)};
    for (int i = 0; i < 3; i++)
        reqs[i].req.line = (size_t) i + 1;
    batch_watch_t split = {0}, whole = {0};
    s_batch_render(model, 4, reqs, 3, &split); /* batches of 2 requests + 1 request */
    s_batch_render(model, 0, reqs, 3, &whole); /* one batch */
    assert_int_equal(split.images, 6);
    assert_int_equal(whole.images, 6);
    assert_false(split.backwards);
    assert_false(whole.backwards);
    assert_int_equal(split.last_step, split.last_total);
    assert_int_equal(whole.last_step, whole.last_total);
    assert_int_equal(split.calls, split.last_total);
    assert_int_equal(split.last_total, 2 * whole.last_total); /* two batches, each its steps */
    int far = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(split.req[i], (size_t) i / 2);
        assert_int_equal(split.index[i], (uint32_t) i % 2);
        assert_int_equal(whole.req[i], split.req[i]);
        assert_int_equal(whole.index[i], split.index[i]);
        for (size_t k = 0; k < 64 * 48 * 3; k++)
            far += abs(split.rgb[i][k] - whole.rgb[i][k]) > 2;
    }
    assert_int_equal(far, 0);
    /* ... while different seeds give different pixels, so a mix-up would show. */
    assert_memory_not_equal(split.rgb[0], split.rgb[2], 64 * 48 * 3);
    for (int i = 0; i < 6; i++) {
        free(split.rgb[i]);
        free(whole.rgb[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_renders_deterministic_images),
        cmocka_unit_test(test_null_size_is_capped),
        cmocka_unit_test(test_null_different_seeds_differ),
        cmocka_unit_test(test_null_stops_at_a_step),
        cmocka_unit_test(test_null_simulated_failures),
        cmocka_unit_test(test_unknown_backend),
        cmocka_unit_test(test_png_bridge),
        cmocka_unit_test(test_engine_renders_the_shards_images),
        cmocka_unit_test(test_engine_batch_rule),
        cmocka_unit_test(test_engine_max_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
