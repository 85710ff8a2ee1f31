/* kernels/model_manifest.c: parameter names and shapes of the SD 1.x networks, built from their
 * configs the way transformers' CLIPTextModel and diffusers' UNet2DConditionModel / AutoencoderKL
 * build their modules (transformers 5 modeling_clip.py, diffusers 0.42 unet_2d_condition.py,
 * unet_2d_blocks.py, autoencoder_kl.py, vae.py, resnet.py, attention.py). Checked against those
 * libraries by tests/reference/manifest.py and tests/unit/test_model_manifest.c. */
#include "config.h"

#include "kernels/model_manifest.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dq_param_list_free(dq_param_list_t *list) {
    free(list->items);
    memset(list, 0, sizeof *list);
}

int64_t dq_param_list_numel(const dq_param_list_t *list) {
    int64_t total = 0;
    for (size_t i = 0; i < list->count; i++) {
        int64_t n = 1;
        for (int d = 0; d < list->items[i].ndim; d++)
            n *= list->items[i].shape[d];
        total += n;
    }
    return total;
}

/* Appends one parameter: ndim dims from the variadic int64 list, then the printf-style name. */
static void s_add(dq_param_list_t *l, dq_param_init_t init, int ndim, const int64_t *shape,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void s_add(dq_param_list_t *l, dq_param_init_t init, int ndim, const int64_t *shape,
                  const char *fmt, ...) {
    if (l->failed) return;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        dq_param_t *grown = realloc(l->items, cap * sizeof *grown);
        if (!grown) {
            l->failed = 1;
            return;
        }
        l->items = grown;
        l->cap = cap;
    }
    dq_param_t *p = &l->items[l->count++];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        p->shape[i] = shape[i];
    p->init = init;
}

