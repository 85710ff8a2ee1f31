/* kernels/vae_decoder.c: the VAE decoder (diffusers AutoencoderKL.decode) on the engine runtime.
 *
 * Follows diffusers 0.42 models/autoencoders/autoencoder_kl.py (_decode: post_quant_conv, then
 * Decoder), autoencoders/vae.py (Decoder), unets/unet_2d_blocks.py (UNetMidBlock2D,
 * UpDecoderBlock2D), resnet.py (ResnetBlock2D, Upsample2D) and attention_processor.py
 * (AttnProcessor2_0 on 4-D input: group_norm, q/k/v, SDPA, to_out.0, residual). Every norm has
 * eps 1e-6; the mid attention has one head of C channels (attention_head_dim = C).
 *
 * Memory: two regions A and B, each as large as the largest activation, take turns as a block's
 * input and output; each block's temporaries are taken from the arena above them and released
 * when the block ends. dq_vae_decoder_arena_bytes walks the same blocks to size it. */
#include "kernels/vae_decoder.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/dtype.h"
#include "kernels/layout.h"
#include "kernels/ops.h"
#include "kernels/weights.h"

#define S_EPS 1e-6f

/* ResnetBlock2D without time embedding (borrowed parameters). */
typedef struct {
    int64_t cin, cout;
    const dq_tensor_t *norm1_w, *norm1_b, *conv1_w, *conv1_b;
    const dq_tensor_t *norm2_w, *norm2_b, *conv2_w, *conv2_b;
    const dq_tensor_t *short_w, *short_b; /* NULL when cin == cout */
} s_resnet_t;

/* The mid block's Attention (GroupNorm + biased q/k/v/out). */
typedef struct {
    const dq_tensor_t *gn_w, *gn_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
} s_attn_t;

/* UpDecoderBlock2D. */
typedef struct {
    s_resnet_t *resnets;            /* owned: layers_per_block + 1 */
    const dq_tensor_t *up_w, *up_b; /* NULL for the last block */
} s_up_t;

struct dq_vae_decoder {
    dq_backend_t *be;      /* borrowed */
    dq_weights_t *weights; /* owned */
    dq_vae_config_t cfg;
    dq_dtype_t act;        /* every activation's dtype inside the decoder: F32, F16 or BF16 */
    bool nhwc;             /* channels-last activations, KRSC conv weights (dq_backend_use_nhwc) */
    const dq_tensor_t *pq_w, *pq_b, *in_w, *in_b, *nout_w, *nout_b, *out_w, *out_b;
    s_resnet_t mid_res[2];
    s_attn_t mid_attn;
    s_up_t up[DQ_MAX_BLOCKS];
    float *stage;     /* owned: host copy of the latents for the exact division */
    uint16_t *stage16; /* owned: the quotients rounded to F16/BF16 activations, stage_cap long */
    size_t stage_cap; /* floats in stage */
};

static size_t s_al(size_t n) {
    return (n + 63) & ~(size_t) 63;
}

