/* kernels/model_config.c: defaults, SD 1.5 presets, JSON parsing and checks of the model configs.
 * Defaults follow the __init__ signatures of transformers 5 CLIPTextConfig and diffusers 0.42
 * UNet2DConditionModel / AutoencoderKL / the schedulers. */
#include "config.h"

#include "kernels/model_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void s_fail(char *err, size_t errlen, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_fail(char *err, size_t errlen, const char *file, const char *fmt, ...) {
    if (!err || !errlen) return;
    int n = snprintf(err, errlen, "%s: ", file);
    if (n < 0 || (size_t) n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

static void s_copy(char *dst, const char *src) {
    snprintf(dst, DQ_CONFIG_STR, "%s", src);
}

const char *dq_model_part_name(dq_model_part_t part) {
    static const char *names[DQ_PART_COUNT] = {"text_encoder", "unet", "vae"};
    return (unsigned) part < DQ_PART_COUNT ? names[part] : "?";
}

/* ---- Typed getters: a missing or null key leaves *out unchanged; a wrong type is an error. */

static int s_int(const json_t *o, const char *key, int *out, const char *file, char *err,
                 size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < -1000000000 ||
        json_integer_value(v) > 1000000000) {
        s_fail(err, errlen, file, "field \"%s\" must be an integer", key);
        return -1;
    }
    *out = (int) json_integer_value(v);
    return 0;
}

static int s_double(const json_t *o, const char *key, double *out, const char *file, char *err,
                    size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) {
        s_fail(err, errlen, file, "field \"%s\" must be a number", key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int s_bool(const json_t *o, const char *key, bool *out, const char *file, char *err,
                  size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        s_fail(err, errlen, file, "field \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int s_str(const json_t *o, const char *key, char *out, const char *file, char *err,
                 size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) >= DQ_CONFIG_STR) {
        s_fail(err, errlen, file, "field \"%s\" must be a string shorter than %d bytes", key,
               DQ_CONFIG_STR);
        return -1;
    }
    s_copy(out, json_string_value(v));
    return 0;
}

/* A list of ints; sets *n. */
static int s_int_list(const json_t *o, const char *key, int *out, int *n, const char *file,
                      char *err, size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > DQ_MAX_BLOCKS) {
        s_fail(err, errlen, file, "field \"%s\" must be a list of 1 to %d integers", key,
               DQ_MAX_BLOCKS);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 1000000) {
            s_fail(err, errlen, file, "field \"%s\"[%zu] must be a non-negative integer", key, i);
            return -1;
        }
        out[i] = (int) json_integer_value(e);
    }
    *n = (int) json_array_size(v);
    return 0;
}

static int s_str_list(const json_t *o, const char *key, char (*out)[DQ_CONFIG_STR], int *n,
                      const char *file, char *err, size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > DQ_MAX_BLOCKS) {
        s_fail(err, errlen, file, "field \"%s\" must be a list of 1 to %d strings", key,
               DQ_MAX_BLOCKS);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || strlen(json_string_value(e)) >= DQ_CONFIG_STR) {
            s_fail(err, errlen, file, "field \"%s\"[%zu] must be a short string", key, i);
            return -1;
        }
        s_copy(out[i], json_string_value(e));
    }
    *n = (int) json_array_size(v);
    return 0;
}

/* Rejects a key whose value differs from the only one the engine implements. */
static int s_require_absent_or_null(const json_t *o, const char *key, const char *file, char *err,
                                    size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (v && !json_is_null(v)) {
        s_fail(err, errlen, file,
               "field \"%s\" is set, but only SD 1.x models (with it null) are supported", key);
        return -1;
    }
    return 0;
}

