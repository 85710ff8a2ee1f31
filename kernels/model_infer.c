/* kernels/model_infer.c: configs of a single-file checkpoint, from SD 1.5's plus the tensors'
 * shapes. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernels/model_files.h"

typedef struct {
    dq_weight_lookup_fn find;
    void *ctx;
} s_lookup_t;

/* dims[dim] of the named weight, or -1 when absent or of lower rank. */
static int64_t s_dim(const s_lookup_t *l, dq_model_part_t part, int dim, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int64_t s_dim(const s_lookup_t *l, dq_model_part_t part, int dim, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= sizeof name) return -1;
    const dq_weight_t *w = l->find(l->ctx, part, name);
    return w && w->ndim > dim ? w->shape[dim] : -1;
}

/* Sets *field from a found size that fits an int; leaves it otherwise. */
static void s_set(int *field, int64_t v) {
    if (v > 0 && v <= 1000000) *field = (int) v;
}

/* Counts consecutive indices i for which the formatted name (with i) exists, starting at 0. */
#define S_COUNT(l, part, fmt, ...)                                                                 \
    ({                                                                                             \
        int n_ = 0;                                                                                \
        while (n_ < 1000 && s_dim((l), (part), 0, (fmt), ##__VA_ARGS__, n_) > 0)                   \
            n_++;                                                                                  \
        n_;                                                                                        \
    })

static void s_clip(dq_clip_config_t *c, const s_lookup_t *l) {
    const dq_model_part_t P = DQ_PART_TEXT_ENCODER;
    s_set(&c->vocab_size, s_dim(l, P, 0, "text_model.embeddings.token_embedding.weight"));
    s_set(&c->hidden_size, s_dim(l, P, 1, "text_model.embeddings.token_embedding.weight"));
    s_set(&c->max_position_embeddings,
          s_dim(l, P, 0, "text_model.embeddings.position_embedding.weight"));
    s_set(&c->intermediate_size, s_dim(l, P, 0, "text_model.encoder.layers.0.mlp.fc1.weight"));
    s_set(&c->num_hidden_layers, S_COUNT(l, P, "text_model.encoder.layers.%d.mlp.fc1.weight"));
    c->projection_dim = c->hidden_size;
    /* Heads are not visible in the shapes: CLIP models use 64-wide heads (12 for ViT-L's 768); for
     * widths that are not a multiple of 64, the largest divisor up to 12. */
    if (c->hidden_size % 64 == 0) {
        c->num_attention_heads = c->hidden_size / 64;
    } else {
        c->num_attention_heads = 1;
        for (int h = 12; h > 1; h--)
            if (c->hidden_size % h == 0) {
                c->num_attention_heads = h;
                break;
            }
    }
}

static void s_unet(dq_unet_config_t *c, const s_lookup_t *l) {
    const dq_model_part_t P = DQ_PART_UNET;
    s_set(&c->in_channels, s_dim(l, P, 1, "conv_in.weight"));
    s_set(&c->out_channels, s_dim(l, P, 0, "conv_out.weight"));
    int n = S_COUNT(l, P, "down_blocks.%d.resnets.0.conv1.weight");
    if (n >= 1 && n <= DQ_MAX_BLOCKS) {
        c->n_blocks = n;
        for (int i = 0; i < n; i++) {
            s_set(&c->block_out_channels[i],
                  s_dim(l, P, 0, "down_blocks.%d.resnets.0.conv1.weight", i));
            bool down_cross = s_dim(l, P, 0, "down_blocks.%d.attentions.0.norm.weight", i) > 0;
            bool up_cross = s_dim(l, P, 0, "up_blocks.%d.attentions.0.norm.weight", i) > 0;
            strcpy(c->down_block_types[i], down_cross ? "CrossAttnDownBlock2D" : "DownBlock2D");
            strcpy(c->up_block_types[i], up_cross ? "CrossAttnUpBlock2D" : "UpBlock2D");
            if (i > 0) c->num_heads[i] = c->num_heads[0];
        }
    }
    s_set(&c->layers_per_block, S_COUNT(l, P, "down_blocks.0.resnets.%d.conv1.weight"));
    s_set(&c->cross_attention_dim,
          s_dim(l, P, 1, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"));
    /* SD 2.x-style linear projections have 2-dim proj_in weights. */
    c->use_linear_projection = s_dim(l, P, 2, "mid_block.attentions.0.proj_in.weight") < 0 &&
                               s_dim(l, P, 1, "mid_block.attentions.0.proj_in.weight") > 0;
}

static void s_vae(dq_vae_config_t *c, const s_lookup_t *l) {
    const dq_model_part_t P = DQ_PART_VAE;
    s_set(&c->in_channels, s_dim(l, P, 1, "encoder.conv_in.weight"));
    s_set(&c->out_channels, s_dim(l, P, 0, "decoder.conv_out.weight"));
    s_set(&c->latent_channels, s_dim(l, P, 0, "post_quant_conv.weight"));
    int n = S_COUNT(l, P, "encoder.down_blocks.%d.resnets.0.conv1.weight");
    if (n >= 1 && n <= DQ_MAX_BLOCKS) {
        c->n_blocks = n;
        for (int i = 0; i < n; i++) {
            s_set(&c->block_out_channels[i],
                  s_dim(l, P, 0, "encoder.down_blocks.%d.resnets.0.conv1.weight", i));
            strcpy(c->down_block_types[i], "DownEncoderBlock2D");
            strcpy(c->up_block_types[i], "UpDecoderBlock2D");
        }
    }
    s_set(&c->layers_per_block, S_COUNT(l, P, "encoder.down_blocks.0.resnets.%d.conv1.weight"));
}

int dq_model_infer_configs(dq_model_configs_t *cfg, dq_weight_lookup_fn find, void *ctx,
                           const char *file, char *err, size_t errlen) {
    s_lookup_t l = {find, ctx};
    dq_model_preset("sd15", cfg);
    s_clip(&cfg->clip, &l);
    s_unet(&cfg->unet, &l);
    s_vae(&cfg->vae, &l);
    if (dq_clip_config_check(&cfg->clip, file, err, errlen) ||
        dq_unet_config_check(&cfg->unet, file, err, errlen) ||
        dq_vae_config_check(&cfg->vae, file, err, errlen))
        return -1;
    return 0;
}
