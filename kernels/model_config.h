/* kernels/model_config.h: the configs of an SD 1.x pipeline's parts (CLIP text encoder, UNet, VAE,
 * scheduler) as C structs, read from and written to diffusers/transformers config JSON. */
#ifndef DQ_MODEL_CONFIG_H
#define DQ_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "kernels/sched/sampler.h"

/* Most UNet/VAE blocks a config may list (SD 1.x has 4). */
#define DQ_MAX_BLOCKS 8
/* Room for a block type or other short config string, NUL included. */
#define DQ_CONFIG_STR 48

/* transformers' CLIPTextConfig (what CLIPTextModel reads). */
typedef struct {
    int vocab_size;                 /* token embedding rows (49408 for CLIP's BPE) */
    int hidden_size;                /* width of the residual stream */
    int intermediate_size;          /* MLP width */
    int num_hidden_layers;          /* encoder layers */
    int num_attention_heads;        /* heads per self-attention */
    int max_position_embeddings;    /* sequence length (77) */
    char hidden_act[DQ_CONFIG_STR]; /* "quick_gelu" for SD 1.x; "gelu" also accepted */
    double layer_norm_eps;
    int bos_token_id, eos_token_id, pad_token_id; /* as written: SD 1.x configs carry 0, 2, 1 */
    int projection_dim; /* not used by CLIPTextModel; kept for a faithful config */
} dq_clip_config_t;

/* diffusers' UNet2DConditionModel, restricted to what SD 1.x uses. */
typedef struct {
    int sample_size; /* latent height/width (64 for 512-pixel images) */
    int in_channels, out_channels;
    int n_blocks; /* entries in the arrays below */
    int block_out_channels[DQ_MAX_BLOCKS];
    char down_block_types[DQ_MAX_BLOCKS][DQ_CONFIG_STR]; /* CrossAttnDownBlock2D or DownBlock2D */
    char up_block_types[DQ_MAX_BLOCKS][DQ_CONFIG_STR];   /* UpBlock2D or CrossAttnUpBlock2D */
    char mid_block_type[DQ_CONFIG_STR];                  /* UNetMidBlock2DCrossAttn */
    int layers_per_block;
    int cross_attention_dim; /* width of the text encoder's states */
    /* Heads per down block (up blocks use them reversed). diffusers' quirk: for SD 1.x the config's
     * attention_head_dim is the number of heads, used unless num_attention_heads is set. */
    int num_heads[DQ_MAX_BLOCKS];
    bool head_dim_is_list; /* attention_head_dim was a list in the file (written back the same) */
    int norm_num_groups;
    double norm_eps;
    bool use_linear_projection; /* proj_in/proj_out are Linear, not 1x1 Conv */
    bool flip_sin_to_cos;
    int freq_shift;
    bool upcast_attention;
    bool center_input_sample;
    int downsample_padding;
    double mid_block_scale_factor;
    char act_fn[DQ_CONFIG_STR]; /* silu */
} dq_unet_config_t;

/* diffusers' AutoencoderKL. */
typedef struct {
    int in_channels, out_channels; /* image channels (3) */
    int latent_channels;           /* 4 */
    int sample_size;
    int n_blocks;
    int block_out_channels[DQ_MAX_BLOCKS];
    char down_block_types[DQ_MAX_BLOCKS][DQ_CONFIG_STR]; /* DownEncoderBlock2D */
    char up_block_types[DQ_MAX_BLOCKS][DQ_CONFIG_STR];   /* UpDecoderBlock2D */
    int layers_per_block;
    int norm_num_groups;
    double scaling_factor; /* latents = scaling_factor * sample (0.18215 for SD 1.x) */
    bool force_upcast;
    char act_fn[DQ_CONFIG_STR]; /* silu */
} dq_vae_config_t;

/* A model's scheduler_config.json: the class it names and its keys. Which keys the file held
 * matters (sched.has): diffusers' from_config carries only those to another scheduler class, the
 * rest take that class's defaults (see kernels/sched/sampler.h, dq_sched_config_for). */