json_t *dq_json_load_file(const char *path, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        s_fail(err, errlen, path, "line %d: %s", jerr.line, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        s_fail(err, errlen, path, "not a JSON object");
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---- CLIP */

void dq_clip_config_defaults(dq_clip_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = 49408;
    cfg->hidden_size = 512;
    cfg->intermediate_size = 2048;
    cfg->num_hidden_layers = 12;
    cfg->num_attention_heads = 8;
    cfg->max_position_embeddings = 77;
    s_copy(cfg->hidden_act, "quick_gelu");
    cfg->layer_norm_eps = 1e-5;
    cfg->pad_token_id = 1;
    cfg->bos_token_id = 49406;
    cfg->eos_token_id = 49407;
    cfg->projection_dim = 512;
}

void dq_clip_config_sd15(dq_clip_config_t *cfg) {
    dq_clip_config_defaults(cfg);
    cfg->hidden_size = 768;
    cfg->intermediate_size = 3072;
    cfg->num_attention_heads = 12;
    cfg->projection_dim = 768;
    /* openai/clip-vit-large-patch14's config, as SD 1.5 ships it, carries the old ids. */
    cfg->bos_token_id = 0;
    cfg->eos_token_id = 2;
}

int dq_clip_config_from_json(dq_clip_config_t *cfg, const json_t *o, const char *file, char *err,
                             size_t errlen) {
    dq_clip_config_defaults(cfg);
    if (s_int(o, "vocab_size", &cfg->vocab_size, file, err, errlen) ||
        s_int(o, "hidden_size", &cfg->hidden_size, file, err, errlen) ||
        s_int(o, "intermediate_size", &cfg->intermediate_size, file, err, errlen) ||
        s_int(o, "num_hidden_layers", &cfg->num_hidden_layers, file, err, errlen) ||
        s_int(o, "num_attention_heads", &cfg->num_attention_heads, file, err, errlen) ||
        s_int(o, "max_position_embeddings", &cfg->max_position_embeddings, file, err, errlen) ||
        s_str(o, "hidden_act", cfg->hidden_act, file, err, errlen) ||
        s_double(o, "layer_norm_eps", &cfg->layer_norm_eps, file, err, errlen) ||
        s_int(o, "bos_token_id", &cfg->bos_token_id, file, err, errlen) ||
        s_int(o, "eos_token_id", &cfg->eos_token_id, file, err, errlen) ||
        s_int(o, "pad_token_id", &cfg->pad_token_id, file, err, errlen) ||
        s_int(o, "projection_dim", &cfg->projection_dim, file, err, errlen))
        return -1;
    return dq_clip_config_check(cfg, file, err, errlen);
}

int dq_clip_config_check(const dq_clip_config_t *cfg, const char *file, char *err, size_t errlen) {
    if (cfg->vocab_size <= 0 || cfg->hidden_size <= 0 || cfg->intermediate_size <= 0 ||
        cfg->num_hidden_layers <= 0 || cfg->num_attention_heads <= 0 ||
        cfg->max_position_embeddings <= 0) {
        s_fail(err, errlen, file, "text encoder sizes must be positive");
        return -1;
    }
    if (cfg->hidden_size % cfg->num_attention_heads) {
        s_fail(err, errlen, file, "hidden_size %d is not divisible by num_attention_heads %d",
               cfg->hidden_size, cfg->num_attention_heads);
        return -1;
    }
    if (strcmp(cfg->hidden_act, "quick_gelu") && strcmp(cfg->hidden_act, "gelu")) {
        s_fail(err, errlen, file, "hidden_act \"%s\" is not supported (quick_gelu or gelu)",
               cfg->hidden_act);
        return -1;
    }
    return 0;
}

json_t *dq_clip_config_to_json(const dq_clip_config_t *c) {
    return json_pack(
        "{s:[s], s:f, s:i, s:f, s:i, s:s, s:i, s:f, s:f, s:i, s:f, s:i, s:s, s:i, s:i, s:i, "
        "s:i, s:s, s:i}",
        "architectures", "CLIPTextModel", "attention_dropout", 0.0, "bos_token_id", c->bos_token_id,
        "dropout", 0.0, "eos_token_id", c->eos_token_id, "hidden_act", c->hidden_act, "hidden_size",
        c->hidden_size, "initializer_factor", 1.0, "initializer_range", 0.02, "intermediate_size",
        c->intermediate_size, "layer_norm_eps", c->layer_norm_eps, "max_position_embeddings",
        c->max_position_embeddings, "model_type", "clip_text_model", "num_attention_heads",
        c->num_attention_heads, "num_hidden_layers", c->num_hidden_layers, "pad_token_id",
        c->pad_token_id, "projection_dim", c->projection_dim, "torch_dtype", "float32",
        "vocab_size", c->vocab_size);
}

/* ---- UNet */

void dq_unet_config_defaults(dq_unet_config_t *cfg) {
    static const char *down[4] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                  "CrossAttnDownBlock2D", "DownBlock2D"};
    static const char *up[4] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                "CrossAttnUpBlock2D"};
    static const int ch[4] = {320, 640, 1280, 1280};
    memset(cfg, 0, sizeof *cfg);
    cfg->sample_size = 64; /* diffusers' default is None; 64 is what every SD 1.x config says */
    cfg->in_channels = 4;
    cfg->out_channels = 4;
    cfg->n_blocks = 4;
    for (int i = 0; i < 4; i++) {
        cfg->block_out_channels[i] = ch[i];
        s_copy(cfg->down_block_types[i], down[i]);
        s_copy(cfg->up_block_types[i], up[i]);
        cfg->num_heads[i] = 8;
    }
    s_copy(cfg->mid_block_type, "UNetMidBlock2DCrossAttn");
    cfg->layers_per_block = 2;
    cfg->cross_attention_dim = 1280;
    cfg->norm_num_groups = 32;
    cfg->norm_eps = 1e-5;
    cfg->flip_sin_to_cos = true;
    cfg->freq_shift = 0;
    cfg->downsample_padding = 1;
    cfg->mid_block_scale_factor = 1.0;
    s_copy(cfg->act_fn, "silu");
}

