/* node/backend.h: the render-backend interface a rank calls: load a model once, render a batch of
 * requests into RGB8 images, reporting each denoising step and asking at each step whether to stop.
 * Backends: "engine" (diffq's pipeline, node/backend_engine.c) and "null" (simulated,
 * node/backend_null.c). */
#ifndef DQ_NODE_BACKEND_H
#define DQ_NODE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/job.h"

/* One request of a batch, as the backend sees it: the job file's request (common/job.h; the rank
 * makes it from ASSIGN's wire form, already checked) and which of its images this shard renders.
 * Backends only read it; whoever filled it clears it. */
typedef struct {
    dq_request_t req;     /* the request: prompt, seed, size, steps, scheduler, line, id */
    uint32_t image_first; /* render images image_first .. image_first+image_count-1 */
    uint32_t image_count;
} dq_render_req_t;

/* Results of load and render. Failures map onto the wire's failure classes (proto.h). */
typedef enum {
    DQ_RENDER_OK,
    DQ_RENDER_STOPPED,   /* the stop check asked to stop; no more images will come */
    DQ_RENDER_EOOM,      /* out of device or host memory */
    DQ_RENDER_EMODEL,    /* the model is missing or cannot be loaded */
    DQ_RENDER_EINPUT,    /* the request cannot be rendered as asked */
    DQ_RENDER_EINTERNAL, /* anything else (bug, device fault, a callback failed) */
    DQ_RENDER_RC_COUNT
} dq_render_rc_t;

/* Called by the backend while rendering. `user` is dq_render_cb_t.user. */
typedef struct {
    void *user;
    /* After each denoising step: `step` of `steps`, counted over the whole render call. Returns
     * non-zero when the render must stop now (the backend then returns DQ_RENDER_STOPPED). */
    int (*step)(void *user, uint32_t step, uint32_t steps);
    /* Each finished image, as soon as it is decoded: image `image_index` of request `req`
     * (index into the batch), width x height RGB8, rows top down, no padding; rgb is borrowed
     * for the call. `elapsed_ms` is its render time. Returns non-zero on failure (the backend
     * then returns DQ_RENDER_EINTERNAL). */
    int (*image)(void *user, size_t req, uint32_t image_index, const uint8_t *rgb, int width,
                 int height, uint32_t elapsed_ms);
} dq_render_cb_t;

/* Options a backend is created with (from the node's command line). */
typedef struct {
    const char *device;    /* borrowed; "cpu" or "cuda:N" */
    uint32_t null_step_ms; /* null backend: sleep per step, so tests can watch progress */
    const char *null_fail; /* null backend: "" or a class (oom, model, input, internal) that
                              every render fails with, so tests can see failures reported */
    uint32_t max_batch;    /* engine: most images in one pipeline batch (diffq-node --max-batch);
                              0: no limit */
} dq_render_params_t;

typedef struct dq_render_backend_t dq_render_backend_t;

/* The operations a backend provides; ctx is its own state. */
typedef struct {
    const char *name; /* "null" */
    /* Loads (or switches to) the model named by spec (a path or a name). Returns 0 or a
     * dq_render_rc_t with a message in err. */
    int (*load)(void *ctx, const char *spec, char *err, size_t errlen);
    /* Renders every image of reqs[0..n) in order, calling cb. Returns DQ_RENDER_OK when every
     * image was delivered, else a dq_render_rc_t with a message in err. */
    int (*render)(void *ctx, const dq_render_req_t *reqs, size_t n, const dq_render_cb_t *cb,
                  char *err, size_t errlen);
    void (*destroy)(void *ctx);
} dq_render_ops_t;

/* Backend names the node accepts, comma-separated, for messages ("engine, null"). */
const char *dq_render_backend_names(void);
/* Creates the backend called name. Returns NULL with a message in err for an unknown name, a bad
 * parameter or no memory. */
dq_render_backend_t *dq_render_backend_new(const char *name, const dq_render_params_t *params,
                                           char *err, size_t errlen);
void dq_render_backend_destroy(dq_render_backend_t **self_p);
const char *dq_render_backend_name(const dq_render_backend_t *self);
/* Forward to the backend's ops. */
int dq_render_backend_load(dq_render_backend_t *self, const char *spec, char *err, size_t errlen);
int dq_render_backend_render(dq_render_backend_t *self, const dq_render_req_t *reqs, size_t n,
                             const dq_render_cb_t *cb, char *err, size_t errlen);
/* Name of a dq_render_rc_t ("oom"); "unknown" when out of range. */
const char *dq_render_rc_name(int rc);

/* ---- The engine backend: kernels/pipeline.h on the rank's device ("cpu" or "cuda:N", at the
 * pipeline's default precision for it). Creates its ops and context (*ctx); the model loads
 * with the first load call. Returns 0, or -1 with a message in err. */
int dq_render_engine_create(const dq_render_params_t *params, const dq_render_ops_t **ops,
                            void **ctx, char *err, size_t errlen);

/* The engine's batching rule: the end (exclusive) of the pipeline batch that starts at
 * reqs[first] of reqs[0..n): the requests that follow it while they are batchable with it (same
 * size, steps and scheduler: dq_pipeline_batchable) and their images (num_images_per_prompt,
 * whole requests only) stay within max_images (0: no limit). The first request is always taken,
 * even one with more images than max_images, since the pipeline renders a request's images
 * together. Returns first+1..n (first < n). */
size_t dq_render_engine_batch_end(const dq_render_req_t *reqs, size_t n, size_t first,
                                  uint32_t max_images);

/* ---- The null backend: simulated rendering, no model, no engine. It exists so the daemon and
 * its tests run before the engine does; every image it makes is labelled as coming from it. */

/* Side of a null image: the request's size capped at this, in pixels (keeps PNGs tiny). */
#define DQ_NULL_MAX_SIDE 64

/* Creates the null backend's ops and context (*ctx). Returns 0, or -1 with a message in err. */
int dq_render_null_create(const dq_render_params_t *params, const dq_render_ops_t **ops, void **ctx,
                          char *err, size_t errlen);

/* The null backend's pixel (x, y) of image `image_index` of a request with `seed`, into rgb[3]:
 * a colour drawn from (seed, image_index) plus a gradient, so tests can check which image they
 * got. */
void dq_null_pixel(uint64_t seed, uint32_t image_index, uint32_t x, uint32_t y, uint8_t rgb[3]);

#endif