typedef struct {
    char class_name[DQ_CONFIG_STR]; /* "PNDMScheduler", "DDIMScheduler", ... */
    dq_sched_config_t sched;        /* the values, and in sched.has which keys were present */
} dq_scheduler_config_t;

/* The networks of a pipeline that have weights, in the order `diffq model info` lists them. */
typedef enum { DQ_PART_TEXT_ENCODER, DQ_PART_UNET, DQ_PART_VAE, DQ_PART_COUNT } dq_model_part_t;
/* The diffusers folder name of a part: "text_encoder", "unet", "vae". */
const char *dq_model_part_name(dq_model_part_t part);

/* The four configs of a pipeline. */
typedef struct {
    dq_clip_config_t clip;
    dq_unet_config_t unet;
    dq_vae_config_t vae;
    dq_scheduler_config_t scheduler;
} dq_model_configs_t;

/* Fills `out` with a named preset: "sd15" (runwayml/stable-diffusion-v1-5) or "tiny" (the same
 * architecture, a few thousand times smaller, for tests; mirrored in tests/reference/manifest.py).
 * Returns 0, or -1 for an unknown name. */
int dq_model_preset(const char *name, dq_model_configs_t *out);

/* Defaults: what diffusers/transformers use for a key missing from the file. */
void dq_clip_config_defaults(dq_clip_config_t *cfg);
void dq_unet_config_defaults(dq_unet_config_t *cfg);
void dq_vae_config_defaults(dq_vae_config_t *cfg);

/* The SD 1.5 configs (runwayml/stable-diffusion-v1-5), used for single-file checkpoints and
 * `diffq model init --config sd15`. */
void dq_clip_config_sd15(dq_clip_config_t *cfg);
void dq_unet_config_sd15(dq_unet_config_t *cfg);
void dq_vae_config_sd15(dq_vae_config_t *cfg);
void dq_scheduler_config_sd15(dq_scheduler_config_t *cfg);

/* Reads a config from a parsed JSON object: defaults first, then every known key. `file` names the
 * source in messages. Returns 0, or -1 with err naming the file and field when a value has the
 * wrong type or describes an architecture the engine does not implement (e.g. another block type).
 */
int dq_clip_config_from_json(dq_clip_config_t *cfg, const json_t *root, const char *file, char *err,
                             size_t errlen);
int dq_unet_config_from_json(dq_unet_config_t *cfg, const json_t *root, const char *file, char *err,
                             size_t errlen);
int dq_vae_config_from_json(dq_vae_config_t *cfg, const json_t *root, const char *file, char *err,
                            size_t errlen);
int dq_scheduler_config_from_json(dq_scheduler_config_t *cfg, const json_t *root, const char *file,
                                  char *err, size_t errlen);

/* Loads and parses a JSON file (duplicate keys rejected); NULL with err naming file:line. */
json_t *dq_json_load_file(const char *path, char *err, size_t errlen);

/* Checks that a config is one the engine and the manifests handle (positive sizes, channels
 * divisible by the group count, block counts that match). Returns 0 or -1 with err naming `file`.
 */
int dq_unet_config_check(const dq_unet_config_t *cfg, const char *file, char *err, size_t errlen);
int dq_vae_config_check(const dq_vae_config_t *cfg, const char *file, char *err, size_t errlen);
int dq_clip_config_check(const dq_clip_config_t *cfg, const char *file, char *err, size_t errlen);

/* Config JSON as diffusers/transformers write it (new references; NULL only when out of memory). */
json_t *dq_clip_config_to_json(const dq_clip_config_t *cfg);
json_t *dq_unet_config_to_json(const dq_unet_config_t *cfg);
json_t *dq_vae_config_to_json(const dq_vae_config_t *cfg);
json_t *dq_scheduler_config_to_json(const dq_scheduler_config_t *cfg);

#endif