#define S_GET(field, ...)                                                                          \
    do {                                                                                           \
        if (!((field) = dq_weights_getf(self->weights, __VA_ARGS__))) {                            \
            snprintf(err, errlen, "vae decoder: missing weight " __VA_ARGS__);                     \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* Looks up a resnet's parameters under prefix (a printf format with one %d... pair). */
static int s_get_resnet(dq_vae_decoder_t *self, s_resnet_t *r, const char *prefix, int64_t cin,
                        int64_t cout, char *err, size_t errlen) {
    r->cin = cin;
    r->cout = cout;
    S_GET(r->norm1_w, "%s.norm1.weight", prefix);
    S_GET(r->norm1_b, "%s.norm1.bias", prefix);
    S_GET(r->conv1_w, "%s.conv1.weight", prefix);
    S_GET(r->conv1_b, "%s.conv1.bias", prefix);
    S_GET(r->norm2_w, "%s.norm2.weight", prefix);
    S_GET(r->norm2_b, "%s.norm2.bias", prefix);
    S_GET(r->conv2_w, "%s.conv2.weight", prefix);
    S_GET(r->conv2_b, "%s.conv2.bias", prefix);
    if (cin != cout) {
        S_GET(r->short_w, "%s.conv_shortcut.weight", prefix);
        S_GET(r->short_b, "%s.conv_shortcut.bias", prefix);
    }
    return 0;
fail:
    return -1;
}

dq_vae_decoder_t *dq_vae_decoder_new(dq_backend_t *be, const dq_model_t *model,
                                     dq_dtype_t matrix_dtype, dq_dtype_t act_dtype, char *err,
                                     size_t errlen) {
    if (!dq_backend_activation_usable(be, act_dtype, "vae decoder", err, errlen)) return NULL;
    dq_vae_decoder_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "vae decoder: out of memory");
        return NULL;
    }
    self->be = be;
    self->act = act_dtype;
    self->nhwc = dq_backend_use_nhwc(be, matrix_dtype, act_dtype);
    self->cfg = model->cfg.vae;
    const dq_vae_config_t *c = &self->cfg;
    if (dq_vae_config_check(c, model->path, err, errlen) < 0) goto fail;
    self->weights =
        dq_weights_new_layout(be, model, DQ_PART_VAE, matrix_dtype, self->nhwc, err, errlen);
    if (!self->weights) goto fail;
    S_GET(self->pq_w, "post_quant_conv.weight");
    S_GET(self->pq_b, "post_quant_conv.bias");
    S_GET(self->in_w, "decoder.conv_in.weight");
    S_GET(self->in_b, "decoder.conv_in.bias");
    S_GET(self->nout_w, "decoder.conv_norm_out.weight");
    S_GET(self->nout_b, "decoder.conv_norm_out.bias");
    S_GET(self->out_w, "decoder.conv_out.weight");
    S_GET(self->out_b, "decoder.conv_out.bias");
    const int n = c->n_blocks;
    const int64_t last = c->block_out_channels[n - 1];
    if (s_get_resnet(self, &self->mid_res[0], "decoder.mid_block.resnets.0", last, last, err,
                     errlen) ||
        s_get_resnet(self, &self->mid_res[1], "decoder.mid_block.resnets.1", last, last, err,
                     errlen))
        goto fail;
    s_attn_t *at = &self->mid_attn;
#define P "decoder.mid_block.attentions.0."
    S_GET(at->gn_w, P "group_norm.weight");
    S_GET(at->gn_b, P "group_norm.bias");
    S_GET(at->q_w, P "to_q.weight");
    S_GET(at->q_b, P "to_q.bias");
    S_GET(at->k_w, P "to_k.weight");
    S_GET(at->k_b, P "to_k.bias");
    S_GET(at->v_w, P "to_v.weight");
    S_GET(at->v_b, P "to_v.bias");
    S_GET(at->o_w, P "to_out.0.weight");
    S_GET(at->o_b, P "to_out.0.bias");
#undef P
    int64_t out = last;
    for (int i = 0; i < n; i++) {
        int64_t prev = out;
        out = c->block_out_channels[n - 1 - i];
        s_up_t *u = &self->up[i];
        u->resnets = calloc((size_t) c->layers_per_block + 1, sizeof *u->resnets);
        if (!u->resnets) {
            snprintf(err, errlen, "vae decoder: out of memory");
            goto fail;
        }
        for (int j = 0; j <= c->layers_per_block; j++) {
            char prefix[96];
            snprintf(prefix, sizeof prefix, "decoder.up_blocks.%d.resnets.%d", i, j);
            if (s_get_resnet(self, &u->resnets[j], prefix, j == 0 ? prev : out, out, err, errlen))
                goto fail;
        }
        if (i < n - 1) {
            S_GET(u->up_w, "decoder.up_blocks.%d.upsamplers.0.conv.weight", i);
            S_GET(u->up_b, "decoder.up_blocks.%d.upsamplers.0.conv.bias", i);
        }
    }
    return self;
fail:
    dq_vae_decoder_destroy(&self);
    return NULL;
}

void dq_vae_decoder_destroy(dq_vae_decoder_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_vae_decoder_t *self = *self_p;
    *self_p = NULL;
    for (int i = 0; i < DQ_MAX_BLOCKS; i++)
        free(self->up[i].resnets);
    dq_weights_destroy(&self->weights);
    free(self->stage);
    free(self->stage16);
    free(self);
}

