/* kernels/pipeline.h: text to image, as diffusers' StableDiffusionPipeline: tokenizer, CLIP text
 * encoder, the sampler loop over the UNet with classifier-free guidance, VAE decoder, RGB8.
 * Load once, render many: this is the API `diffq render` and the node's ranks call. */
#ifndef DQ_PIPELINE_H
#define DQ_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/job.h"
#include "kernels/step_graph.h"

typedef struct dq_pipeline dq_pipeline_t;

typedef struct {
    const char *model_path; /* borrowed: a diffusers folder or a single-file .safetensors */
    const char *config_dir; /* borrowed: for a single file, the configs and tokenizer of this
                               diffusers folder (diffusers' from_single_file(config=DIR)); NULL:
                               SD 1.x defaults and the built-in CLIP vocabulary */
    int threads;            /* CPU threads; 0 keeps what the environment says */
    const char *device;     /* borrowed: "cpu" (or NULL), "cuda" (device 0) or "cuda:N" */
    const char *precision;  /* borrowed: "f32", "f16" or "bf16" (NULL: f32 on the CPU, f16 on
                               CUDA). f16 (bf16) keeps the matrices and the UNet's and VAE's
                               activations in f16 (bf16) and multiplies on tensor cores with f32
                               accumulation; the CPU backend computes f32 only */
} dq_pipeline_params_t;

/* Defaults: no model, no config folder, threads 0, the CPU, its default precision. */
void dq_pipeline_params_init(dq_pipeline_params_t *params);

/* Loads the model and builds every network on the device's backend. Returns NULL with err set
 * when the device or precision is not one this build offers, the model cannot be loaded (the
 * message names the file and tensor) or memory runs out. */
dq_pipeline_t *dq_pipeline_new(const dq_pipeline_params_t *params, char *err, size_t errlen);

/* Frees everything. Idempotent; nulls *self_p. */
void dq_pipeline_destroy(dq_pipeline_t **self_p);

/* "cpu" or "cuda:N", and "f32" or "f16": what the pipeline runs on (borrowed). */
const char *dq_pipeline_device(const dq_pipeline_t *self);
const char *dq_pipeline_precision(const dq_pipeline_t *self);

/* Whether the UNet's steps ran as CUDA graphs so far (counters since the pipeline was made, or
 * why graphs are off: the CPU backend, DQ_CUDA_GRAPHS=0, a failed capture). See docs/cuda.md. */
void dq_pipeline_graph_stats(const dq_pipeline_t *self, dq_step_graph_stats_t *out);

/* "nhwc" or "nchw": the UNet's memory layout (dq_backend_use_nhwc; the VAE's is the same). */
const char *dq_pipeline_layout(const dq_pipeline_t *self);

/* The model's name for PNG metadata: the folder's or file's base name (borrowed). */
const char *dq_pipeline_model_name(const dq_pipeline_t *self);

/* The scheduler a request renders with: its own, or for DQ_SCHED_MODEL the model's (from its
 * scheduler_config.json). Returns -1 when the model's scheduler is not one the engine implements. */
int dq_pipeline_scheduler(const dq_pipeline_t *self, const dq_request_t *req);

/* Pixels per latent position (8 for SD 1.x); width and height must be multiples of it. */
int dq_pipeline_latent_factor(const dq_pipeline_t *self);

/* Where a render reports. Either callback may be NULL. A non-zero return from one stops the render
 * at once (cancel, a fenced attempt); dq_pipeline_render then returns DQ_PIPELINE_STOPPED. */
typedef struct {
    void *ctx; /* borrowed: handed to the callbacks */
    /* After each UNet evaluation: call (1-based) of total. */
    int (*on_step)(void *ctx, int call, int total);
    /* Each image as soon as it is decoded: request (index into the batch), image (0-based within
     * the request), RGB8 pixels [height][width][3] (borrowed for the call). */
    int (*on_image)(void *ctx, int request, int image, const uint8_t *rgb, int width, int height);
    /* Before decoding: the request's final latents [images, 4, h, w] (borrowed for the call), as
     * diffusers returns them with output_type="latent". For tests and tools. */
    int (*on_latents)(void *ctx, int request, const float *latents, size_t count);
} dq_pipeline_sink_t;

enum { DQ_PIPELINE_STOPPED = 1 };

/* True when a and b can share a batch: same size, step count and scheduler. */
int dq_pipeline_batchable(const dq_request_t *a, const dq_request_t *b);

/* Renders n requests (all batchable with reqs[0]) as one batch: every image of every request
 * goes through the UNet together, conditional and unconditional rows in one forward pass.
 * Each request's noise comes from its own generator seeded with its seed, so a request gives the
 * same image alone or in any batch. Returns 0, DQ_PIPELINE_STOPPED, or -1 with err set (bad
 * request, out of memory, a backend failure). */
int dq_pipeline_render(dq_pipeline_t *self, const dq_request_t *reqs, int n,
                       const dq_pipeline_sink_t *sink, char *err, size_t errlen);

#endif