void dq_unet_config_sd15(dq_unet_config_t *cfg) {
    dq_unet_config_defaults(cfg);
    cfg->cross_attention_dim = 768;
}

/* attention_head_dim / num_attention_heads: an int (same for every block) or a per-block list. */
static int s_heads(const json_t *o, const char *key, dq_unet_config_t *cfg, const char *file,
                   char *err, size_t errlen) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        int h = 0;
        if (s_int(o, key, &h, file, err, errlen)) return -1;
        for (int i = 0; i < DQ_MAX_BLOCKS; i++)
            cfg->num_heads[i] = h;
        cfg->head_dim_is_list = false;
        return 0;
    }
    int n = 0;
    if (s_int_list(o, key, cfg->num_heads, &n, file, err, errlen)) return -1;
    if (!json_is_array(v)) return 0;
    cfg->head_dim_is_list = true;
    if (n != cfg->n_blocks) {
        s_fail(err, errlen, file, "field \"%s\" lists %d values for %d blocks", key, n,
               cfg->n_blocks);
        return -1;
    }
    return 0;
}

int dq_unet_config_from_json(dq_unet_config_t *cfg, const json_t *o, const char *file, char *err,
                             size_t errlen) {
    dq_unet_config_defaults(cfg);
    int n_ch = cfg->n_blocks, n_down = cfg->n_blocks, n_up = cfg->n_blocks;
    if (s_int(o, "sample_size", &cfg->sample_size, file, err, errlen) ||
        s_int(o, "in_channels", &cfg->in_channels, file, err, errlen) ||
        s_int(o, "out_channels", &cfg->out_channels, file, err, errlen) ||
        s_int_list(o, "block_out_channels", cfg->block_out_channels, &n_ch, file, err, errlen) ||
        s_str_list(o, "down_block_types", cfg->down_block_types, &n_down, file, err, errlen) ||
        s_str_list(o, "up_block_types", cfg->up_block_types, &n_up, file, err, errlen) ||
        s_str(o, "mid_block_type", cfg->mid_block_type, file, err, errlen) ||
        s_int(o, "layers_per_block", &cfg->layers_per_block, file, err, errlen) ||
        s_int(o, "cross_attention_dim", &cfg->cross_attention_dim, file, err, errlen) ||
        s_int(o, "norm_num_groups", &cfg->norm_num_groups, file, err, errlen) ||
        s_double(o, "norm_eps", &cfg->norm_eps, file, err, errlen) ||
        s_bool(o, "use_linear_projection", &cfg->use_linear_projection, file, err, errlen) ||
        s_bool(o, "flip_sin_to_cos", &cfg->flip_sin_to_cos, file, err, errlen) ||
        s_int(o, "freq_shift", &cfg->freq_shift, file, err, errlen) ||
        s_bool(o, "upcast_attention", &cfg->upcast_attention, file, err, errlen) ||
        s_bool(o, "center_input_sample", &cfg->center_input_sample, file, err, errlen) ||
        s_int(o, "downsample_padding", &cfg->downsample_padding, file, err, errlen) ||
        s_double(o, "mid_block_scale_factor", &cfg->mid_block_scale_factor, file, err, errlen) ||
        s_str(o, "act_fn", cfg->act_fn, file, err, errlen))
        return -1;
    if (n_ch != n_down || n_ch != n_up) {
        s_fail(err, errlen, file,
               "block_out_channels, down_block_types and up_block_types differ in length "
               "(%d, %d, %d)",
               n_ch, n_down, n_up);
        return -1;
    }
    cfg->n_blocks = n_ch;
    /* diffusers: num_attention_heads = num_attention_heads or attention_head_dim. */
    if (s_heads(o, "attention_head_dim", cfg, file, err, errlen) ||
        s_heads(o, "num_attention_heads", cfg, file, err, errlen))
        return -1;
    const json_t *tl = json_object_get(o, "transformer_layers_per_block");
    if (tl && !(json_is_integer(tl) && json_integer_value(tl) == 1)) {
        s_fail(err, errlen, file, "field \"transformer_layers_per_block\" must be 1 (SD 1.x)");
        return -1;
    }
    static const char *must_be_null[] = {
        "class_embed_type",       "addition_embed_type",
        "encoder_hid_dim",        "time_cond_proj_dim",
        "num_class_embeds",       "time_embedding_dim",
        "time_embedding_act_fn",  "timestep_post_act",
        "cross_attention_norm",   "projection_class_embeddings_input_dim",
        "addition_time_embed_dim"};
    for (size_t i = 0; i < sizeof must_be_null / sizeof *must_be_null; i++)
        if (s_require_absent_or_null(o, must_be_null[i], file, err, errlen)) return -1;
    /* Options whose other values change the network: only SD 1.x's value (the diffusers default) is
     * implemented. */
    static const struct {
        const char *key, *json;
    } fixed[] = {
        {"only_cross_attention", "false"},
        {"dual_cross_attention", "false"},
        {"resnet_time_scale_shift", "\"default\""},
        {"time_embedding_type", "\"positional\""},
        {"conv_in_kernel", "3"},
        {"conv_out_kernel", "3"},
        {"attention_type", "\"default\""},
        {"class_embeddings_concat", "false"},
        {"resnet_skip_time_act", "false"},
        {"resnet_out_scale_factor", "1.0"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        const json_t *v = json_object_get(o, fixed[i].key);
        if (!v || json_is_null(v)) continue;
        json_t *want = json_loads(fixed[i].json, JSON_DECODE_ANY, NULL);
        /* 1.0 and 1 are the same setting. */
        int same = json_equal(v, want) || (json_is_number(v) && json_is_number(want) &&
                                           json_number_value(v) == json_number_value(want));
        json_decref(want);
        if (!same) {
            s_fail(err, errlen, file, "field \"%s\" must be %s (only SD 1.x UNets are supported)",
                   fixed[i].key, fixed[i].json);
            return -1;
        }
    }
    return dq_unet_config_check(cfg, file, err, errlen);
}

int dq_unet_config_check(const dq_unet_config_t *c, const char *file, char *err, size_t errlen) {
    if (c->n_blocks < 1 || c->n_blocks > DQ_MAX_BLOCKS || c->in_channels <= 0 ||
        c->out_channels <= 0 || c->layers_per_block <= 0 || c->cross_attention_dim <= 0 ||
        c->norm_num_groups <= 0 || c->sample_size <= 0) {
        s_fail(err, errlen, file, "UNet sizes must be positive");
        return -1;
    }
    for (int i = 0; i < c->n_blocks; i++) {
        int ch = c->block_out_channels[i];
        if (ch <= 0 || ch % c->norm_num_groups) {
            s_fail(err, errlen, file,
                   "block_out_channels[%d] = %d is not a positive multiple of norm_num_groups %d",
                   i, ch, c->norm_num_groups);
            return -1;
        }
        if (c->num_heads[i] <= 0 || ch % c->num_heads[i]) {
            s_fail(err, errlen, file,
                   "block_out_channels[%d] = %d is not divisible by %d attention heads", i, ch,
                   c->num_heads[i]);
            return -1;
        }
        if (strcmp(c->down_block_types[i], "CrossAttnDownBlock2D") &&
            strcmp(c->down_block_types[i], "DownBlock2D")) {
            s_fail(err, errlen, file,
                   "down_block_types[%d] = \"%s\" is not supported (CrossAttnDownBlock2D or "
                   "DownBlock2D)",
                   i, c->down_block_types[i]);
            return -1;
        }
        if (strcmp(c->up_block_types[i], "CrossAttnUpBlock2D") &&
            strcmp(c->up_block_types[i], "UpBlock2D")) {
            s_fail(err, errlen, file,
                   "up_block_types[%d] = \"%s\" is not supported (CrossAttnUpBlock2D or "
                   "UpBlock2D)",
                   i, c->up_block_types[i]);
            return -1;
        }
    }
    if (strcmp(c->mid_block_type, "UNetMidBlock2DCrossAttn")) {
        s_fail(err, errlen, file,
               "mid_block_type \"%s\" is not supported (UNetMidBlock2DCrossAttn)",
               c->mid_block_type);
        return -1;
    }
    if (strcmp(c->act_fn, "silu")) {
        s_fail(err, errlen, file, "act_fn \"%s\" is not supported (silu)", c->act_fn);
        return -1;
    }
    if (c->block_out_channels[0] % 2) {
        s_fail(err, errlen, file,
               "block_out_channels[0] must be even (sinusoidal timestep embedding)");
        return -1;
    }
    return 0;
}

static json_t *s_int_array(const int *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *s_str_array(char (*v)[DQ_CONFIG_STR], int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *dq_unet_config_to_json(const dq_unet_config_t *c) {
    dq_unet_config_t m = *c; /* json_pack wants non-const arrays */
    json_t *heads =
        m.head_dim_is_list ? s_int_array(m.num_heads, m.n_blocks) : json_integer(m.num_heads[0]);
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:b, s:i, s:o, s:i, s:b, s:i, s:i, s:i, s:f, s:s, s:f, s:i, "
        "s:i, s:i, s:o, s:b, s:b}",
        "_class_name", "UNet2DConditionModel", "_diffusers_version", "0.42.1", "act_fn", m.act_fn,
        "attention_head_dim", heads, "block_out_channels",
        s_int_array(m.block_out_channels, m.n_blocks), "center_input_sample", m.center_input_sample,
        "cross_attention_dim", m.cross_attention_dim, "down_block_types",
        s_str_array(m.down_block_types, m.n_blocks), "downsample_padding", m.downsample_padding,
        "flip_sin_to_cos", m.flip_sin_to_cos, "freq_shift", m.freq_shift, "in_channels",
        m.in_channels, "layers_per_block", m.layers_per_block, "mid_block_scale_factor",
        m.mid_block_scale_factor, "mid_block_type", m.mid_block_type, "norm_eps", m.norm_eps,
        "norm_num_groups", m.norm_num_groups, "out_channels", m.out_channels, "sample_size",
        m.sample_size, "up_block_types", s_str_array(m.up_block_types, m.n_blocks),
        "use_linear_projection", m.use_linear_projection, "upcast_attention", m.upcast_attention);
}

/* ---- VAE */

void dq_vae_config_defaults(dq_vae_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->in_channels = 3;
    cfg->out_channels = 3;
    cfg->latent_channels = 4;
    cfg->sample_size = 32;
    cfg->n_blocks = 1;
    cfg->block_out_channels[0] = 64;
    s_copy(cfg->down_block_types[0], "DownEncoderBlock2D");
    s_copy(cfg->up_block_types[0], "UpDecoderBlock2D");
    cfg->layers_per_block = 1;
    cfg->norm_num_groups = 32;
    cfg->scaling_factor = 0.18215;
    cfg->force_upcast = true;
    s_copy(cfg->act_fn, "silu");
}

void dq_vae_config_sd15(dq_vae_config_t *cfg) {
    static const int ch[4] = {128, 256, 512, 512};
    dq_vae_config_defaults(cfg);
    cfg->sample_size = 512;
    cfg->n_blocks = 4;
    cfg->layers_per_block = 2;
    for (int i = 0; i < 4; i++) {
        cfg->block_out_channels[i] = ch[i];
        s_copy(cfg->down_block_types[i], "DownEncoderBlock2D");
        s_copy(cfg->up_block_types[i], "UpDecoderBlock2D");
    }
}

int dq_vae_config_from_json(dq_vae_config_t *cfg, const json_t *o, const char *file, char *err,
                            size_t errlen) {
    dq_vae_config_defaults(cfg);
    int n_ch = cfg->n_blocks, n_down = cfg->n_blocks, n_up = cfg->n_blocks;
    if (s_int(o, "in_channels", &cfg->in_channels, file, err, errlen) ||
        s_int(o, "out_channels", &cfg->out_channels, file, err, errlen) ||
        s_int(o, "latent_channels", &cfg->latent_channels, file, err, errlen) ||
        s_int(o, "sample_size", &cfg->sample_size, file, err, errlen) ||
        s_int_list(o, "block_out_channels", cfg->block_out_channels, &n_ch, file, err, errlen) ||
        s_str_list(o, "down_block_types", cfg->down_block_types, &n_down, file, err, errlen) ||
        s_str_list(o, "up_block_types", cfg->up_block_types, &n_up, file, err, errlen) ||
        s_int(o, "layers_per_block", &cfg->layers_per_block, file, err, errlen) ||
        s_int(o, "norm_num_groups", &cfg->norm_num_groups, file, err, errlen) ||
        s_double(o, "scaling_factor", &cfg->scaling_factor, file, err, errlen) ||
        s_bool(o, "force_upcast", &cfg->force_upcast, file, err, errlen) ||
        s_str(o, "act_fn", cfg->act_fn, file, err, errlen))
        return -1;
    if (n_ch != n_down || n_ch != n_up) {
        s_fail(err, errlen, file,
               "block_out_channels, down_block_types and up_block_types differ in length "
               "(%d, %d, %d)",
               n_ch, n_down, n_up);
        return -1;
    }
    cfg->n_blocks = n_ch;
    const json_t *v = json_object_get(o, "mid_block_add_attention");
    if (v && !json_is_true(v)) {
        s_fail(err, errlen, file, "field \"mid_block_add_attention\" must be true (SD 1.x)");
        return -1;
    }
    static const char *must_be_null[] = {"shift_factor", "latents_mean", "latents_std"};
    for (size_t i = 0; i < sizeof must_be_null / sizeof *must_be_null; i++)
        if (s_require_absent_or_null(o, must_be_null[i], file, err, errlen)) return -1;
    static const char *must_be_true[] = {"use_quant_conv", "use_post_quant_conv"};
    for (size_t i = 0; i < 2; i++) {
        v = json_object_get(o, must_be_true[i]);
        if (v && !json_is_true(v)) {
            s_fail(err, errlen, file, "field \"%s\" must be true (SD 1.x)", must_be_true[i]);
            return -1;
        }
    }
    return dq_vae_config_check(cfg, file, err, errlen);
}

int dq_vae_config_check(const dq_vae_config_t *c, const char *file, char *err, size_t errlen) {
    if (c->n_blocks < 1 || c->n_blocks > DQ_MAX_BLOCKS || c->in_channels <= 0 ||
        c->out_channels <= 0 || c->latent_channels <= 0 || c->layers_per_block <= 0 ||
        c->norm_num_groups <= 0) {
        s_fail(err, errlen, file, "VAE sizes must be positive");
        return -1;
    }
    for (int i = 0; i < c->n_blocks; i++) {
        if (c->block_out_channels[i] <= 0 || c->block_out_channels[i] % c->norm_num_groups) {
            s_fail(err, errlen, file,
                   "block_out_channels[%d] = %d is not a positive multiple of norm_num_groups %d",
                   i, c->block_out_channels[i], c->norm_num_groups);
            return -1;
        }
        if (strcmp(c->down_block_types[i], "DownEncoderBlock2D") ||
            strcmp(c->up_block_types[i], "UpDecoderBlock2D")) {
            s_fail(err, errlen, file,
                   "block %d: only DownEncoderBlock2D / UpDecoderBlock2D are supported", i);
            return -1;
        }
    }
    if (strcmp(c->act_fn, "silu")) {
        s_fail(err, errlen, file, "act_fn \"%s\" is not supported (silu)", c->act_fn);
        return -1;
    }
    return 0;
}

json_t *dq_vae_config_to_json(const dq_vae_config_t *c) {
    dq_vae_config_t m = *c;
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:o}",
                     "_class_name", "AutoencoderKL", "_diffusers_version", "0.42.1", "act_fn",
                     m.act_fn, "block_out_channels", s_int_array(m.block_out_channels, m.n_blocks),
                     "down_block_types", s_str_array(m.down_block_types, m.n_blocks),
                     "force_upcast", m.force_upcast, "in_channels", m.in_channels,
                     "latent_channels", m.latent_channels, "layers_per_block", m.layers_per_block,
                     "norm_num_groups", m.norm_num_groups, "out_channels", m.out_channels,
                     "sample_size", m.sample_size, "scaling_factor", m.scaling_factor,
                     "up_block_types", s_str_array(m.up_block_types, m.n_blocks));
}