/* nn.Linear(in, out): weight [out, in], bias [out]. */
static void s_linear(dq_param_list_t *l, const char *prefix, int64_t out, int64_t in, int bias) {
    s_add(l, DQ_INIT_NORMAL, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    if (bias) s_add(l, DQ_INIT_ZERO, 1, (int64_t[]){out}, "%s.bias", prefix);
}

/* nn.Conv2d(in, out, k): weight [out, in, k, k], bias [out]. */
static void s_conv(dq_param_list_t *l, const char *prefix, int64_t out, int64_t in, int64_t k) {
    s_add(l, DQ_INIT_NORMAL, 4, (int64_t[]){out, in, k, k}, "%s.weight", prefix);
    s_add(l, DQ_INIT_ZERO, 1, (int64_t[]){out}, "%s.bias", prefix);
}

/* LayerNorm / GroupNorm over c channels: weight and bias [c]. */
static void s_norm(dq_param_list_t *l, const char *prefix, int64_t c) {
    s_add(l, DQ_INIT_ONE, 1, (int64_t[]){c}, "%s.weight", prefix);
    s_add(l, DQ_INIT_ZERO, 1, (int64_t[]){c}, "%s.bias", prefix);
}

static const char *s_join(char *buf, const char *prefix, const char *suffix) {
    int n = snprintf(buf, DQ_PARAM_NAME, "%s.%s", prefix, suffix);
    assert(n > 0 && n < DQ_PARAM_NAME); /* our own names are short */
    (void) n;
    return buf;
}

/* ---- CLIP text encoder: text_model.{embeddings, encoder.layers.N, final_layer_norm}. */

int dq_manifest_clip(const dq_clip_config_t *c, dq_param_list_t *l) {
    int64_t h = c->hidden_size;
    char p[DQ_PARAM_NAME], q[DQ_PARAM_NAME];
    s_add(l, DQ_INIT_NORMAL, 2, (int64_t[]){c->vocab_size, h},
          "text_model.embeddings.token_embedding.weight");
    s_add(l, DQ_INIT_NORMAL, 2, (int64_t[]){c->max_position_embeddings, h},
          "text_model.embeddings.position_embedding.weight");
    for (int i = 0; i < c->num_hidden_layers; i++) {
        snprintf(p, sizeof p, "text_model.encoder.layers.%d", i);
        s_linear(l, s_join(q, p, "self_attn.k_proj"), h, h, 1);
        s_linear(l, s_join(q, p, "self_attn.v_proj"), h, h, 1);
        s_linear(l, s_join(q, p, "self_attn.q_proj"), h, h, 1);
        s_linear(l, s_join(q, p, "self_attn.out_proj"), h, h, 1);
        s_norm(l, s_join(q, p, "layer_norm1"), h);
        s_linear(l, s_join(q, p, "mlp.fc1"), c->intermediate_size, h, 1);
        s_linear(l, s_join(q, p, "mlp.fc2"), h, c->intermediate_size, 1);
        s_norm(l, s_join(q, p, "layer_norm2"), h);
    }
    s_norm(l, "text_model.final_layer_norm", h);
    return l->failed ? -1 : 0;
}

/* ---- Shared by UNet and VAE. */

/* ResnetBlock2D(in, out, temb): norm1, conv1, [time_emb_proj], norm2, conv2, [conv_shortcut]. */
static void s_resnet(dq_param_list_t *l, const char *prefix, int64_t in, int64_t out,
                     int64_t temb) {
    char q[DQ_PARAM_NAME];
    s_norm(l, s_join(q, prefix, "norm1"), in);
    s_conv(l, s_join(q, prefix, "conv1"), out, in, 3);
    if (temb) s_linear(l, s_join(q, prefix, "time_emb_proj"), out, temb, 1);
    s_norm(l, s_join(q, prefix, "norm2"), out);
    s_conv(l, s_join(q, prefix, "conv2"), out, out, 3);
    if (in != out) s_conv(l, s_join(q, prefix, "conv_shortcut"), out, in, 1);
}

/* Attention's projections: to_q, to_k, to_v (with or without bias) and to_out.0 (always biased). */
static void s_attention(dq_param_list_t *l, const char *prefix, int64_t c, int64_t kv_dim,
                        int qkv_bias) {
    char q[DQ_PARAM_NAME];
    s_linear(l, s_join(q, prefix, "to_q"), c, c, qkv_bias);
    s_linear(l, s_join(q, prefix, "to_k"), c, kv_dim, qkv_bias);
    s_linear(l, s_join(q, prefix, "to_v"), c, kv_dim, qkv_bias);
    s_linear(l, s_join(q, prefix, "to_out.0"), c, c, 1);
}

/* ---- UNet */

/* Transformer2DModel with one BasicTransformerBlock; inner dim = heads * head_dim = c for SD 1.x.
 */
static void s_transformer(dq_param_list_t *l, const char *prefix, int64_t c,
                          const dq_unet_config_t *cfg) {
    char q[DQ_PARAM_NAME], b[DQ_PARAM_NAME];
    s_norm(l, s_join(q, prefix, "norm"), c);
    if (cfg->use_linear_projection)
        s_linear(l, s_join(q, prefix, "proj_in"), c, c, 1);
    else
        s_conv(l, s_join(q, prefix, "proj_in"), c, c, 1);
    snprintf(b, sizeof b, "%s.transformer_blocks.0", prefix);
    s_norm(l, s_join(q, b, "norm1"), c);
    s_attention(l, s_join(q, b, "attn1"), c, c, 0);
    s_norm(l, s_join(q, b, "norm2"), c);
    s_attention(l, s_join(q, b, "attn2"), c, cfg->cross_attention_dim, 0);
    s_norm(l, s_join(q, b, "norm3"), c);
    s_linear(l, s_join(q, b, "ff.net.0.proj"), 8 * c, c, 1); /* GEGLU: 2 * (4c) outputs */
    s_linear(l, s_join(q, b, "ff.net.2"), c, 4 * c, 1);
    if (cfg->use_linear_projection)
        s_linear(l, s_join(q, prefix, "proj_out"), c, c, 1);
    else
        s_conv(l, s_join(q, prefix, "proj_out"), c, c, 1);
}

int dq_manifest_unet(const dq_unet_config_t *c, dq_param_list_t *l) {
    const int n = c->n_blocks, L = c->layers_per_block;
    const int64_t c0 = c->block_out_channels[0], temb = 4 * c0;
    char p[DQ_PARAM_NAME];
    s_conv(l, "conv_in", c0, c->in_channels, 3);
    s_linear(l, "time_embedding.linear_1", temb, c0, 1);
    s_linear(l, "time_embedding.linear_2", temb, temb, 1);
    /* Down blocks: attentions are declared before resnets in CrossAttnDownBlock2D. */
    int64_t out = c0;
    for (int i = 0; i < n; i++) {
        int64_t in = out;
        out = c->block_out_channels[i];
        int cross = !strcmp(c->down_block_types[i], "CrossAttnDownBlock2D");
        for (int j = 0; cross && j < L; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, j);
            s_transformer(l, p, out, c);
        }
        for (int j = 0; j < L; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, j);
            s_resnet(l, p, j == 0 ? in : out, out, temb);
        }
        if (i < n - 1) {
            snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0.conv", i);
            s_conv(l, p, out, out, 3);
        }
    }
    /* Up blocks: each resnet also takes a skip connection from the down path. */
    const int64_t last = c->block_out_channels[n - 1];
    out = last;
    for (int i = 0; i < n; i++) {
        int64_t prev = out;
        out = c->block_out_channels[n - 1 - i];
        int64_t in = c->block_out_channels[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
        int cross = !strcmp(c->up_block_types[i], "CrossAttnUpBlock2D");
        for (int j = 0; cross && j < L + 1; j++) {
            snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
            s_transformer(l, p, out, c);
        }
        for (int j = 0; j < L + 1; j++) {
            int64_t skip = j == L ? in : out, res_in = j == 0 ? prev : out;
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
            s_resnet(l, p, res_in + skip, out, temb);
        }
        if (i < n - 1) {
            snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0.conv", i);
            s_conv(l, p, out, out, 3);
        }
    }
    s_transformer(l, "mid_block.attentions.0", last, c);
    s_resnet(l, "mid_block.resnets.0", last, last, temb);
    s_resnet(l, "mid_block.resnets.1", last, last, temb);
    s_norm(l, "conv_norm_out", c0);
    s_conv(l, "conv_out", c->out_channels, c0, 3);
    return l->failed ? -1 : 0;
}

