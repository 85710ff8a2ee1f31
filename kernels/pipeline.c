/* kernels/pipeline.c: text to image, as diffusers' StableDiffusionPipeline.__call__. */
#include "config.h"

#include "kernels/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/arena.h"
#include "kernels/clip_text.h"
#include "kernels/cpu/backend_cpu.h"
#ifdef DQ_HAVE_CUDA
#include "kernels/cuda/backend_cuda.h"
#endif
#include "kernels/image.h"
#include "kernels/model_files.h"
#include "kernels/rng.h"
#include "kernels/sched/sampler.h"
#include "kernels/tokenizer.h"
#include "kernels/unet.h"
#include "kernels/vae_decoder.h"

struct dq_pipeline {
    dq_backend_t *be;              /* owned */
    dq_tokenizer_t *tokenizer;     /* owned */
    dq_clip_text_t *text_encoder;  /* owned */
    dq_unet_t *unet;               /* owned */
    dq_vae_decoder_t *vae;         /* owned */
    dq_scheduler_config_t sched;   /* the model's scheduler_config.json */
    int latent_channels;           /* 4 for SD 1.x */
    char model_name[256];
    char device[16];               /* "cpu" or "cuda:N" */
    char precision[8];             /* "f32", "f16" or "bf16" */
    dq_dtype_t act;                /* the UNet's and VAE's activations: F16 in the f16 mode on a
                                      backend that takes them, else F32 */
};

/* Per-request state during a render. */
typedef struct {
    const dq_request_t *req; /* borrowed */
    dq_sampler_t *sampler;   /* owned */
    dq_rng_t *rng;           /* owned: seeded with the request's seed; also the ancestral noise */
    float *latents;          /* owned: [images, C, h, w] */
    size_t first_image;      /* index of its first image in the batch */
    int cfg;                 /* guidance_scale > 1: diffusers' do_classifier_free_guidance */
} s_item_t;

void dq_pipeline_params_init(dq_pipeline_params_t *params) { memset(params, 0, sizeof *params); }

/* Parses "cpu", "cuda" or "cuda:N" into -1 (the CPU) or a CUDA device index. */
static int s_device_index(const char *device, int *index, char *err, size_t errlen) {
    *index = -1;
    if (!device || strcmp(device, "cpu") == 0) return 0;
    if (strcmp(device, "cuda") == 0) {
        *index = 0;
        return 0;
    }
    if (strncmp(device, "cuda:", 5) == 0 && device[5] >= '0' && device[5] <= '9') {
        char *end;
        errno = 0;
        long v = strtol(device + 5, &end, 10);
        if (!*end && !errno && v < 1024) {
            *index = (int) v;
            return 0;
        }
    }
    snprintf(err, errlen, "device '%s': expected cpu, cuda or cuda:N", device);
    return -1;
}

/* Creates the backend the params ask for and says which dtype its matrices are kept in. */
static int s_backend_new(dq_pipeline_t *self, const dq_pipeline_params_t *params,
                         dq_dtype_t *matrices, char *err, size_t errlen) {
    int device;
    if (s_device_index(params->device, &device, err, errlen) < 0) return -1;
    const char *prec = params->precision ? params->precision : device < 0 ? "f32" : "f16";
    if (strcmp(prec, "f32") != 0 && strcmp(prec, "f16") != 0 && strcmp(prec, "bf16") != 0) {
        snprintf(err, errlen, "precision '%s': expected f32, f16 or bf16", prec);
        return -1;
    }
    snprintf(self->precision, sizeof self->precision, "%s", prec);
    *matrices = strcmp(prec, "f16") == 0    ? DQ_DTYPE_F16
                : strcmp(prec, "bf16") == 0 ? DQ_DTYPE_BF16
                                            : DQ_DTYPE_F32;
    if (device < 0) {
        if (*matrices != DQ_DTYPE_F32) {
            snprintf(err, errlen, "precision %s needs a CUDA device; the CPU backend computes f32",
                     prec);
            return -1;
        }
        snprintf(self->device, sizeof self->device, "cpu");
        self->be = dq_backend_cpu_new(0, params->threads);
        if (!self->be) snprintf(err, errlen, "out of memory creating the CPU backend");
        return self->be ? 0 : -1;
    }
#ifdef DQ_HAVE_CUDA
    snprintf(self->device, sizeof self->device, "cuda:%d", device);
    /* f16 and bf16 share the backend's tensor-core mode; the activations' dtype differs. */
    self->be = dq_backend_cuda_new(device, 0,
                                   *matrices == DQ_DTYPE_F32 ? DQ_CUDA_PRECISION_F32
                                                             : DQ_CUDA_PRECISION_F16,
                                   err, errlen);
    return self->be ? 0 : -1;
#else
    snprintf(err, errlen, "device '%s': this diffq was built without the CUDA backend "
                          "(configure --with-cuda)", params->device);
    return -1;
#endif
}