/* ---- Scheduler */

/* SD 1.5's scheduler_config.json as published in 2022 (and written by the reference generator):
 * it has no timestep_spacing and no prediction_type, so other samplers keep their own defaults. */
void dq_scheduler_config_sd15(dq_scheduler_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    s_copy(cfg->class_name, "PNDMScheduler");
    dq_sched_config_sd15(&cfg->sched);
    cfg->sched.has &= ~(unsigned) (DQ_SCHED_HAS_TIMESTEP_SPACING | DQ_SCHED_HAS_PREDICTION_TYPE);
}

/* Reads an enumerated string key into *out with parse(); sets `bit` in *has when present. */
static int s_enum(const json_t *o, const char *key, int (*parse)(const char *), int *out,
                  unsigned *has, unsigned bit, const char *file, char *err, size_t errlen) {
    char text[DQ_CONFIG_STR] = "";
    if (s_str(o, key, text, file, err, errlen)) return -1;
    if (!text[0]) return 0;
    int v = parse(text);
    if (v < 0) {
        s_fail(err, errlen, file, "field \"%s\": \"%s\" is not supported", key, text);
        return -1;
    }
    *out = v;
    *has |= bit;
    return 0;
}

/* Present-key bookkeeping for the numeric and boolean keys. */
static int s_sched_int(const json_t *o, const char *key, int *out, unsigned *has, unsigned bit,
                       const char *file, char *err, size_t errlen) {
    if (!json_object_get(o, key) || json_is_null(json_object_get(o, key))) return 0;
    *has |= bit;
    return s_int(o, key, out, file, err, errlen);
}

