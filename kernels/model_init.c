/* kernels/model_init.c: random-weight diffusers folders, streamed tensor by tensor. */
#include "config.h"

#include "kernels/model_init.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/clip_vocab.h"
#include "kernels/model_manifest.h"
#include "kernels/safetensors.h"

void dq_init_rng_seed(dq_init_rng_t *rng, uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 offset basis */
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    rng->state = seed ^ h;
}

uint64_t dq_init_rng_next(dq_init_rng_t *rng) {
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double dq_init_rng_normal(dq_init_rng_t *rng) {
    double u1 = (double) ((dq_init_rng_next(rng) >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double) (dq_init_rng_next(rng) >> 11) * 0x1.0p-53;       /* [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static void s_fail(char *err, size_t errlen, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_fail(char *err, size_t errlen, const char *file, const char *fmt, ...) {
    int n = snprintf(err, errlen, "%s: ", file);
    if (n < 0 || (size_t) n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

static int s_mkdir(const char *path, char *err, size_t errlen) {
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        s_fail(err, errlen, path, "cannot create: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* dir/rel, in a caller buffer. */
static const char *s_path(char *buf, size_t len, const char *dir, const char *rel) {
    snprintf(buf, len, "%s/%s", dir, rel);
    return buf;
}

/* Writes a JSON document (consumed) with diffusers' 2-space indentation. */
static int s_write_json(json_t *doc, const char *path, char *err, size_t errlen) {
    if (!doc) {
        s_fail(err, errlen, path, "out of memory");
        return -1;
    }
    int rc = json_dump_file(doc, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_SORT_KEYS);
    json_decref(doc);
    if (rc) s_fail(err, errlen, path, "cannot write");
    return rc ? -1 : 0;
}

/* Streams one network's parameters into a safetensors file. */
/* Elements generated per write: tensors are produced in pieces of this many, so memory stays at a
 * few MB whatever the model (the random stream of a tensor runs on across pieces). */
#define S_CHUNK (1u << 18)

static int s_write_weights(const char *path, const dq_param_list_t *params, uint64_t seed,
                           dq_dtype_t dtype, char *err, size_t errlen) {
    dq_st_tensor_t *ts = calloc(params->count ? params->count : 1, sizeof *ts);
    if (!ts) {
        s_fail(err, errlen, path, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < params->count; i++) {
        const dq_param_t *p = &params->items[i];
        ts[i] = (dq_st_tensor_t){.name = p->name, .dtype = dtype, .ndim = p->ndim};
        memcpy(ts[i].shape, p->shape, sizeof p->shape);
    }
    const char *meta[] = {"format", "pt"};
    dq_st_writer_t *w = dq_st_writer_new(path, ts, params->count, meta, 1, err, errlen);
    float *f32 = malloc(S_CHUNK * sizeof *f32);
    uint16_t *half = malloc(S_CHUNK * sizeof *half);
    int rc = w && f32 && half ? 0 : -1;
    if (w && rc) s_fail(err, errlen, path, "out of memory");
    for (size_t i = 0; rc == 0 && i < params->count; i++) {
        const dq_param_t *p = &params->items[i];
        size_t n = (size_t) dq_st_numel(p->shape, p->ndim);
        dq_init_rng_t rng;
        dq_init_rng_seed(&rng, seed, p->name);
        for (size_t done = 0; rc == 0 && done < n; done += S_CHUNK) {
            size_t m = n - done < S_CHUNK ? n - done : S_CHUNK;
            for (size_t k = 0; k < m; k++)
                f32[k] = p->init == DQ_INIT_ONE ? 1.0f
                         : p->init == DQ_INIT_ZERO
                             ? 0.0f
                             : (float) (DQ_INIT_STD * dq_init_rng_normal(&rng));
            const void *data = f32;
            if (dtype != DQ_DTYPE_F32) {
                for (size_t k = 0; k < m; k++)
                    half[k] =
                        dtype == DQ_DTYPE_F16 ? dq_f32_to_f16(f32[k]) : dq_f32_to_bf16(f32[k]);
                data = half;
            }
            rc = dq_st_writer_write(w, data, m * dq_dtype_size(dtype), err, errlen);
        }
    }
    if (dq_st_writer_close(&w, rc ? NULL : err, errlen) < 0) rc = -1;
    free(half);
    free(f32);
    free(ts);
    return rc;
}

static json_t *s_index(void) {
    return json_pack("{s:s, s:s, s:[nn], s:b, s:[nn], s:[ss], s:[ss], s:[ss], s:[ss], s:[ss]}",
                     "_class_name", "StableDiffusionPipeline", "_diffusers_version", "0.42.1",
                     "feature_extractor", "requires_safety_checker", 0, "safety_checker",
                     "scheduler", "diffusers", "PNDMScheduler", "text_encoder", "transformers",
                     "CLIPTextModel", "tokenizer", "transformers", "CLIPTokenizer", "unet",
                     "diffusers", "UNet2DConditionModel", "vae", "diffusers", "AutoencoderKL");
}

static int s_tokenizer(const char *dir, const dq_clip_config_t *clip, const char *bpe_path,
                       char *err, size_t errlen) {
    char vocab[4096], merges[4096], p[4096];
    if (dq_clip_vocab_write(bpe_path, s_path(vocab, sizeof vocab, dir, "tokenizer/vocab.json"),
                            s_path(merges, sizeof merges, dir, "tokenizer/merges.txt"), err,
                            errlen) < 0)
        return -1;
    /* What openai/clip-vit-large-patch14 ships (SD 1.5 copies it). */
    json_t *cfg = json_pack("{s:b, s:s, s:b, s:s, s:s, s:i, s:s, s:s, s:s}", "add_prefix_space", 0,
                            "bos_token", "<|startoftext|>", "do_lower_case", 1, "eos_token",
                            "<|endoftext|>", "errors", "replace", "model_max_length",
                            clip->max_position_embeddings, "pad_token", "<|endoftext|>",
                            "tokenizer_class", "CLIPTokenizer", "unk_token", "<|endoftext|>");
    json_t *special =
        json_pack("{s:s, s:s, s:s, s:s}", "bos_token", "<|startoftext|>", "eos_token",
                  "<|endoftext|>", "pad_token", "<|endoftext|>", "unk_token", "<|endoftext|>");
    int rc =
        s_write_json(cfg, s_path(p, sizeof p, dir, "tokenizer/tokenizer_config.json"), err, errlen);
    if (rc == 0)
        rc = s_write_json(special, s_path(p, sizeof p, dir, "tokenizer/special_tokens_map.json"),
                          err, errlen);
    else
        json_decref(special);
    return rc;
}

static int s_check_dir(const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? s_mkdir(dir, err, errlen)
                               : (s_fail(err, errlen, dir, "%s", strerror(errno)), -1);
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    if (!empty) s_fail(err, errlen, dir, "exists and is not empty (refusing to overwrite)");
    return empty ? 0 : -1;
}

int dq_model_init_random(const char *dir, const dq_model_configs_t *cfg, uint64_t seed,
                         dq_dtype_t dtype, const char *bpe_path, char *err, size_t errlen) {
    if (dtype != DQ_DTYPE_F32 && dtype != DQ_DTYPE_F16 && dtype != DQ_DTYPE_BF16) {
        s_fail(err, errlen, dir, "weights must be F32, F16 or BF16, not %s", dq_dtype_name(dtype));
        return -1;
    }
    char p[4096];
    static const char *subdirs[] = {"text_encoder", "unet", "vae", "scheduler", "tokenizer"};
    /* Checked first, so a missing merge file leaves nothing half-written behind. */
    FILE *bpe = fopen(bpe_path, "rb");
    if (!bpe) {
        s_fail(err, errlen, bpe_path, "cannot open: %s", strerror(errno));
        return -1;
    }
    fclose(bpe);
    if (s_check_dir(dir, err, errlen)) return -1;
    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++)
        if (s_mkdir(s_path(p, sizeof p, dir, subdirs[i]), err, errlen)) return -1;
    json_t *clip = dq_clip_config_to_json(&cfg->clip);
    if (clip)
        json_object_set_new(clip, "torch_dtype",
                            json_string(dtype == DQ_DTYPE_F32   ? "float32"
                                        : dtype == DQ_DTYPE_F16 ? "float16"
                                                                : "bfloat16"));
    if (s_write_json(s_index(), s_path(p, sizeof p, dir, "model_index.json"), err, errlen) ||
        s_write_json(clip, s_path(p, sizeof p, dir, "text_encoder/config.json"), err, errlen) ||
        s_write_json(dq_unet_config_to_json(&cfg->unet),
                     s_path(p, sizeof p, dir, "unet/config.json"), err, errlen) ||
        s_write_json(dq_vae_config_to_json(&cfg->vae), s_path(p, sizeof p, dir, "vae/config.json"),
                     err, errlen) ||
        s_write_json(dq_scheduler_config_to_json(&cfg->scheduler),
                     s_path(p, sizeof p, dir, "scheduler/scheduler_config.json"), err, errlen) ||
        s_tokenizer(dir, &cfg->clip, bpe_path, err, errlen))
        return -1;
    static const char *files[DQ_PART_COUNT] = {"text_encoder/model.safetensors",
                                               "unet/diffusion_pytorch_model.safetensors",
                                               "vae/diffusion_pytorch_model.safetensors"};
    for (int part = 0; part < DQ_PART_COUNT; part++) {
        dq_param_list_t params = {0};
        int rc = part == DQ_PART_TEXT_ENCODER ? dq_manifest_clip(&cfg->clip, &params)
                 : part == DQ_PART_UNET       ? dq_manifest_unet(&cfg->unet, &params)
                                              : dq_manifest_vae(&cfg->vae, &params);
        if (rc < 0) s_fail(err, errlen, dir, "out of memory");
        if (rc == 0)
            rc = s_write_weights(s_path(p, sizeof p, dir, files[part]), &params, seed, dtype, err,
                                 errlen);
        dq_param_list_free(&params);
        if (rc < 0) return -1;
    }
    return 0;
}
