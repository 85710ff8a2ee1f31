/* node/backend_engine.c: the "engine" render backend: diffq's own Stable Diffusion 1.x pipeline
 * (kernels/pipeline.h). A shard's requests are rendered in batches of batchable requests of at
 * most --max-batch images (whole requests); the pipeline always renders a request's whole
 * num_images_per_prompt (one generator draws the whole batch's noise, as in diffusers), and
 * images outside the shard's range are not delivered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/pipeline.h"
#include "node/backend.h"

typedef struct {
    dq_pipeline_t *pipeline; /* owned; NULL before a model loads */
    char device[64];         /* "cpu" or "cuda:N": where the pipeline runs */
    uint32_t max_batch;      /* most images per pipeline batch; 0: no limit */
} engine_t;

/* One batch being rendered: maps the pipeline's callbacks onto the backend's. */
typedef struct {
    const dq_render_req_t *reqs; /* borrowed; the batch's first request in the shard */
    size_t first;                /* index of reqs[0] in the shard */
    const dq_render_cb_t *cb;
    uint32_t done_before; /* steps of earlier batches */
    uint32_t total;       /* steps of the shard, corrected as batches report theirs */
    uint32_t estimated;   /* this batch's share of total before it reported */
    int64_t started_ms;
    int images; /* delivered in this batch */
    int failed; /* the image callback failed */
} batch_t;

static int64_t s_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_on_step(void *ctx, int call, int total) {
    batch_t *b = ctx;
    if (b->estimated != (uint32_t) total) { /* the sampler's own count of UNet calls */
        b->total = b->total - b->estimated + (uint32_t) total;
        b->estimated = (uint32_t) total;
    }
    return b->cb->step(b->cb->user, b->done_before + (uint32_t) call, b->total);
}

static int s_on_image(void *ctx, int request, int image, const uint8_t *rgb, int width,
                      int height) {
    batch_t *b = ctx;
    const dq_render_req_t *r = &b->reqs[request];
    uint32_t index = (uint32_t) image;
    if (index < r->image_first || index >= r->image_first + r->image_count) return 0;
    b->images++;
    uint32_t ms = (uint32_t) ((s_ms() - b->started_ms) / b->images);
    if (b->cb->image(b->cb->user, b->first + (size_t) request, index, rgb, width, height, ms)) {
        b->failed = 1;
        return 1;
    }
    return 0;
}

size_t dq_render_engine_batch_end(const dq_render_req_t *reqs, size_t n, size_t first,
                                  uint32_t max_images) {
    uint64_t images = (uint64_t) reqs[first].req.num_images_per_prompt;
    size_t k = first + 1;
    for (; k < n && dq_pipeline_batchable(&reqs[first].req, &reqs[k].req); k++) {
        images += (uint64_t) reqs[k].req.num_images_per_prompt;
        if (max_images && images > max_images) break;
    }
    return k;
}

static int s_load(void *ctx, const char *spec, char *err, size_t errlen) {
    engine_t *self = ctx;
    dq_pipeline_destroy(&self->pipeline);
    dq_pipeline_params_t params;
    dq_pipeline_params_init(&params);
    params.model_path = spec;
    params.device = self->device;
    self->pipeline = dq_pipeline_new(&params, err, errlen);
    if (self->pipeline) return DQ_RENDER_OK;
    return strstr(err, "out of memory") ? DQ_RENDER_EOOM : DQ_RENDER_EMODEL;
}

static int s_render(void *ctx, const dq_render_req_t *reqs, size_t n, const dq_render_cb_t *cb,
                    char *err, size_t errlen) {
    engine_t *self = ctx;
    if (!self->pipeline) {
        snprintf(err, errlen, "engine backend: no model loaded");
        return DQ_RENDER_EMODEL;
    }
    dq_request_t *job = calloc(n ? n : 1, sizeof *job);
    if (!job) {
        snprintf(err, errlen, "engine backend: out of memory");
        return DQ_RENDER_EOOM;
    }
    int factor = dq_pipeline_latent_factor(self->pipeline);
    int rc = DQ_RENDER_OK;
    for (size_t i = 0; i < n && rc == DQ_RENDER_OK; i++) {
        const dq_request_t *q = &reqs[i].req;
        job[i] = *q; /* a shallow copy the pipeline reads; never cleared here */
        if (q->width % factor || q->height % factor) {
            snprintf(err, errlen, "line %zu: %dx%d is not a multiple of %d pixels", q->line,
                     q->width, q->height, factor);
            rc = DQ_RENDER_EINPUT;
        }
    }
    /* One batch runs its (shared) step count once; a sampler that calls the UNet another number
     * of times corrects its batch's share when it reports (s_on_step). */
    uint32_t total = 0;
    for (size_t i = 0; i < n; i = dq_render_engine_batch_end(reqs, n, i, self->max_batch))
        total += (uint32_t) reqs[i].req.num_inference_steps;
    batch_t b = {.cb = cb, .total = total};
    for (size_t i = 0; i < n && rc == DQ_RENDER_OK;) {
        size_t k = dq_render_engine_batch_end(reqs, n, i, self->max_batch);
        b.reqs = reqs + i;
        b.first = i;
        b.estimated = (uint32_t) reqs[i].req.num_inference_steps;
        b.started_ms = s_ms();
        b.images = 0;
        dq_pipeline_sink_t sink = {&b, s_on_step, s_on_image, NULL};
        int r = dq_pipeline_render(self->pipeline, job + i, (int) (k - i), &sink, err, errlen);
        if (r == DQ_PIPELINE_STOPPED)
            rc = b.failed ? DQ_RENDER_EINTERNAL : DQ_RENDER_STOPPED;
        else if (r != 0)
            rc = strstr(err, "out of memory") ? DQ_RENDER_EOOM : DQ_RENDER_EINTERNAL;
        if (b.failed) snprintf(err, errlen, "engine backend: an image could not be delivered");
        b.done_before += b.estimated;
        i = k;
    }
    free(job);
    return rc;
}

static void s_destroy(void *ctx) {
    engine_t *self = ctx;
    if (!self) return;
    dq_pipeline_destroy(&self->pipeline);
    free(self);
}

static const dq_render_ops_t s_engine_ops = {"engine", s_load, s_render, s_destroy};

int dq_render_engine_create(const dq_render_params_t *params, const dq_render_ops_t **ops,
                            void **ctx, char *err, size_t errlen) {
    engine_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* The device is checked when the model loads (dq_pipeline_new names a bad one). */
    snprintf(self->device, sizeof self->device, "%s", params->device ? params->device : "cpu");
    self->max_batch = params->max_batch;
    *ops = &s_engine_ops;
    *ctx = self;
    return 0;
}