int dq_vae_decoder_factor(const dq_vae_decoder_t *self) {
    return 1 << (self->cfg.n_blocks - 1);
}
int dq_vae_decoder_latent_channels(const dq_vae_decoder_t *self) {
    return self->cfg.latent_channels;
}
int dq_vae_decoder_out_channels(const dq_vae_decoder_t *self) {
    return self->cfg.out_channels;
}
double dq_vae_decoder_scaling_factor(const dq_vae_decoder_t *self) {
    return self->cfg.scaling_factor;
}

/* ---- Sizing: the same walk as the forward pass, in bytes. plane = n*h*w positions at the
 * current resolution, es = bytes per activation element; act = largest activation; scratch =
 * largest temporaries of one block. */

typedef struct {
    size_t act, scratch;
} s_need_t;

static void s_max(size_t *m, size_t v) {
    if (v > *m) *m = v;
}

static void s_need_resnet(s_need_t *nd, const s_resnet_t *r, size_t plane, size_t es) {
    size_t wide = (size_t) (r->cin > r->cout ? r->cin : r->cout);
    s_max(&nd->act, (size_t) r->cout * plane * es);
    s_max(&nd->scratch, s_al(wide * plane * es) + s_al((size_t) r->cout * plane * es));
}

/* Fills nd for n latents of h x w; -1 when a size is < 1 or too large for size_t. */
static int s_plan(const dq_vae_decoder_t *self, int64_t n, int64_t h, int64_t w, s_need_t *nd) {
    const dq_vae_config_t *c = &self->cfg;
    const int nb = c->n_blocks;
    /* images up to 2^20 pixels a side, batches up to 2^16 (then nothing below overflows) */
    const int64_t max_side = ((int64_t) 1 << 20) >> (nb - 1);
    if (n < 1 || h < 1 || w < 1 || n > (1 << 16) || h > max_side || w > max_side) return -1;
    /* The whole image times the widest layer bounds every product below. */
    size_t f = (size_t) 1 << (nb - 1);
    size_t full = (size_t) n * (size_t) h * f * (size_t) w * f;
    size_t widest = (size_t) c->latent_channels;
    for (int i = 0; i < nb; i++)
        s_max(&widest, (size_t) c->block_out_channels[i]);
    if (full > SIZE_MAX / 64 / (widest * sizeof(float))) return -1;
    size_t plane = (size_t) n * (size_t) h * (size_t) w;
    const size_t last = (size_t) c->block_out_channels[nb - 1], es = dq_dtype_size(self->act);
    nd->act = (size_t) c->latent_channels * plane * es;
    nd->scratch = 0;
    s_max(&nd->act, last * plane * es); /* conv_in */
    s_need_resnet(nd, &self->mid_res[0], plane, es);
    s_max(&nd->scratch, 4 * s_al(last * plane * es)); /* attention: xt, q, k, v */
    s_need_resnet(nd, &self->mid_res[1], plane, es);
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j <= c->layers_per_block; j++)
            s_need_resnet(nd, &self->up[i].resnets[j], plane, es);
        if (i < nb - 1) {
            size_t ch = (size_t) self->up[i].resnets[0].cout;
            plane *= 4;
            s_max(&nd->scratch, s_al(ch * plane * es)); /* upsampled input */
            s_max(&nd->act, ch * plane * es);
        }
    }
    /* conv_norm_out + SiLU before conv_out; conv_out's output in the activation dtype and
     * layout before its conversion to the F32 NCHW image when those differ */
    s_max(&nd->scratch, s_al((size_t) c->block_out_channels[0] * plane * es) +
                            (self->act == DQ_DTYPE_F32 && !self->nhwc
                                 ? 0
                                 : s_al((size_t) c->out_channels * plane * es)));
    nd->act = s_al(nd->act);
    return 0;
}

size_t dq_vae_decoder_arena_bytes(const dq_vae_decoder_t *self, int n, int h, int w) {
    s_need_t nd;
    if (s_plan(self, n, h, w, &nd) < 0) return 0;
    return 2 * nd.act + nd.scratch;
}

size_t dq_vae_decoder_arena_tensors(const dq_vae_decoder_t *self) {
    (void) self;
    return 2 + 4; /* regions A and B, then at most 4 temporaries at a time (attention) */
}

/* ---- Forward */

/* Shapes below are written NCHW; channels last they are the same tensors as [N, H, W, C]
 * (kernels/layout.h). */

/* A view of `region`'s memory as a contiguous [n, c, h, w] tensor of its dtype in the decoder's
 * layout (fits by construction). */