/* ---- VAE */

/* UNetMidBlock2D with one attention: resnets.0, attentions.0 (GroupNorm + biased q/k/v/out),
 * resnets.1. */
static void s_vae_mid(dq_param_list_t *l, const char *prefix, int64_t c) {
    char q[DQ_PARAM_NAME];
    s_norm(l, s_join(q, prefix, "attentions.0.group_norm"), c);
    s_attention(l, s_join(q, prefix, "attentions.0"), c, c, 1);
    s_resnet(l, s_join(q, prefix, "resnets.0"), c, c, 0);
    s_resnet(l, s_join(q, prefix, "resnets.1"), c, c, 0);
}

int dq_manifest_vae(const dq_vae_config_t *c, dq_param_list_t *l) {
    const int n = c->n_blocks, L = c->layers_per_block;
    const int64_t c0 = c->block_out_channels[0], last = c->block_out_channels[n - 1];
    const int64_t lat = c->latent_channels;
    char p[DQ_PARAM_NAME];
    s_conv(l, "encoder.conv_in", c0, c->in_channels, 3);
    int64_t out = c0;
    for (int i = 0; i < n; i++) {
        int64_t in = out;
        out = c->block_out_channels[i];
        for (int j = 0; j < L; j++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
            s_resnet(l, p, j == 0 ? in : out, out, 0);
        }
        if (i < n - 1) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            s_conv(l, p, out, out, 3);
        }
    }
    s_vae_mid(l, "encoder.mid_block", last);
    s_norm(l, "encoder.conv_norm_out", last);
    s_conv(l, "encoder.conv_out", 2 * lat, last, 3); /* mean and log-variance */
    s_conv(l, "decoder.conv_in", last, lat, 3);
    out = last;
    for (int i = 0; i < n; i++) {
        int64_t prev = out;
        out = c->block_out_channels[n - 1 - i];
        for (int j = 0; j < L + 1; j++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            s_resnet(l, p, j == 0 ? prev : out, out, 0);
        }
        if (i < n - 1) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            s_conv(l, p, out, out, 3);
        }
    }
    s_vae_mid(l, "decoder.mid_block", last);
    s_norm(l, "decoder.conv_norm_out", c0);
    s_conv(l, "decoder.conv_out", c->out_channels, c0, 3);
    s_conv(l, "quant_conv", 2 * lat, 2 * lat, 1);
    s_conv(l, "post_quant_conv", lat, lat, 1);
    return l->failed ? -1 : 0;
}