static int s_sched_double(const json_t *o, const char *key, double *out, unsigned *has,
                          unsigned bit, const char *file, char *err, size_t errlen) {
    if (!json_object_get(o, key) || json_is_null(json_object_get(o, key))) return 0;
    *has |= bit;
    return s_double(o, key, out, file, err, errlen);
}

static int s_sched_bool(const json_t *o, const char *key, int *out, unsigned *has, unsigned bit,
                        const char *file, char *err, size_t errlen) {
    if (!json_object_get(o, key) || json_is_null(json_object_get(o, key))) return 0;
    bool b = false;
    if (s_bool(o, key, &b, file, err, errlen)) return -1;
    *out = b;
    *has |= bit;
    return 0;
}

int dq_scheduler_config_from_json(dq_scheduler_config_t *cfg, const json_t *o, const char *file,
                                  char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    dq_sched_config_init(&cfg->sched);
    if (s_str(o, "_class_name", cfg->class_name, file, err, errlen)) return -1;
    if (!cfg->class_name[0]) {
        s_fail(err, errlen, file, "missing \"_class_name\"");
        return -1;
    }
    dq_sched_config_t *s = &cfg->sched;
    int beta = 0, pred = 0, spacing = 0;
    if (s_sched_int(o, "num_train_timesteps", &s->num_train_timesteps, &s->has,
                    DQ_SCHED_HAS_NUM_TRAIN_TIMESTEPS, file, err, errlen) ||
        s_sched_double(o, "beta_start", &s->beta_start, &s->has, DQ_SCHED_HAS_BETA_START, file,
                       err, errlen) ||
        s_sched_double(o, "beta_end", &s->beta_end, &s->has, DQ_SCHED_HAS_BETA_END, file, err,
                       errlen) ||
        s_enum(o, "beta_schedule", dq_beta_schedule_parse, &beta, &s->has,
               DQ_SCHED_HAS_BETA_SCHEDULE, file, err, errlen) ||
        s_enum(o, "prediction_type", dq_prediction_type_parse, &pred, &s->has,
               DQ_SCHED_HAS_PREDICTION_TYPE, file, err, errlen) ||
        s_enum(o, "timestep_spacing", dq_timestep_spacing_parse, &spacing, &s->has,
               DQ_SCHED_HAS_TIMESTEP_SPACING, file, err, errlen) ||
        s_sched_int(o, "steps_offset", &s->steps_offset, &s->has, DQ_SCHED_HAS_STEPS_OFFSET, file,
                    err, errlen) ||
        s_sched_bool(o, "skip_prk_steps", &s->skip_prk_steps, &s->has,
                     DQ_SCHED_HAS_SKIP_PRK_STEPS, file, err, errlen) ||
        s_sched_bool(o, "set_alpha_to_one", &s->set_alpha_to_one, &s->has,
                     DQ_SCHED_HAS_SET_ALPHA_TO_ONE, file, err, errlen) ||
        s_sched_bool(o, "clip_sample", &s->clip_sample, &s->has, DQ_SCHED_HAS_CLIP_SAMPLE, file,
                     err, errlen) ||
        s_sched_double(o, "clip_sample_range", &s->clip_sample_range, &s->has,
                       DQ_SCHED_HAS_CLIP_SAMPLE_RANGE, file, err, errlen) ||
        s_sched_bool(o, "use_karras_sigmas", &s->use_karras_sigmas, &s->has,
                     DQ_SCHED_HAS_USE_KARRAS_SIGMAS, file, err, errlen) ||
        s_sched_int(o, "solver_order", &s->solver_order, &s->has, DQ_SCHED_HAS_SOLVER_ORDER, file,
                    err, errlen) ||
        s_sched_bool(o, "lower_order_final", &s->lower_order_final, &s->has,
                     DQ_SCHED_HAS_LOWER_ORDER_FINAL, file, err, errlen) ||
        s_sched_bool(o, "euler_at_final", &s->euler_at_final, &s->has,
                     DQ_SCHED_HAS_EULER_AT_FINAL, file, err, errlen) ||
        s_require_absent_or_null(o, "trained_betas", file, err, errlen))
        return -1;
    s->beta_schedule = (dq_beta_schedule_t) beta;
    s->prediction_type = (dq_prediction_type_t) pred;
    s->timestep_spacing = (dq_timestep_spacing_t) spacing;
    if ((s->has & DQ_SCHED_HAS_NUM_TRAIN_TIMESTEPS) && s->num_train_timesteps <= 0) {
        s_fail(err, errlen, file, "num_train_timesteps must be positive");
        return -1;
    }
    return 0;
}