static int s_view(const dq_vae_decoder_t *self, dq_tensor_t *v, const dq_tensor_t *region,
                  int64_t n, int64_t c, int64_t h, int64_t w, const char *name) {
    int64_t shape[4];
    dq_layout_shape(self->nhwc, n, c, h, w, shape);
    return dq_tensor_init(v, region->dtype, 4, shape, region->data, region->buffer, name);
}

/* An image activation [n, c, h, w] from the arena in the decoder's layout and dtype. */
static dq_tensor_t *s_image(const dq_vae_decoder_t *self, dq_arena_t *a, int64_t n, int64_t c,
                            int64_t h, int64_t w, const char *name) {
    return dq_layout_image(a, self->nhwc, self->act, n, c, h, w, name);
}

/* A stride-1 convolution in the decoder's layout. */
static int s_conv(const dq_vae_decoder_t *self, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *b, int padding, const dq_tensor_t *residual, dq_tensor_t *y) {
    return dq_layout_conv(self->be, self->nhwc, x, w, b, 1, padding, residual, y);
}

static int s_norm_silu(const dq_vae_decoder_t *self, const dq_tensor_t *x, const dq_tensor_t *g,
                       const dq_tensor_t *b, dq_tensor_t *y) {
    return dq_layout_group_norm(self->be, self->nhwc, x, g, b, self->cfg.norm_num_groups, S_EPS,
                                true, y);
}

/* ResnetBlock2D: y = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x)))))). x: [N, cin, H, W],
 * y: [N, cout, H, W] (in the other region). */
static int s_resnet(dq_vae_decoder_t *self, const s_resnet_t *r, dq_arena_t *a,
                    const dq_tensor_t *x, dq_tensor_t *y, int64_t H, int64_t W) {
    const int64_t N = x->shape[0];
    dq_arena_mark_t m = dq_arena_mark(a);
    int rc = -1;
    dq_tensor_t *t1 = s_image(self, a, N, r->cin > r->cout ? r->cin : r->cout, H, W, "vae.t1");
    dq_tensor_t *t2 = s_image(self, a, N, r->cout, H, W, "vae.t2");
    dq_tensor_t h1, h2;
    if (!t1 || !t2 || s_view(self, &h1, t1, N, r->cin, H, W, "vae.norm1") ||
        s_view(self, &h2, t1, N, r->cout, H, W, "vae.norm2"))
        goto out;
    if (s_norm_silu(self, x, r->norm1_w, r->norm1_b, &h1) ||
        s_conv(self, &h1, r->conv1_w, r->conv1_b, 1, NULL, t2) ||
        s_norm_silu(self, t2, r->norm2_w, r->norm2_b, &h2))
        goto out;
    /* output = (input_tensor + hidden_states) / output_scale_factor (1): the shortcut conv (if
     * any) writes y first and conv2 adds onto it in one op */
    if (r->short_w) {
        if (s_conv(self, x, r->short_w, r->short_b, 0, NULL, y) ||
            s_conv(self, &h2, r->conv2_w, r->conv2_b, 1, y, y))
            goto out;
    } else if (s_conv(self, &h2, r->conv2_w, r->conv2_b, 1, x, y)) {
        goto out;
    }
    rc = 0;
out:
    dq_arena_reset(a, m);
    return rc;
}

/* The mid block's attention: y = x + to_out(attn(q, k, v)) over [N, HW, C] tokens of
 * group_norm(x). x: [N, C, H, W]; y: [N, C, H, W] (the other region, also used as scratch). */
