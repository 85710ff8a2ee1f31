/* node/backend_null.c: the "null" render backend: simulated, no model and no engine. It makes a
 * small deterministic image per request at once (optionally sleeping per step), so the daemon's
 * flow (progress, stop, results, failures) can run and be tested before the engine exists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/backend.h"

typedef struct {
    uint32_t step_ms; /* sleep per step */
    int fail;         /* DQ_RENDER_OK, or the rc every render returns */
    char model[256];  /* what load was given, for messages */
} null_t;

/* splitmix64: a small, well-mixed hash of (seed, image). */
static uint64_t s_mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void dq_null_pixel(uint64_t seed, uint32_t image_index, uint32_t x, uint32_t y, uint8_t rgb[3]) {
    uint64_t base = s_mix(seed ^ s_mix(image_index));
    rgb[0] = (uint8_t) ((base & 0xff) + x * 4);
    rgb[1] = (uint8_t) (((base >> 8) & 0xff) + y * 4);
    rgb[2] = (uint8_t) ((base >> 16) & 0xff);
}

static void s_sleep_ms(uint32_t ms) {
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int s_load(void *ctx, const char *spec, char *err, size_t errlen) {
    null_t *self = ctx;
    (void) err;
    (void) errlen;
    snprintf(self->model, sizeof self->model, "%s", spec);
    return DQ_RENDER_OK;
}

static int s_render(void *ctx, const dq_render_req_t *reqs, size_t n, const dq_render_cb_t *cb,
                    char *err, size_t errlen) {
    null_t *self = ctx;
    if (self->fail != DQ_RENDER_OK) {
        snprintf(err, errlen, "null backend: simulated %s failure (--null-fail)",
                 dq_render_rc_name(self->fail));
        return self->fail;
    }
    uint32_t total = 0, done = 0;
    for (size_t i = 0; i < n; i++)
        total += (uint32_t) reqs[i].req.num_inference_steps;
    for (size_t i = 0; i < n; i++) {
        const dq_render_req_t *r = &reqs[i];
        uint32_t steps = (uint32_t) r->req.num_inference_steps;
        uint32_t width = (uint32_t) r->req.width, height = (uint32_t) r->req.height;
        for (uint32_t s = 0; s < steps; s++) {
            if (self->step_ms) s_sleep_ms(self->step_ms);
            if (cb->step(cb->user, ++done, total)) return DQ_RENDER_STOPPED;
        }
        int w = (int) (width < DQ_NULL_MAX_SIDE ? width : DQ_NULL_MAX_SIDE);
        int h = (int) (height < DQ_NULL_MAX_SIDE ? height : DQ_NULL_MAX_SIDE);
        uint8_t *rgb = malloc((size_t) w * (size_t) h * 3);
        if (!rgb) {
            snprintf(err, errlen, "null backend: out of memory for a %dx%d image", w, h);
            return DQ_RENDER_EOOM;
        }
        for (uint32_t k = 0; k < r->image_count; k++) {
            uint32_t index = r->image_first + k;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    dq_null_pixel(r->req.seed, index, (uint32_t) x, (uint32_t) y,
                                  rgb + ((size_t) y * (size_t) w + (size_t) x) * 3);
            if (cb->image(cb->user, i, index, rgb, w, h, self->step_ms * steps)) {
                free(rgb);
                snprintf(err, errlen, "line %llu image %u could not be delivered",
                         (unsigned long long) r->req.line, index);
                return DQ_RENDER_EINTERNAL;
            }
        }
        free(rgb);
    }
    return DQ_RENDER_OK;
}

static void s_destroy(void *ctx) {
    free(ctx);
}

static const dq_render_ops_t s_null_ops = {"null", s_load, s_render, s_destroy};

int dq_render_null_create(const dq_render_params_t *params, const dq_render_ops_t **ops, void **ctx,
                          char *err, size_t errlen) {
    int fail = DQ_RENDER_OK;
    const char *f = params->null_fail ? params->null_fail : "";
    if (*f) {
        for (int rc = DQ_RENDER_EOOM; rc < DQ_RENDER_RC_COUNT; rc++)
            if (strcmp(f, dq_render_rc_name(rc)) == 0) fail = rc;
        if (fail == DQ_RENDER_OK) {
            snprintf(err, errlen, "--null-fail: expected oom, model, input or internal, got '%s'",
                     f);
            return -1;
        }
    }
    null_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    self->step_ms = params->null_step_ms;
    self->fail = fail;
    *ops = &s_null_ops;
    *ctx = self;
    return 0;
}
