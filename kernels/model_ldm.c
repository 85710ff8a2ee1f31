/* kernels/model_ldm.c: LDM checkpoint key names -> diffusers names (follows diffusers 0.42
 * loaders/single_file_utils.py: convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
 * convert_ldm_clip_checkpoint). */
#include "config.h"

#include "kernels/model_ldm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_UNET "model.diffusion_model."
#define S_VAE  "first_stage_model."
#define S_CLIP "cond_stage_model.transformer."

/* Consumes `lit` at *p. */
static bool s_take(const char **p, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n)) return false;
    *p += n;
    return true;
}

/* Consumes a small decimal number (at most 4 digits, so no overflow) followed by '.'. */
static bool s_num(const char **p, int *v) {
    const char *s = *p;
    int n = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4)
        n = n * 10 + (*s++ - '0'), digits++;
    if (!digits || *s != '.') return false;
    *v = n;
    *p = s + 1;
    return true;
}

/* Writes a printf-formatted name; false when it does not fit. */
static bool s_out(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool s_out(char *out, size_t outlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t) n < outlen;
}

/* Renames inside a ResnetBlock: LDM's Sequential indices -> diffusers' attribute names. */
static const char *s_resnet_part(const char **p) {
    static const struct {
        const char *ldm, *diffusers;
    } map[] = {
        {"in_layers.0.", "norm1."},
        {"in_layers.2.", "conv1."},
        {"emb_layers.1.", "time_emb_proj."},
        {"out_layers.0.", "norm2."},
        {"out_layers.3.", "conv2."},
        {"skip_connection.", "conv_shortcut."},
        {"nin_shortcut.", "conv_shortcut."}, /* the VAE's spelling */
        {"norm1.", "norm1."},
        {"conv1.", "conv1."},
        {"norm2.", "norm2."},
        {"conv2.", "conv2."},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (s_take(p, map[i].ldm)) return map[i].diffusers;
    return NULL;
}

bool dq_ldm_is_checkpoint(const dq_safetensors_t *st) {
    for (size_t i = 0; i < dq_safetensors_count(st); i++)
        if (!strncmp(dq_safetensors_at(st, i)->name, S_UNET, strlen(S_UNET))) return true;
    return false;
}

int dq_ldm_layout_scan(const dq_safetensors_t *st, dq_ldm_layout_t *out, char *err, size_t errlen) {
    int first_op = -1, max_input = -1, max_down = -1;
    for (size_t i = 0; i < dq_safetensors_count(st); i++) {
        const char *p = dq_safetensors_at(st, i)->name;
        int b, m;
        if (s_take(&p, S_UNET "input_blocks.") && s_num(&p, &b) && s_num(&p, &m)) {
            if (b > max_input) max_input = b;
            if (m == 0 && !strncmp(p, "op.", 3) && (first_op < 0 || b < first_op)) first_op = b;
            continue;
        }
        p = dq_safetensors_at(st, i)->name;
        if (s_take(&p, S_VAE "encoder.down.") && s_num(&p, &b) && b > max_down) max_down = b;
    }
    if (max_input < 1 || max_down < 0) {
        snprintf(err, errlen,
                 "%s: not an SD 1.x checkpoint (no %sinput_blocks.* or %sencoder.down.* tensors)",
                 dq_safetensors_path(st), S_UNET, S_VAE);
        return -1;
    }
    /* Down block i, layer j is input block 1 + i*(L+1) + j; the downsampler of block 0 sits at L+1.
     * With a single block there is no downsampler and every input block but conv_in is a layer. */
    out->unet_layers = first_op > 0 ? first_op - 1 : max_input;
    out->vae_blocks = max_down + 1;
    return 0;
}

static int s_unet(const dq_ldm_layout_t *lay, const char *p, char *out, size_t n) {
    const int L = lay->unet_layers;
    int b, m;
    const char *r;
    if (s_take(&p, "time_embed.0.")) return s_out(out, n, "time_embedding.linear_1.%s", p) ? 1 : -1;
    if (s_take(&p, "time_embed.2.")) return s_out(out, n, "time_embedding.linear_2.%s", p) ? 1 : -1;
    if (s_take(&p, "input_blocks.0.0.")) return s_out(out, n, "conv_in.%s", p) ? 1 : -1;
    if (s_take(&p, "out.0.")) return s_out(out, n, "conv_norm_out.%s", p) ? 1 : -1;
    if (s_take(&p, "out.2.")) return s_out(out, n, "conv_out.%s", p) ? 1 : -1;
    if (s_take(&p, "middle_block.1."))
        return s_out(out, n, "mid_block.attentions.0.%s", p) ? 1 : -1;
    if (s_take(&p, "middle_block.")) {
        if (!s_num(&p, &m) || (m != 0 && m != 2) || !(r = s_resnet_part(&p))) return -1;
        return s_out(out, n, "mid_block.resnets.%d.%s%s", m / 2, r, p) ? 1 : -1;
    }
    if (s_take(&p, "input_blocks.")) {
        if (!s_num(&p, &b) || b < 1 || !s_num(&p, &m)) return -1;
        int i = (b - 1) / (L + 1), j = (b - 1) % (L + 1);
        if (j == L) /* the block's downsampler */
            return m == 0 && s_take(&p, "op.") &&
                           s_out(out, n, "down_blocks.%d.downsamplers.0.conv.%s", i, p)
                       ? 1
                       : -1;
        if (m == 1) return s_out(out, n, "down_blocks.%d.attentions.%d.%s", i, j, p) ? 1 : -1;
        if (m != 0 || !(r = s_resnet_part(&p))) return -1;
        return s_out(out, n, "down_blocks.%d.resnets.%d.%s%s", i, j, r, p) ? 1 : -1;
    }
    if (s_take(&p, "output_blocks.")) {
        if (!s_num(&p, &b) || !s_num(&p, &m)) return -1;
        int i = b / (L + 1), j = b % (L + 1);
        /* Upsample is the last module of a block's last layer: index 1 or 2 (after an attention).
         */
        if (m > 0 && s_take(&p, "conv."))
            return s_out(out, n, "up_blocks.%d.upsamplers.0.conv.%s", i, p) ? 1 : -1;
        if (m == 1) return s_out(out, n, "up_blocks.%d.attentions.%d.%s", i, j, p) ? 1 : -1;
        if (m != 0 || !(r = s_resnet_part(&p))) return -1;
        return s_out(out, n, "up_blocks.%d.resnets.%d.%s%s", i, j, r, p) ? 1 : -1;
    }
    return -1;
}

/* The VAE mid block, after "encoder.mid." or "decoder.mid.". */
static int s_vae_mid(const char *coder, const char *p, char *out, size_t n, bool *squeeze) {
    static const struct {
        const char *ldm, *diffusers;
    } attn[] = {{"norm.", "group_norm."},
                {"q.", "to_q."},
                {"k.", "to_k."},
                {"v.", "to_v."},
                {"proj_out.", "to_out.0."}};
    const char *r;
    if (s_take(&p, "block_1.") && (r = s_resnet_part(&p)))
        return s_out(out, n, "%s.mid_block.resnets.0.%s%s", coder, r, p) ? 1 : -1;
    if (s_take(&p, "block_2.") && (r = s_resnet_part(&p)))
        return s_out(out, n, "%s.mid_block.resnets.1.%s%s", coder, r, p) ? 1 : -1;
    if (!s_take(&p, "attn_1.")) return -1;
    for (size_t i = 0; i < sizeof attn / sizeof *attn; i++)
        if (s_take(&p, attn[i].ldm)) {
            *squeeze = i > 0 && !strcmp(p, "weight");
            return s_out(out, n, "%s.mid_block.attentions.0.%s%s", coder, attn[i].diffusers, p)
                       ? 1
                       : -1;
        }
    return -1;
}

static int s_vae(const dq_ldm_layout_t *lay, const char *p, char *out, size_t n, bool *squeeze) {
    static const char *same[] = {"encoder.conv_in.",  "encoder.conv_out.", "decoder.conv_in.",
                                 "decoder.conv_out.", "quant_conv.",       "post_quant_conv."};
    int i, j;
    const char *r;
    for (size_t k = 0; k < sizeof same / sizeof *same; k++)
        if (!strncmp(p, same[k], strlen(same[k]))) return s_out(out, n, "%s", p) ? 1 : -1;
    if (s_take(&p, "encoder.norm_out."))
        return s_out(out, n, "encoder.conv_norm_out.%s", p) ? 1 : -1;
    if (s_take(&p, "decoder.norm_out."))
        return s_out(out, n, "decoder.conv_norm_out.%s", p) ? 1 : -1;
    if (s_take(&p, "encoder.mid.")) return s_vae_mid("encoder", p, out, n, squeeze);
    if (s_take(&p, "decoder.mid.")) return s_vae_mid("decoder", p, out, n, squeeze);
    if (s_take(&p, "encoder.down.")) {
        if (!s_num(&p, &i)) return -1;
        if (s_take(&p, "downsample.conv."))
            return s_out(out, n, "encoder.down_blocks.%d.downsamplers.0.conv.%s", i, p) ? 1 : -1;
        if (!s_take(&p, "block.") || !s_num(&p, &j) || !(r = s_resnet_part(&p))) return -1;
        return s_out(out, n, "encoder.down_blocks.%d.resnets.%d.%s%s", i, j, r, p) ? 1 : -1;
    }
    if (s_take(&p, "decoder.up.")) {
        if (!s_num(&p, &i) || i >= lay->vae_blocks) return -1;
        i = lay->vae_blocks - 1 - i; /* LDM counts up blocks from the lowest resolution's end */
        if (s_take(&p, "upsample.conv."))
            return s_out(out, n, "decoder.up_blocks.%d.upsamplers.0.conv.%s", i, p) ? 1 : -1;
        if (!s_take(&p, "block.") || !s_num(&p, &j) || !(r = s_resnet_part(&p))) return -1;
        return s_out(out, n, "decoder.up_blocks.%d.resnets.%d.%s%s", i, j, r, p) ? 1 : -1;
    }
    return -1;
}

int dq_ldm_map_key(const dq_ldm_layout_t *layout, const char *key, char *out, size_t outlen,
                   bool *squeeze) {
    const char *p = key;
    *squeeze = false;
    if (s_take(&p, S_UNET)) return s_unet(layout, p, out, outlen) > 0 ? DQ_PART_UNET : -1;
    if (s_take(&p, S_VAE)) return s_vae(layout, p, out, outlen, squeeze) > 0 ? DQ_PART_VAE : -1;
    if (s_take(&p, S_CLIP)) {
        /* Newer exports keep transformers' "text_model." level, the oldest ones start at
         * "embeddings.". */
        const char *prefix = strncmp(p, "text_model.", 11) ? "text_model." : "";
        return s_out(out, outlen, "%s%s", prefix, p) ? DQ_PART_TEXT_ENCODER : -1;
    }
    return -1;
}