static int s_attention(dq_vae_decoder_t *self, dq_arena_t *a, const dq_tensor_t *x,
                       dq_tensor_t *y) {
    dq_backend_t *be = self->be;
    const s_attn_t *at = &self->mid_attn;
    const int64_t N = x->shape[0], C = x->shape[dq_layout_dim_c(self->nhwc)];
    const int64_t HW = dq_tensor_nelements(x) / (N * C);
    const int64_t tok[3] = {N, HW, C};
    dq_arena_mark_t m = dq_arena_mark(a);
    int rc = -1;
    dq_tensor_t *xt = dq_arena_tensor(a, self->act, 3, tok, "vae.attn.tokens");
    dq_tensor_t *q = dq_arena_tensor(a, self->act, 3, tok, "vae.attn.q");
    dq_tensor_t *k = dq_arena_tensor(a, self->act, 3, tok, "vae.attn.k");
    dq_tensor_t *v = dq_arena_tensor(a, self->act, 3, tok, "vae.attn.v");
    dq_tensor_t y3, y_tok, xt_chw, xt_view, x_tok;
    if (!xt || !q || !k || !v) goto out;
    if (self->nhwc) {
        /* channels last, x and y are tokens already: group_norm into y, q/k/v from it, the
         * attention into xt, then y = x + to_out(xt) in one op */
        if (dq_op_group_norm_nhwc(be, x, at->gn_w, at->gn_b, self->cfg.norm_num_groups, S_EPS,
                                  y) ||
            dq_tensor_init(&y_tok, y->dtype, 3, tok, y->data, y->buffer, "vae.attn.normed") ||
            dq_tensor_init(&x_tok, x->dtype, 3, tok, x->data, x->buffer, "vae.attn.x") ||
            dq_op_linear(be, &y_tok, at->q_w, at->q_b, q) ||
            dq_op_linear(be, &y_tok, at->k_w, at->k_b, k) ||
            dq_op_linear(be, &y_tok, at->v_w, at->v_b, v) ||
            dq_op_attention(be, q, k, v, 1, false, xt) ||
            dq_op_linear_residual(be, xt, at->o_w, at->o_b, &x_tok, &y_tok))
            goto out;
        rc = 0;
        goto out;
    }
    /* group_norm on NCHW into y, then y as [N, C, HW] -> permuted -> tokens xt [N, HW, C] */
    if (dq_op_group_norm(be, x, at->gn_w, at->gn_b, self->cfg.norm_num_groups, S_EPS, y) ||
        dq_tensor_reshape(&y3, y, 3, (int64_t[]){N, C, HW}) ||
        dq_tensor_permute(&xt_view, &y3, (int[]){0, 2, 1}) || dq_op_cpy(be, &xt_view, xt))
        goto out;
    /* one head of C channels: scale 1/sqrt(C); the output goes to y viewed as tokens */
    if (dq_tensor_init(&y_tok, y->dtype, 3, tok, y->data, y->buffer, "vae.attn.out") ||
        dq_op_linear(be, xt, at->q_w, at->q_b, q) || dq_op_linear(be, xt, at->k_w, at->k_b, k) ||
        dq_op_linear(be, xt, at->v_w, at->v_b, v) ||
        dq_op_attention(be, q, k, v, 1, false, &y_tok) ||
        dq_op_linear(be, &y_tok, at->o_w, at->o_b, xt))
        goto out;
    /* tokens [N, HW, C] -> [N, C, HW] into y, then the residual */
    if (dq_tensor_permute(&xt_chw, xt, (int[]){0, 2, 1}) || dq_op_cpy(be, &xt_chw, &y3) ||
        dq_op_add(be, y, x, y))
        goto out;
    rc = 0;
out:
    dq_arena_reset(a, m);
    return rc;
}

/* Upsample2D: conv3x3(nearest2x(x)). x: [N, C, H, W] -> y: [N, C, 2H, 2W]. */
static int s_upsample(dq_vae_decoder_t *self, const s_up_t *u, dq_arena_t *a, const dq_tensor_t *x,
                      dq_tensor_t *y, int64_t H, int64_t W) {
    dq_arena_mark_t m = dq_arena_mark(a);
    const int64_t ch = x->shape[dq_layout_dim_c(self->nhwc)];
    dq_tensor_t *t = s_image(self, a, x->shape[0], ch, 2 * H, 2 * W, "vae.upsampled");
    int rc = !t || dq_layout_upsample2x(self->be, self->nhwc, x, t) ||
                     s_conv(self, t, u->up_w, u->up_b, 1, NULL, y)
                 ? -1
                 : 0;
    dq_arena_reset(a, m);
    return rc;
}