dq_pipeline_t *dq_pipeline_new(const dq_pipeline_params_t *params, char *err, size_t errlen) {
    if (!params->model_path) {
        snprintf(err, errlen, "no model given");
        return NULL;
    }
    dq_pipeline_t *self = calloc(1, sizeof *self);
    dq_model_t *model = NULL;
    if (!self) goto oom;
    dq_dtype_t matrices = DQ_DTYPE_F32;
    if (s_backend_new(self, params, &matrices, err, errlen) < 0) goto fail;
    model = dq_model_load_with_configs(params->model_path, params->config_dir, err, errlen);
    if (!model) goto fail;
    /* The tokenizer of a folder model is its tokenizer/; a single file uses the config folder's,
     * else CLIP's built-in vocabulary (what every SD 1.x checkpoint was trained with). */
    const char *tok_dir = model->layout == DQ_MODEL_DIFFUSERS ? params->model_path : params->config_dir;
    self->tokenizer = dq_tokenizer_load(tok_dir, err, errlen);
    if (!self->tokenizer) goto fail;
    /* The f16 (bf16) precision keeps the UNet's and VAE's activations in f16 (bf16), as
     * diffusers' pipelines of that dtype do; the text encoder stays F32 (its states are
     * converted as the UNet takes them). */
    const bool act16 = matrices != DQ_DTYPE_F32 &&
                       dq_backend_supports_activation_all(self->be, matrices);
    self->act = act16 ? matrices : DQ_DTYPE_F32;
    self->text_encoder = dq_clip_text_new(self->be, model, matrices, err, errlen);
    if (!self->text_encoder) goto fail;
    self->unet = dq_unet_new_dtype(self->be, model, matrices, self->act, err, errlen);
    if (!self->unet) goto fail;
    self->vae = dq_vae_decoder_new(self->be, model, matrices, self->act, err, errlen);
    if (!self->vae) goto fail;
    self->sched = model->cfg.scheduler;
    self->latent_channels = dq_vae_decoder_latent_channels(self->vae);
    const char *base = strrchr(params->model_path, '/');
    base = base && base[1] ? base + 1 : params->model_path;
    snprintf(self->model_name, sizeof self->model_name, "%s", base);
    size_t len = strlen(self->model_name);
    if (len > 12 && strcmp(self->model_name + len - 12, ".safetensors") == 0)
        self->model_name[len - 12] = '\0';
    dq_model_destroy(&model);
    return self;
oom:
    snprintf(err, errlen, "out of memory loading the pipeline");
fail:
    dq_model_destroy(&model);
    dq_pipeline_destroy(&self);
    return NULL;
}

void dq_pipeline_destroy(dq_pipeline_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_pipeline_t *self = *self_p;
    dq_vae_decoder_destroy(&self->vae);
    dq_unet_destroy(&self->unet);
    dq_clip_text_destroy(&self->text_encoder);
    dq_tokenizer_destroy(&self->tokenizer);
    dq_backend_destroy(&self->be);
    free(self);
    *self_p = NULL;
}

const char *dq_pipeline_model_name(const dq_pipeline_t *self) { return self->model_name; }
const char *dq_pipeline_device(const dq_pipeline_t *self) { return self->device; }
const char *dq_pipeline_precision(const dq_pipeline_t *self) { return self->precision; }

const char *dq_pipeline_layout(const dq_pipeline_t *self) {
    return dq_unet_channels_last(self->unet) ? "nhwc" : "nchw";
}

void dq_pipeline_graph_stats(const dq_pipeline_t *self, dq_step_graph_stats_t *out) {
    dq_unet_graph_stats(self->unet, out);
}

int dq_pipeline_latent_factor(const dq_pipeline_t *self) {
    return dq_vae_decoder_factor(self->vae);
}

int dq_pipeline_batchable(const dq_request_t *a, const dq_request_t *b) {
    return a->width == b->width && a->height == b->height &&
           a->num_inference_steps == b->num_inference_steps && a->scheduler == b->scheduler;
}