json_t *dq_scheduler_config_to_json(const dq_scheduler_config_t *c) {
    const dq_sched_config_t *s = &c->sched;
    json_t *o = json_pack("{s:s, s:s, s:n}", "_class_name", c->class_name, "_diffusers_version",
                          "0.42.1", "trained_betas");
    if (!o) return NULL;
    static const char *const beta[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
    static const char *const pred[] = {"epsilon", "v_prediction"};
    /* Only the keys the configuration holds, so from_config behaves as it does on the source. */
    int rc = 0;
    if (s->has & DQ_SCHED_HAS_NUM_TRAIN_TIMESTEPS)
        rc |= json_object_set_new(o, "num_train_timesteps", json_integer(s->num_train_timesteps));
    if (s->has & DQ_SCHED_HAS_BETA_START)
        rc |= json_object_set_new(o, "beta_start", json_real(s->beta_start));
    if (s->has & DQ_SCHED_HAS_BETA_END)
        rc |= json_object_set_new(o, "beta_end", json_real(s->beta_end));
    if (s->has & DQ_SCHED_HAS_BETA_SCHEDULE)
        rc |= json_object_set_new(o, "beta_schedule", json_string(beta[s->beta_schedule]));
    if (s->has & DQ_SCHED_HAS_PREDICTION_TYPE)
        rc |= json_object_set_new(o, "prediction_type", json_string(pred[s->prediction_type]));
    if (s->has & DQ_SCHED_HAS_TIMESTEP_SPACING)
        rc |= json_object_set_new(o, "timestep_spacing",
                                  json_string(dq_timestep_spacing_name(s->timestep_spacing)));
    if (s->has & DQ_SCHED_HAS_STEPS_OFFSET)
        rc |= json_object_set_new(o, "steps_offset", json_integer(s->steps_offset));
    if (s->has & DQ_SCHED_HAS_SKIP_PRK_STEPS)
        rc |= json_object_set_new(o, "skip_prk_steps", json_boolean(s->skip_prk_steps));
    if (s->has & DQ_SCHED_HAS_SET_ALPHA_TO_ONE)
        rc |= json_object_set_new(o, "set_alpha_to_one", json_boolean(s->set_alpha_to_one));
    if (s->has & DQ_SCHED_HAS_CLIP_SAMPLE)
        rc |= json_object_set_new(o, "clip_sample", json_boolean(s->clip_sample));
    if (s->has & DQ_SCHED_HAS_CLIP_SAMPLE_RANGE)
        rc |= json_object_set_new(o, "clip_sample_range", json_real(s->clip_sample_range));
    if (s->has & DQ_SCHED_HAS_USE_KARRAS_SIGMAS)
        rc |= json_object_set_new(o, "use_karras_sigmas", json_boolean(s->use_karras_sigmas));
    if (s->has & DQ_SCHED_HAS_SOLVER_ORDER)
        rc |= json_object_set_new(o, "solver_order", json_integer(s->solver_order));
    if (s->has & DQ_SCHED_HAS_LOWER_ORDER_FINAL)
        rc |= json_object_set_new(o, "lower_order_final", json_boolean(s->lower_order_final));
    if (s->has & DQ_SCHED_HAS_EULER_AT_FINAL)
        rc |= json_object_set_new(o, "euler_at_final", json_boolean(s->euler_at_final));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}