/* Checks image against z's shape; writes what was expected into the log. */
static int s_check_io(const dq_vae_decoder_t *self, const dq_tensor_t *z, const dq_tensor_t *img) {
    char d1[96], d2[96];
    const int f = dq_vae_decoder_factor(self);
    if (z->dtype != DQ_DTYPE_F32 || z->ndim != 4 || z->shape[1] != self->cfg.latent_channels) {
        dq_error("vae decoder: latents %s must be [N, %d, h, w] F32",
                 dq_tensor_describe(z, d1, sizeof d1), self->cfg.latent_channels);
        return -1;
    }
    if (img->dtype != DQ_DTYPE_F32 || img->ndim != 4 || img->shape[0] != z->shape[0] ||
        img->shape[1] != self->cfg.out_channels || img->shape[2] != z->shape[2] * f ||
        img->shape[3] != z->shape[3] * f) {
        dq_error("vae decoder: image %s must be [%lld, %d, %lld, %lld] F32 for latents %s",
                 dq_tensor_describe(img, d1, sizeof d1), (long long) z->shape[0],
                 self->cfg.out_channels, (long long) (z->shape[2] * f),
                 (long long) (z->shape[3] * f), dq_tensor_describe(z, d2, sizeof d2));
        return -1;
    }
    s_need_t nd;
    if (s_plan(self, z->shape[0], z->shape[2], z->shape[3], &nd) < 0) {
        dq_error("vae decoder: latents %s are too large", dq_tensor_describe(z, d1, sizeof d1));
        return -1;
    }
    return 0;
}

/* Divides the pipeline's latents by scaling_factor into dst ([N, lat, h, w] in a region, in the
 * decoder's layout) as torch does: f32 division by the f32 scalar, on the host; permuted there
 * when channels last, and rounded once to f16 there when dst is F16. */
static int s_unscale(dq_vae_decoder_t *self, const dq_tensor_t *latents, dq_tensor_t *dst) {
    size_t n = (size_t) dq_tensor_nelements(latents);
    if (n > self->stage_cap) {
        /* the second half holds the channels-last copy */
        float *p = realloc(self->stage, 2 * n * sizeof(float));
        if (!p) {
            dq_error("vae decoder: out of host memory for %zu latent values", n);
            return -1;
        }
        self->stage = p;
        const bool act16 = self->act != DQ_DTYPE_F32;
        uint16_t *p16 = act16 ? realloc(self->stage16, n * sizeof *p16) : NULL;
        if (act16 && !p16) {
            dq_error("vae decoder: out of host memory for %zu latent values", n);
            return -1;
        }
        self->stage16 = p16;
        self->stage_cap = n;
    }
    if (dq_backend_synchronize(self->be) ||
        dq_tensor_download(self->be, latents, 0, self->stage, n * sizeof(float)))
        return -1;
    const float sf = (float) self->cfg.scaling_factor;
    for (size_t i = 0; i < n; i++)
        self->stage[i] = self->stage[i] / sf;
    const float *src = self->stage;
    if (self->nhwc) {
        const int64_t N = latents->shape[0], C = latents->shape[1];
        const int64_t P = latents->shape[2] * latents->shape[3];
        float *t = self->stage + n;
        for (int64_t b = 0; b < N; b++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t p = 0; p < P; p++)
                    t[(b * P + p) * C + c] = self->stage[(b * C + c) * P + p];
        src = t;
    }
    if (dst->dtype != DQ_DTYPE_F32) {
        dq_f32_to_16(src, n, dst->dtype, self->stage16);
        return dq_tensor_upload(self->be, dst, 0, self->stage16, n * sizeof(uint16_t));
    }
    return dq_tensor_upload(self->be, dst, 0, src, n * sizeof(float));
}

/* The decoder from z to image. `scaled`: z holds the pipeline's latents, divided by
 * scaling_factor into region B first; otherwise z is post_quant_conv's input as is. */