int dq_pipeline_scheduler(const dq_pipeline_t *self, const dq_request_t *req) {
    if (req->scheduler != DQ_SCHED_MODEL) return req->scheduler;
    return dq_scheduler_from_class(self->sched.class_name, &self->sched.sched);
}

/* dq_pipeline_scheduler, with a message when the model's is not implemented. */
static int s_scheduler_of(const dq_pipeline_t *self, const dq_request_t *req, char *err,
                          size_t errlen) {
    int kind = dq_pipeline_scheduler(self, req);
    if (kind < 0)
        snprintf(err, errlen, "the model's scheduler %s is not implemented; name a scheduler",
                 self->sched.class_name);
    return kind;
}

/* Token ids of one prompt, padded to the encoder's length, as diffusers' encode_prompt does
 * (padding="max_length", truncation=True). */
static int s_tokenize(const dq_pipeline_t *self, const char *text, int32_t *ids, int len,
                      char *err, size_t errlen) {
    int count = dq_tokenizer_encode(self->tokenizer, text, ids, len, NULL, err, errlen);
    if (count < 0) return -1;
    return dq_tokenizer_pad(self->tokenizer, ids, count, len) < 0 ? -1 : 0;
}

/* The UNet's context rows: [uncond of every image..., cond of every image...] when any request
 * uses guidance, else [cond of every image]. Each image repeats its request's states
 * (prompt_embeds.repeat for num_images_per_prompt). Encodes all prompts in one batch. */
static int s_encode_context(dq_pipeline_t *self, dq_arena_t *arena, const s_item_t *items, int n,
                            size_t images, int cfg, float *context, char *err, size_t errlen) {
    int L = dq_clip_text_seq_len(self->text_encoder), D = dq_clip_text_hidden(self->text_encoder);
    size_t row = (size_t) L * (size_t) D;
    int prompts = cfg ? 2 * n : n;
    int32_t *ids = malloc((size_t) prompts * (size_t) L * sizeof *ids);
    float *states = malloc((size_t) prompts * row * sizeof *states);
    int rc = -1;
    if (!ids || !states) {
        snprintf(err, errlen, "out of memory encoding prompts");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        /* Rows 0..n-1: the prompts; rows n..2n-1: the negative prompts. */
        if (s_tokenize(self, items[i].req->prompt, ids + (size_t) i * L, L, err, errlen) < 0 ||
            (cfg && s_tokenize(self, items[i].req->negative_prompt, ids + (size_t) (n + i) * L, L,
                               err, errlen) < 0))
            goto done;
    }
    dq_arena_mark_t mark = dq_arena_mark(arena);
    if (dq_clip_text_encode_host(self->text_encoder, arena, ids, prompts, 0, states) < 0) {
        snprintf(err, errlen, "text encoder failed");
        goto done;
    }
    dq_arena_reset(arena, mark);
    size_t cond_base = cfg ? images : 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < items[i].req->num_images_per_prompt; k++) {
            size_t img = items[i].first_image + (size_t) k;
            memcpy(context + (cond_base + img) * row, states + (size_t) i * row, row * sizeof(float));
            if (cfg)
                memcpy(context + img * row, states + (size_t) (n + i) * row, row * sizeof(float));
        }
    rc = 0;
done:
    free(ids);
    free(states);
    return rc;
}

/* Decodes each image of each request and hands its pixels to the sink. */
static int s_decode(dq_pipeline_t *self, dq_arena_t *arena, const s_item_t *items, int n, int h,
                    int w, const dq_pipeline_sink_t *sink, char *err, size_t errlen) {
    int C = self->latent_channels, f = dq_vae_decoder_factor(self->vae);
    int H = h * f, W = w * f, out_c = dq_vae_decoder_out_channels(self->vae);
    size_t per_image = (size_t) C * (size_t) h * (size_t) w;
    float *pixels = malloc((size_t) out_c * (size_t) H * (size_t) W * sizeof *pixels);
    uint8_t *rgb = malloc((size_t) 3 * (size_t) H * (size_t) W);
    int rc = -1;
    if (!pixels || !rgb) {
        snprintf(err, errlen, "out of memory decoding images");
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < items[i].req->num_images_per_prompt; k++) {
            dq_arena_mark_t mark = dq_arena_mark(arena);
            dq_tensor_t *z = dq_arena_tensor(arena, DQ_DTYPE_F32, 4, (int64_t[]){1, C, h, w}, "latents");
            dq_tensor_t *img = dq_arena_tensor(arena, DQ_DTYPE_F32, 4, (int64_t[]){1, out_c, H, W}, "image");
            if (!z || !img ||
                dq_tensor_upload(self->be, z, 0, items[i].latents + (size_t) k * per_image,
                                 per_image * sizeof(float)) < 0 ||
                dq_vae_decoder_decode(self->vae, arena, z, img) < 0 ||
                dq_tensor_download(self->be, img, 0, pixels, dq_tensor_nbytes(img)) < 0) {
                snprintf(err, errlen, "VAE decoder failed");
                goto done;
            }
            dq_arena_reset(arena, mark);
            dq_image_to_rgb8(pixels, 1, out_c, H, W, rgb);
            if (sink && sink->on_image && sink->on_image(sink->ctx, i, k, rgb, W, H)) {
                rc = DQ_PIPELINE_STOPPED;
                goto done;
            }
        }
    rc = 0;
done:
    free(pixels);
    free(rgb);
    return rc;
}