static int s_forward(dq_vae_decoder_t *self, dq_arena_t *a, const dq_tensor_t *z, bool scaled,
                     dq_tensor_t *image) {
    if (s_check_io(self, z, image) < 0) return -1;
    dq_backend_t *be = self->be;
    const dq_vae_config_t *c = &self->cfg;
    const int nb = c->n_blocks;
    const int64_t N = z->shape[0];
    int64_t H = z->shape[2], W = z->shape[3];
    s_need_t nd;
    if (s_plan(self, N, H, W, &nd) < 0) return -1; /* not reached: s_check_io planned it */
    dq_arena_mark_t m = dq_arena_mark(a);
    int rc = -1;
    dq_tensor_t *reg[2];
    const int64_t region = (int64_t) (nd.act / dq_dtype_size(self->act));
    reg[0] = dq_arena_tensor(a, self->act, 1, (int64_t[]){region}, "vae.A");
    reg[1] = dq_arena_tensor(a, self->act, 1, (int64_t[]){region}, "vae.B");
    if (!reg[0] || !reg[1]) goto out;
    dq_tensor_t x, y;
    const int64_t last = c->block_out_channels[nb - 1], lat = c->latent_channels;
    /* post_quant_conv (1x1) into A, conv_in into B */
    if (scaled) {
        dq_tensor_t zb;
        if (s_view(self, &zb, reg[1], N, lat, H, W, "vae.z") || s_unscale(self, z, &zb) ||
            s_view(self, &y, reg[0], N, lat, H, W, "vae.post_quant") ||
            s_conv(self, &zb, self->pq_w, self->pq_b, 0, NULL, &y))
            goto out;
    } else {
        /* z as is, or converted to the activation dtype and layout in region B first */
        dq_tensor_t zb, zv = *z;
        const dq_tensor_t *zin = z;
        if (self->act != z->dtype || self->nhwc) {
            if ((self->nhwc && dq_tensor_permute(&zv, z, (const int[]){0, 2, 3, 1})) ||
                s_view(self, &zb, reg[1], N, lat, H, W, "vae.z") || dq_op_cpy(be, &zv, &zb))
                goto out;
            zin = &zb;
        }
        if (s_view(self, &y, reg[0], N, lat, H, W, "vae.post_quant") ||
            s_conv(self, zin, self->pq_w, self->pq_b, 0, NULL, &y))
            goto out;
    }
    x = y;
    int cur = 1; /* region that receives the next output */
#define S_STEP(call, ch, name)                                                                     \
    do {                                                                                           \
        if (s_view(self, &y, reg[cur], N, (ch), H, W, (name)) || (call)) goto out;                 \
        x = y;                                                                                     \
        cur ^= 1;                                                                                  \
    } while (0)
    S_STEP(s_conv(self, &x, self->in_w, self->in_b, 1, NULL, &y), last, "vae.conv_in");
    S_STEP(s_resnet(self, &self->mid_res[0], a, &x, &y, H, W), last, "vae.mid.res0");
    S_STEP(s_attention(self, a, &x, &y), last, "vae.mid.attn");
    S_STEP(s_resnet(self, &self->mid_res[1], a, &x, &y, H, W), last, "vae.mid.res1");
    for (int i = 0; i < nb; i++) {
        const s_up_t *u = &self->up[i];
        for (int j = 0; j <= c->layers_per_block; j++)
            S_STEP(s_resnet(self, &u->resnets[j], a, &x, &y, H, W), u->resnets[j].cout,
                   "vae.up.res");
        if (i < nb - 1) {
            H *= 2;
            W *= 2;
            S_STEP(s_upsample(self, u, a, &x, &y, H / 2, W / 2), u->resnets[0].cout,
                   "vae.up.upsampled");
        }
    }
#undef S_STEP
    /* conv_norm_out -> SiLU -> conv_out, into the image or (another activation dtype or
     * layout) a temporary converted into it */
    dq_tensor_t *t = dq_arena_like(a, &x, "vae.norm_out");
    dq_tensor_t *o = self->act == image->dtype && !self->nhwc
                         ? image
                         : s_image(self, a, N, c->out_channels, H, W, "vae.conv_out");
    dq_tensor_t ov;
    if (!t || !o || s_norm_silu(self, &x, self->nout_w, self->nout_b, t) ||
        s_conv(self, t, self->out_w, self->out_b, 1, NULL, o))
        goto out;
    if (o != image) {
        ov = *o;
        if ((self->nhwc && dq_tensor_permute(&ov, o, (const int[]){0, 3, 1, 2})) ||
            dq_op_cpy(be, &ov, image))
            goto out;
    }
    rc = 0;
out:
    if (rc < 0) dq_error("vae decoder: decoding %lld latents failed", (long long) N);
    dq_arena_reset(a, m);
    return rc;
}

int dq_vae_decoder_decode(dq_vae_decoder_t *self, dq_arena_t *arena, const dq_tensor_t *latents,
                          dq_tensor_t *image) {
    return s_forward(self, arena, latents, true, image);
}

int dq_vae_decoder_run(dq_vae_decoder_t *self, dq_arena_t *arena, const dq_tensor_t *z,
                       dq_tensor_t *image) {
    return s_forward(self, arena, z, false, image);
}