int dq_pipeline_render(dq_pipeline_t *self, const dq_request_t *reqs, int n,
                       const dq_pipeline_sink_t *sink, char *err, size_t errlen) {
    if (n < 1) {
        snprintf(err, errlen, "nothing to render");
        return -1;
    }
    int f = dq_vae_decoder_factor(self->vae), C = self->latent_channels;
    const dq_request_t *r0 = &reqs[0];
    if (r0->width % f || r0->height % f || r0->width < f || r0->height < f) {
        snprintf(err, errlen, "width and height must be positive multiples of %d (got %dx%d)", f,
                 r0->width, r0->height);
        return -1;
    }
    for (int i = 1; i < n; i++)
        if (!dq_pipeline_batchable(r0, &reqs[i])) {
            snprintf(err, errlen, "request %d cannot share a batch with request 0 (size, steps "
                                  "or scheduler differ)", i);
            return -1;
        }
    int h = r0->height / f, w = r0->width / f;
    size_t per_image = (size_t) C * (size_t) h * (size_t) w;
    int kind = s_scheduler_of(self, r0, err, errlen);
    if (kind < 0) return -1;

    int rc = -1, cfg = 0;
    size_t images = 0;
    s_item_t *items = calloc((size_t) n, sizeof *items);
    float *x_in = NULL, *eps = NULL, *noise = NULL, *context = NULL;
    dq_arena_t *arena = NULL;
    if (!items) goto oom;
    for (int i = 0; i < n; i++) {
        s_item_t *it = &items[i];
        it->req = &reqs[i];
        it->first_image = images;
        it->cfg = reqs[i].guidance_scale > 1.0;
        cfg |= it->cfg;
        size_t count = (size_t) reqs[i].num_images_per_prompt * per_image;
        images += (size_t) reqs[i].num_images_per_prompt;
        it->sampler = dq_sampler_new((dq_scheduler_t) kind, &self->sched.sched,
                                     reqs[i].num_inference_steps, count, err, errlen);
        if (!it->sampler) goto done;
        it->rng = dq_rng_new(reqs[i].seed);
        it->latents = malloc(count * sizeof(float));
        if (!it->rng || !it->latents) goto oom;
        /* prepare_latents: randn(shape, generator) * init_noise_sigma, in f32. */
        dq_rng_randn(it->rng, it->latents, count);
        float sigma = dq_sampler_init_noise_sigma(it->sampler);
        for (size_t k = 0; k < count; k++) it->latents[k] *= sigma;
    }

    int rows = cfg ? 2 * (int) images : (int) images;
    int L = dq_clip_text_seq_len(self->text_encoder), D = dq_clip_text_hidden(self->text_encoder);
    size_t ctx_floats = (size_t) rows * (size_t) L * (size_t) D;
    x_in = malloc((size_t) rows * per_image * sizeof(float));
    eps = malloc((size_t) rows * per_image * sizeof(float));
    noise = malloc(images * per_image * sizeof(float));
    context = malloc(ctx_floats * sizeof(float));
    if (!x_in || !eps || !noise || !context) goto oom;

    /* One arena, used in turn by the text encoder, the UNet's inputs and outputs, and the VAE
     * decoder with one image's latents and pixels; each phase releases what it took. */
    int f_px = dq_vae_decoder_factor(self->vae);
    size_t enc = dq_clip_text_arena_bytes(self->text_encoder, cfg ? 2 * n : n);
    size_t dec = dq_vae_decoder_arena_bytes(self->vae, 1, h, w) + per_image * sizeof(float) +
                 (size_t) dq_vae_decoder_out_channels(self->vae) * (size_t) (h * f_px) *
                     (size_t) (w * f_px) * sizeof(float);
    size_t io = 2 * (size_t) rows * per_image * sizeof(float) + ctx_floats * sizeof(float);
    size_t bytes = enc > dec ? enc : dec;
    if (io > bytes) bytes = io;
    bytes += 64 * 8; /* each tensor is 64-byte aligned */
    size_t tensors = dq_clip_text_arena_tensors(self->text_encoder) +
                     dq_vae_decoder_arena_tensors(self->vae) + 8;
    arena = dq_arena_new(self->be, bytes, tensors);
    if (!arena) goto oom;
    if (s_encode_context(self, arena, items, n, images, cfg, context, err, errlen) < 0) goto done;

    dq_arena_mark_t io_mark = dq_arena_mark(arena);
    dq_tensor_t *t_ctx = dq_arena_tensor(arena, DQ_DTYPE_F32, 3, (int64_t[]){rows, L, D}, "context");
    dq_tensor_t *t_in = dq_arena_tensor(arena, DQ_DTYPE_F32, 4, (int64_t[]){rows, C, h, w}, "x_in");
    dq_tensor_t *t_out = dq_arena_tensor(arena, DQ_DTYPE_F32, 4, (int64_t[]){rows, C, h, w}, "eps");
    if (!t_ctx || !t_in || !t_out ||
        dq_tensor_upload(self->be, t_ctx, 0, context, ctx_floats * sizeof(float)) < 0) {
        snprintf(err, errlen, "cannot place the UNet's inputs on the backend");
        goto done;
    }

    int calls = dq_sampler_num_calls(items[0].sampler);
    size_t cond_base = cfg ? images * per_image : 0;
    for (int c = 0; c < calls; c++) {
        /* latent_model_input = scale_model_input(cat([latents] * 2), t). */
        for (int i = 0; i < n; i++) {
            size_t off = items[i].first_image * per_image;
            size_t count = (size_t) items[i].req->num_images_per_prompt * per_image;
            dq_sampler_scale_model_input(items[i].sampler, c, items[i].latents, x_in + cond_base + off,
                                         count);
            if (cfg) memcpy(x_in + off, x_in + cond_base + off, count * sizeof(float));
        }
        float t = dq_sampler_timestep(items[0].sampler, c);
        if (dq_tensor_upload(self->be, t_in, 0, x_in, (size_t) rows * per_image * sizeof(float)) < 0 ||
            dq_unet_forward(self->unet, t_in, &t, 1, t_ctx, t_out, err, errlen) < 0 ||
            dq_tensor_download(self->be, t_out, 0, eps, (size_t) rows * per_image * sizeof(float)) < 0) {
            if (!err[0]) snprintf(err, errlen, "UNet failed at call %d", c + 1);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            s_item_t *it = &items[i];
            size_t off = it->first_image * per_image;
            size_t count = (size_t) it->req->num_images_per_prompt * per_image;
            const float *e = eps + cond_base + off;
            if (it->cfg) {
                dq_guidance_combine(eps + off, eps + cond_base + off, (float) it->req->guidance_scale,
                                    noise + off, count);
                e = noise + off;
            }
            if (dq_sampler_step(it->sampler, c, e, it->latents, count, &it->rng, 1, err, errlen) < 0)
                goto done;
        }
        if (sink && sink->on_step && sink->on_step(sink->ctx, c + 1, calls)) {
            rc = DQ_PIPELINE_STOPPED;
            goto done;
        }
    }
    dq_arena_reset(arena, io_mark);
    for (int i = 0; sink && sink->on_latents && i < n; i++)
        if (sink->on_latents(sink->ctx, i, items[i].latents,
                             (size_t) items[i].req->num_images_per_prompt * per_image)) {
            rc = DQ_PIPELINE_STOPPED;
            goto done;
        }
    rc = s_decode(self, arena, items, n, h, w, sink, err, errlen);
    goto done;
oom:
    snprintf(err, errlen, "out of memory rendering %d request%s", n, n == 1 ? "" : "s");
    rc = -1;
done:
    if (items)
        for (int i = 0; i < n; i++) {
            dq_sampler_destroy(&items[i].sampler);
            dq_rng_destroy(&items[i].rng);
            free(items[i].latents);
        }
    free(items);
    free(x_in);
    free(eps);
    free(noise);
    free(context);
    dq_arena_destroy(&arena);
    return rc;
}
