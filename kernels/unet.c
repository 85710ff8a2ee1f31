/* kernels/unet.c: UNet2DConditionModel (diffusers 0.42 models/unets/unet_2d_condition.py and
 * unet_2d_blocks.py): time embedding, conv_in, down blocks, mid block, up blocks with skip
 * concatenation, conv_norm_out, conv_out. Blocks are in kernels/unet_blocks.c. */
#include "kernels/unet.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/arena.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "kernels/step_graph.h"
#include "kernels/unet_blocks.h"
#include "kernels/weights.h"

/* Most resnets in one block: an up block has layers_per_block + 1. */
#define DQ_UNET_MAX_LAYERS 8
/* Skip tensors: conv_in's output, one per down resnet, one per downsampler. */
#define DQ_UNET_MAX_SKIPS (1 + DQ_MAX_BLOCKS * (DQ_UNET_MAX_LAYERS + 1))
/* Tensor structs of the arena: the skips plus the temporaries of the deepest block (~30). */
#define DQ_UNET_ARENA_TENSORS 512

/* A down or up block: resnets, a transformer after each resnet (cross-attention blocks), and an
 * optional down/upsampler. */
typedef struct {
    int n_layers;
    bool has_attn;
    bool has_sampler;
    dq_unet_resnet_t resnets[DQ_UNET_MAX_LAYERS];
    dq_unet_transformer_t attns[DQ_UNET_MAX_LAYERS];
    dq_unet_resample_t sampler;
} s_block_t;

struct dq_unet {
    dq_backend_t *be;             /* borrowed */
    dq_unet_config_t cfg;         /* copy of the model's */
    dq_weights_t *weights;        /* owned: every tensor below is borrowed from it */
    int temb_dim;                 /* time embedding width (4 * block_out_channels[0]) */
    dq_dtype_t act;               /* every activation's dtype: F32, or F16 (chosen at creation) */
    bool nhwc;                    /* channels-last activations, KRSC conv weights
                                     (dq_backend_use_nhwc) */
    const dq_tensor_t *conv_in_w, *conv_in_b;
    const dq_tensor_t *te1_w, *te1_b, *te2_w, *te2_b; /* time_embedding.linear_1/2 */
    s_block_t down[DQ_MAX_BLOCKS];
    dq_unet_resnet_t mid_res[2];
    dq_unet_transformer_t mid_attn;
    s_block_t up[DQ_MAX_BLOCKS];
    const dq_tensor_t *norm_out_w, *norm_out_b, *conv_out_w, *conv_out_b;
    dq_arena_t *arena;            /* owned: activations, sized for key_* (NULL before use) */
    int64_t key_n, key_h, key_w, key_l; /* the shape the arena was sized for */
    bool arena_exact;             /* the arena has been cut to the measured peak */
    int64_t arena_gen;            /* bumped whenever arena or io is re-made (the graph's key) */
    float *host_tproj;            /* owned: [key_n, time_proj dim] staging for the upload */
    uint16_t *host_tproj16;       /* owned: the same rounded to act when it is F16/BF16, else NULL */
    /* The step's fixed inputs and output (sized for key_*): what a recorded graph reads and
     * writes in place of the caller's tensors, whose addresses change between renders. */
    dq_arena_t *io;               /* owned: the tensors below */
    dq_tensor_t *io_tproj;        /* [N, time_proj dim], uploaded before every step */
    dq_tensor_t *io_sample, *io_ctx, *io_out; /* sample, context, out in act's dtype (cpy
                                                 converts); NULL when graphs are off and act
                                                 is F32 */
    dq_step_graph_t *graph;       /* owned: eager / record / replay of the step (step_graph.h) */
};

static const dq_tensor_t *s_get(dq_unet_t *u, const char *name, int *bad, char *err,
                                size_t errlen) {
    const dq_tensor_t *t = dq_weights_get(u->weights, name);
    if (!t && (*bad)++ == 0) snprintf(err, errlen, "unet: weight %s is missing", name);
    return t;
}

/* Builds down block i or up block i (channel bookkeeping as UNet2DConditionModel.__init__). */
static int s_block_init(dq_unet_t *u, s_block_t *b, bool is_up, int i, char *err, size_t errlen) {
    const dq_unet_config_t *c = &u->cfg;
    const int nb = c->n_blocks, L = c->layers_per_block;
    const float eps = (float) c->norm_eps;
    char p[160];
    if (!is_up) {
        int out = c->block_out_channels[i], in = i ? c->block_out_channels[i - 1] : out;
        b->n_layers = L;
        b->has_attn = !strcmp(c->down_block_types[i], "CrossAttnDownBlock2D");
        b->has_sampler = i != nb - 1;
        if (!b->has_attn && strcmp(c->down_block_types[i], "DownBlock2D")) goto bad_type;
        for (int j = 0; j < L; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, j);
            if (dq_unet_resnet_init(&b->resnets[j], u->weights, p, j ? out : in, out,
                                    c->norm_num_groups, eps, 1.0f, err, errlen))
                return -1;
            snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, j);
            if (b->has_attn &&
                dq_unet_transformer_init(&b->attns[j], u->weights, p, out, c->num_heads[i],
                                         c->norm_num_groups, c->use_linear_projection, err,
                                         errlen))
                return -1;
        }
        snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0", i);
        if (b->has_sampler &&
            dq_unet_resample_init(&b->sampler, u->weights, p, c->downsample_padding, err, errlen))
            return -1;
        return 0;
    }
    /* Up block i works at the resolution of down block nb-1-i; heads reversed likewise. */
    const int r = nb - 1 - i;
    const int out = c->block_out_channels[r];
    const int prev = c->block_out_channels[i ? r + 1 : r];
    const int in = c->block_out_channels[r > 0 ? r - 1 : 0];
    b->n_layers = L + 1;
    b->has_attn = !strcmp(c->up_block_types[i], "CrossAttnUpBlock2D");
    b->has_sampler = i != nb - 1;
    if (!b->has_attn && strcmp(c->up_block_types[i], "UpBlock2D")) goto bad_type;
    for (int j = 0; j <= L; j++) {
        int skip = j == L ? in : out, res_in = j ? out : prev;
        snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
        if (dq_unet_resnet_init(&b->resnets[j], u->weights, p, res_in + skip, out,
                                c->norm_num_groups, eps, 1.0f, err, errlen))
            return -1;
        snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
        if (b->has_attn &&
            dq_unet_transformer_init(&b->attns[j], u->weights, p, out, c->num_heads[r],
                                     c->norm_num_groups, c->use_linear_projection, err, errlen))
            return -1;
    }
    snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0", i);
    if (b->has_sampler && dq_unet_resample_init(&b->sampler, u->weights, p, 1, err, errlen))
        return -1;
    return 0;
bad_type:
    snprintf(err, errlen, "unet: %s block %d has type '%s'; this UNet implements "
             "CrossAttn%sBlock2D and %sBlock2D", is_up ? "up" : "down", i,
             is_up ? c->up_block_types[i] : c->down_block_types[i], is_up ? "Up" : "Down",
             is_up ? "Up" : "Down");
    return -1;
}

dq_unet_t *dq_unet_new(dq_backend_t *be, const dq_model_t *model, char *err, size_t errlen) {
    return dq_unet_new_dtype(be, model, DQ_DTYPE_F32, DQ_DTYPE_F32, err, errlen);
}

dq_unet_t *dq_unet_new_dtype(dq_backend_t *be, const dq_model_t *model, dq_dtype_t matrix_dtype,
                             dq_dtype_t act_dtype, char *err, size_t errlen) {
    if (!dq_backend_activation_usable(be, act_dtype, "unet", err, errlen)) return NULL;
    dq_unet_t *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "unet: out of memory");
        return NULL;
    }
    u->be = be;
    u->act = act_dtype;
    u->nhwc = dq_backend_use_nhwc(be, matrix_dtype, act_dtype);
    u->cfg = model->cfg.unet;
    const dq_unet_config_t *c = &u->cfg;
    if (c->n_blocks < 1 || c->n_blocks > DQ_MAX_BLOCKS || c->layers_per_block < 1 ||
        c->layers_per_block + 1 > DQ_UNET_MAX_LAYERS) {
        snprintf(err, errlen, "unet: %d blocks of %d layers: supported are 1..%d blocks of 1..%d",
                 c->n_blocks, c->layers_per_block, DQ_MAX_BLOCKS, DQ_UNET_MAX_LAYERS - 1);
        goto fail;
    }
    if (strcmp(c->mid_block_type, "UNetMidBlock2DCrossAttn")) {
        snprintf(err, errlen, "unet: mid block type '%s'; this UNet implements "
                 "UNetMidBlock2DCrossAttn", c->mid_block_type);
        goto fail;
    }
    if (c->block_out_channels[0] % 2 || c->block_out_channels[0] <= 2 * c->freq_shift) {
        snprintf(err, errlen, "unet: time projection width %d must be even and > 2*freq_shift",
                 c->block_out_channels[0]);
        goto fail;
    }
    u->graph = dq_step_graph_new(be, "unet");
    if (!u->graph) {
        snprintf(err, errlen, "unet: out of memory");
        goto fail;
    }
    u->weights = dq_weights_new_layout(be, model, DQ_PART_UNET, matrix_dtype, u->nhwc, err,
                                       errlen);
    if (!u->weights) goto fail;
    int bad = 0;
    u->conv_in_w = s_get(u, "conv_in.weight", &bad, err, errlen);
    u->conv_in_b = s_get(u, "conv_in.bias", &bad, err, errlen);
    u->te1_w = s_get(u, "time_embedding.linear_1.weight", &bad, err, errlen);
    u->te1_b = s_get(u, "time_embedding.linear_1.bias", &bad, err, errlen);
    u->te2_w = s_get(u, "time_embedding.linear_2.weight", &bad, err, errlen);
    u->te2_b = s_get(u, "time_embedding.linear_2.bias", &bad, err, errlen);
    u->norm_out_w = s_get(u, "conv_norm_out.weight", &bad, err, errlen);
    u->norm_out_b = s_get(u, "conv_norm_out.bias", &bad, err, errlen);
    u->conv_out_w = s_get(u, "conv_out.weight", &bad, err, errlen);
    u->conv_out_b = s_get(u, "conv_out.bias", &bad, err, errlen);
    if (bad) goto fail;
    u->temb_dim = (int) u->te1_w->shape[0];
    for (int i = 0; i < c->n_blocks; i++)
        if (s_block_init(u, &u->down[i], false, i, err, errlen) ||
            s_block_init(u, &u->up[i], true, i, err, errlen))
            goto fail;
    const int top = c->block_out_channels[c->n_blocks - 1];
    const float eps = (float) c->norm_eps, scale = (float) c->mid_block_scale_factor;
    if (dq_unet_resnet_init(&u->mid_res[0], u->weights, "mid_block.resnets.0", top, top,
                            c->norm_num_groups, eps, scale, err, errlen) ||
        dq_unet_transformer_init(&u->mid_attn, u->weights, "mid_block.attentions.0", top,
                                 c->num_heads[c->n_blocks - 1], c->norm_num_groups,
                                 c->use_linear_projection, err, errlen) ||
        dq_unet_resnet_init(&u->mid_res[1], u->weights, "mid_block.resnets.1", top, top,
                            c->norm_num_groups, eps, scale, err, errlen))
        goto fail;
    return u;
fail:
    dq_unet_destroy(&u);
    return NULL;
}

void dq_unet_destroy(dq_unet_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_unet_t *u = *self_p;
    *self_p = NULL;
    dq_step_graph_destroy(&u->graph); /* first: a graph refers to the memory freed below */
    dq_arena_destroy(&u->io);
    dq_arena_destroy(&u->arena);
    dq_weights_destroy(&u->weights);
    free(u->host_tproj);
    free(u->host_tproj16);
    free(u);
}

const dq_unet_config_t *dq_unet_config(const dq_unet_t *self) { return &self->cfg; }
size_t dq_unet_weight_bytes(const dq_unet_t *self) { return dq_weights_bytes(self->weights); }
size_t dq_unet_arena_bytes(const dq_unet_t *self) {
    return (self->arena ? dq_arena_capacity(self->arena) : 0) +
           (self->io ? dq_arena_capacity(self->io) : 0);
}
bool dq_unet_channels_last(const dq_unet_t *self) { return self->nhwc; }
void dq_unet_graph_stats(const dq_unet_t *self, dq_step_graph_stats_t *out) {
    dq_step_graph_stats(self->graph, out);
}

/* Side of the next level down: Downsample2D's conv, kernel 3, stride 2. */
static int64_t s_down_side(int64_t side, int padding) { return (side + 2 * padding - 3) / 2 + 1; }

/* An upper bound of the arena bytes for (n, h, w, l): every skip, plus at the busiest level the
 * block temporaries (a feed-forward's 2F = 8C projection, GEGLU's 4C, tokens, norms, a concat of
 * two widths: under 20 activations of the widest channel count there) and the attention's K/V.
 * The first pass measures the real peak and the arena is cut to it. */
static size_t s_arena_bound(const dq_unet_config_t *c, size_t es, int64_t n, int64_t h,
                            int64_t w, int64_t l) {
    const int nb = c->n_blocks;
    size_t skips = 0, busiest = 0, maxc = 0;
    for (int i = 0; i < nb; i++) {
        size_t area = (size_t) (n * h * w) * es, cm = 0;
        for (int k = i - 1; k <= i + 1; k++)
            if (k >= 0 && k < nb && (size_t) c->block_out_channels[k] > cm)
                cm = (size_t) c->block_out_channels[k];
        skips += area * (size_t) c->block_out_channels[i] * (size_t) (c->layers_per_block + 1);
        if (area * cm * 20 > busiest) busiest = area * cm * 20;
        if (cm > maxc) maxc = cm;
        h = s_down_side(h, c->downsample_padding);
        w = s_down_side(w, c->downsample_padding);
    }
    return skips + busiest + 4 * (size_t) (n * l) * maxc * es + ((size_t) 1 << 20);
}

/* The io tensors for (n, h, w, l), all in the activation dtype: the time projection always; the
 * copies of sample, context and out while graphs are on, the activations are not F32 or the
 * layout is channels last (then the copies in and out are the conversions). Returns 0 or -1
 * (out of memory). */
static int s_io_new(dq_unet_t *u, int64_t n, int64_t h, int64_t w, int64_t l) {
    const dq_unet_config_t *c = &u->cfg;
    const bool staged = dq_step_graph_enabled(u->graph) || u->act != DQ_DTYPE_F32 || u->nhwc;
    const int64_t ci = c->in_channels, co = c->out_channels;
    const int64_t shapes[4][4] = {{n, c->block_out_channels[0]},
                                  {n, u->nhwc ? h : ci, u->nhwc ? w : h, u->nhwc ? ci : w},
                                  {n, l, c->cross_attention_dim},
                                  {n, u->nhwc ? h : co, u->nhwc ? w : h, u->nhwc ? co : w}};
    const int ndims[4] = {2, 4, 3, 4};
    size_t bytes = 0;
    for (int i = 0; i < (staged ? 4 : 1); i++) {
        size_t e = dq_dtype_size(u->act);
        for (int k = 0; k < ndims[i]; k++) e *= (size_t) shapes[i][k];
        bytes += e + 64; /* each tensor starts 64-byte aligned */
    }
    u->io = dq_arena_new(u->be, bytes, 4);
    if (!u->io) return -1;
    u->io_tproj = dq_arena_tensor(u->io, u->act, 2, shapes[0], "unet.time_proj");
    if (!u->io_tproj) return -1;
    if (!staged) return 0;
    u->io_sample = dq_arena_tensor(u->io, u->act, 4, shapes[1], "unet.sample");
    u->io_ctx = dq_arena_tensor(u->io, u->act, 3, shapes[2], "unet.context");
    u->io_out = dq_arena_tensor(u->io, u->act, 4, shapes[3], "unet.out");
    return u->io_sample && u->io_ctx && u->io_out ? 0 : -1;
}

/* Makes sure the arena is for (n, h, w, l); a new size gets a bound-sized arena. */
static int s_arena_for(dq_unet_t *u, int64_t n, int64_t h, int64_t w, int64_t l, char *err,
                       size_t errlen) {
    if (u->arena && u->key_n == n && u->key_h == h && u->key_w == w && u->key_l == l) return 0;
    dq_step_graph_invalidate(u->graph); /* it refers to the memory freed here */
    dq_arena_destroy(&u->arena);
    dq_arena_destroy(&u->io);
    u->io_tproj = u->io_sample = u->io_ctx = u->io_out = NULL;
    u->arena_gen++;
    free(u->host_tproj);
    free(u->host_tproj16);
    const size_t tp = (size_t) n * (size_t) u->cfg.block_out_channels[0];
    u->host_tproj = malloc(tp * sizeof(float));
    const bool act16 = u->act != DQ_DTYPE_F32;
    u->host_tproj16 = act16 ? malloc(tp * sizeof(uint16_t)) : NULL;
    u->arena = dq_arena_new(u->be, s_arena_bound(&u->cfg, dq_dtype_size(u->act), n, h, w, l),
                            DQ_UNET_ARENA_TENSORS);
    if (!u->arena || !u->host_tproj || (act16 && !u->host_tproj16) ||
        s_io_new(u, n, h, w, l)) {
        snprintf(err, errlen, "unet: out of memory for the activations of a [%lld, %lld, %lld] "
                 "batch", (long long) n, (long long) h, (long long) w);
        dq_arena_destroy(&u->arena);
        dq_arena_destroy(&u->io);
        u->io_tproj = u->io_sample = u->io_ctx = u->io_out = NULL;
        return -1;
    }
    u->key_n = n, u->key_h = h, u->key_w = w, u->key_l = l;
    u->arena_exact = false;
    return 0;
}

/* After a first pass: replaces the bound-sized arena by one of the measured peak. */
static int s_arena_cut(dq_unet_t *u) {
    if (u->arena_exact) return 0;
    size_t peak = dq_arena_peak(u->arena);
    dq_step_graph_invalidate(u->graph);
    dq_arena_destroy(&u->arena);
    u->arena_gen++;
    u->arena = dq_arena_new(u->be, peak, DQ_UNET_ARENA_TENSORS);
    if (!u->arena) return -1;
    u->arena_exact = true;
    dq_debug("unet: arena %zu bytes for n=%lld h=%lld w=%lld", peak, (long long) u->key_n,
             (long long) u->key_h, (long long) u->key_w);
    return 0;
}

/* A skip tensor and the arena position just before it (where its space starts). */
typedef struct {
    dq_tensor_t t;
    dq_arena_mark_t mark;
} s_skip_t;

/* Moves t down to arena position m, releasing everything above m (t's old space included).
 * The copy must not overlap t's old bytes: callers settle a tensor that was allocated after at
 * least as many bytes as it has above m (checked). Returns the moved tensor or NULL. */
static dq_tensor_t *s_settle(const dq_unet_run_t *run, dq_arena_mark_t m, const dq_tensor_t *t) {
    dq_tensor_t src = *t;
    dq_arena_reset(run->arena, m);
    dq_tensor_t *dst = dq_arena_like(run->arena, &src, src.name);
    if (!dst) return NULL;
    uintptr_t d = (uintptr_t) dst->data, s = (uintptr_t) src.data, nb = dq_tensor_nbytes(&src);
    if (d + nb > s && s + nb > d) {
        dq_error("unet: settling %s would overlap its old place (bug)", src.name);
        return NULL;
    }
    return dq_op_cpy(run->be, &src, dst) ? NULL : dst;
}

static int s_check_args(const dq_unet_t *u, const dq_tensor_t *sample, int n_t,
                        const dq_tensor_t *ctx, const dq_tensor_t *out, char *err,
                        size_t errlen) {
    const dq_unet_config_t *c = &u->cfg;
    char d1[96], d2[96], d3[96];
    const int64_t n = sample->shape[0];
    if (sample->ndim != 4 || sample->shape[1] != c->in_channels || out->ndim != 4 ||
        out->shape[0] != n || out->shape[1] != c->out_channels ||
        out->shape[2] != sample->shape[2] || out->shape[3] != sample->shape[3] ||
        ctx->ndim != 3 || ctx->shape[0] != n || ctx->shape[2] != c->cross_attention_dim ||
        sample->dtype != DQ_DTYPE_F32 || out->dtype != DQ_DTYPE_F32 ||
        ctx->dtype != DQ_DTYPE_F32 || !dq_tensor_is_contiguous(sample) ||
        !dq_tensor_is_contiguous(out) || !dq_tensor_is_contiguous(ctx) ||
        out->data == sample->data) {
        snprintf(err, errlen, "unet forward: sample %s, context %s, out %s; expected contiguous "
                 "F32 [N, %d, h, w], [N, L, %d] and a distinct [N, %d, h, w]",
                 dq_tensor_describe(sample, d1, sizeof d1), dq_tensor_describe(ctx, d2, sizeof d2),
                 dq_tensor_describe(out, d3, sizeof d3), c->in_channels, c->cross_attention_dim,
                 c->out_channels);
        return -1;
    }
    if (n_t != 1 && n_t != n) {
        snprintf(err, errlen, "unet forward: %d timesteps for a batch of %lld (expected 1 or %lld)",
                 n_t, (long long) n, (long long) n);
        return -1;
    }
    return 0;
}

/* The sinusoidal time projection of every item, computed on the host in f32 and uploaded to
 * io_tproj; with F16 activations rounded to f16 on the host first, as diffusers casts t_emb to
 * the sample's dtype. Outside the step (an upload synchronizes, and its values change every
 * step). */
static int s_time_proj_upload(dq_unet_t *u, int64_t n, const float *timesteps, int n_t) {
    const int dim = u->cfg.block_out_channels[0];
    for (int64_t i = 0; i < n; i++)
        dq_unet_time_proj(&timesteps[n_t == 1 ? 0 : i], 1, dim, u->cfg.flip_sin_to_cos,
                          u->cfg.freq_shift, u->host_tproj + i * dim);
    if (u->act != DQ_DTYPE_F32) {
        dq_f32_to_16(u->host_tproj, (size_t) (n * dim), u->act, u->host_tproj16);
        return dq_tensor_upload(u->be, u->io_tproj, 0, u->host_tproj16,
                                dq_tensor_nbytes(u->io_tproj));
    }
    return dq_tensor_upload(u->be, u->io_tproj, 0, u->host_tproj, dq_tensor_nbytes(u->io_tproj));
}

/* temb: [N, temb_dim] = silu(linear_2(silu(linear_1(tp)))) with tp the uploaded time projection
 * [N, dim], the final silu being the one every ResnetBlock2D applies before time_emb_proj (done
 * once here). */
static dq_tensor_t *s_time_embedding(dq_unet_t *u, const dq_unet_run_t *run, int64_t n,
                                     const dq_tensor_t *tp) {
    dq_arena_t *a = run->arena;
    dq_tensor_t *temb = dq_arena_tensor(a, run->act, 2, (int64_t[]){n, u->temb_dim}, "temb");
    dq_arena_mark_t m = dq_arena_mark(a);
    dq_tensor_t *t1 = dq_arena_tensor(a, run->act, 2, (int64_t[]){n, u->temb_dim}, "temb.1");
    int bad = !temb || !t1 ||
              dq_op_linear(run->be, tp, u->te1_w, u->te1_b, t1) || dq_op_silu(run->be, t1, t1) ||
              dq_op_linear(run->be, t1, u->te2_w, u->te2_b, temb) ||
              dq_op_silu(run->be, temb, temb);
    dq_arena_reset(a, m);
    return bad ? NULL : temb;
}

/* The network proper; every activation comes from run->arena, the time projection from
 * io_tproj. Queues ops only (no transfer, no allocation): it is what a graph records. `where`
 * names the failing part. */
static int s_forward(dq_unet_t *u, const dq_unet_run_t *run, const dq_tensor_t *sample,
                     const dq_tensor_t *ctx, dq_tensor_t *out, char *where, size_t wlen) {
    const dq_unet_config_t *c = &u->cfg;
    dq_backend_t *be = run->be;
    dq_arena_t *a = run->arena;
    const int64_t n = sample->shape[0];
    const int dc = dq_layout_dim_c(run->nhwc), dh = dq_layout_dim_h(run->nhwc);
    const int dw = dq_layout_dim_w(run->nhwc);
    s_skip_t skips[DQ_UNET_MAX_SKIPS];
    int n_skips = 0;
#define FAIL(...) do { snprintf(where, wlen, __VA_ARGS__); return -1; } while (0)

    // temb: [N, temb_dim] (already through the resnets' silu)
    dq_tensor_t *temb = s_time_embedding(u, run, n, u->io_tproj);
    if (!temb) FAIL("time_embedding");
    // x: [N, in, h, w] (center_input_sample: 2x - 1)
    const dq_tensor_t *x = sample;
    if (c->center_input_sample) {
        dq_tensor_t *xc = dq_arena_like(a, sample, "centered");
        if (!xc || dq_op_scale(be, sample, 2.0f, -1.0f, xc)) FAIL("center_input_sample");
        x = xc;
    }
    // h: [N, C0, h, w] = conv_in(x), the first skip
    dq_arena_mark_t m = dq_arena_mark(a);
    dq_tensor_t *h = dq_unet_image(run, n, c->block_out_channels[0], x->shape[dh], x->shape[dw],
                                   "conv_in");
    if (!h || dq_layout_conv(be, run->nhwc, x, u->conv_in_w, u->conv_in_b, 1, 1, NULL, h))
        FAIL("conv_in");
    skips[n_skips++] = (s_skip_t){*h, m};

    // Down blocks: every resnet(+transformer) output and every downsampler output is a skip.
    for (int i = 0; i < c->n_blocks; i++) {
        const s_block_t *b = &u->down[i];
        for (int j = 0; j < b->n_layers; j++) {
            m = dq_arena_mark(a);
            dq_tensor_t *y = dq_unet_image(run, n, b->resnets[j].out_ch, h->shape[dh],
                                           h->shape[dw], "down");
            if (!y || dq_unet_resnet_forward(&b->resnets[j], run, h, temb, y))
                FAIL("down_blocks.%d.resnets.%d", i, j);
            if (b->has_attn && dq_unet_transformer_forward(&b->attns[j], run, y, ctx))
                FAIL("down_blocks.%d.attentions.%d", i, j);
            skips[n_skips++] = (s_skip_t){*y, m};
            h = y;
        }
        if (b->has_sampler) {
            m = dq_arena_mark(a);
            dq_tensor_t *y = dq_unet_image(run, n, h->shape[dc],
                                           s_down_side(h->shape[dh], b->sampler.padding),
                                           s_down_side(h->shape[dw], b->sampler.padding),
                                           "downsample");
            if (!y || dq_unet_downsample_forward(&b->sampler, run, h, y))
                FAIL("down_blocks.%d.downsamplers.0", i);
            skips[n_skips++] = (s_skip_t){*y, m};
            h = y;
        }
    }

    // Mid block: resnet, transformer, resnet; its output is moved down onto the first one's.
    m = dq_arena_mark(a);
    dq_tensor_t *y0 = dq_arena_like(a, h, "mid.0");
    if (!y0 || dq_unet_resnet_forward(&u->mid_res[0], run, h, temb, y0))
        FAIL("mid_block.resnets.0");
    if (dq_unet_transformer_forward(&u->mid_attn, run, y0, ctx)) FAIL("mid_block.attentions.0");
    dq_tensor_t *y1 = dq_arena_like(a, h, "mid.1");
    if (!y1 || dq_unet_resnet_forward(&u->mid_res[1], run, y0, temb, y1) ||
        !(h = s_settle(run, m, y1)))
        FAIL("mid_block.resnets.1");

    // Up blocks: each resnet eats the newest skip (cat along channels); its output takes the
    // skip's place in the arena, so skip memory is released in the order it is consumed.
    for (int i = 0; i < c->n_blocks; i++) {
        const s_block_t *b = &u->up[i];
        for (int j = 0; j < b->n_layers; j++) {
            if (n_skips == 0) FAIL("up_blocks.%d: no skip left (bug)", i);
            const s_skip_t *s = &skips[--n_skips];
            // cat: [N, Ch + Cs, H, W] = torch.cat([h, skip], dim=1)
            dq_tensor_t *cat = dq_unet_image(run, n, h->shape[dc] + s->t.shape[dc],
                                             s->t.shape[dh], s->t.shape[dw], "up.cat");
            dq_tensor_t *y = dq_unet_image(run, n, b->resnets[j].out_ch, s->t.shape[dh],
                                           s->t.shape[dw], "up");
            if (!cat || !y || dq_op_concat(be, h, &s->t, dc, cat) ||
                dq_unet_resnet_forward(&b->resnets[j], run, cat, temb, y) ||
                !(h = s_settle(run, s->mark, y)))
                FAIL("up_blocks.%d.resnets.%d", i, j);
            if (b->has_attn && dq_unet_transformer_forward(&b->attns[j], run, h, ctx))
                FAIL("up_blocks.%d.attentions.%d", i, j);
        }
        if (b->has_sampler) {
            // to the next skip's size: x2, or x2 - 1 where the down path had an odd side
            if (n_skips == 0) FAIL("up_blocks.%d.upsamplers.0: no skip left (bug)", i);
            const dq_tensor_t *next = &skips[n_skips - 1].t;
            dq_tensor_t *y = dq_unet_image(run, n, h->shape[dc], next->shape[dh], next->shape[dw],
                                           "upsample");
            if (!y || dq_unet_upsample_forward(&b->sampler, run, h, y))
                FAIL("up_blocks.%d.upsamplers.0", i);
            h = y;
        }
    }
    if (n_skips != 0) FAIL("up blocks left %d skips (bug)", n_skips);

    // out: [N, out, h, w] = conv_out(silu(conv_norm_out(h)))
    dq_tensor_t *hn = dq_arena_like(a, h, "conv_norm_out");
    if (!hn ||
        dq_layout_group_norm(be, run->nhwc, h, u->norm_out_w, u->norm_out_b, c->norm_num_groups,
                             (float) c->norm_eps, true, hn) ||
        dq_layout_conv(be, run->nhwc, hn, u->conv_out_w, u->conv_out_b, 1, 1, NULL, out))
        FAIL("conv_out");
#undef FAIL
    return 0;
}

/* One step as dq_step_graph_run calls it: the network on the given tensors, the arena returned
 * to where it was. */
typedef struct {
    dq_unet_t *u;
    const dq_tensor_t *sample, *ctx; /* borrowed: the caller's, or io copies when staged */
    dq_tensor_t *out;
    char where[96];
} s_step_t;

static int s_step(void *arg) {
    s_step_t *st = arg;
    dq_unet_run_t run = {
        .be = st->u->be, .arena = st->u->arena, .act = st->u->act, .nhwc = st->u->nhwc};
    dq_arena_mark_t m0 = dq_arena_mark(run.arena);
    int rc = s_forward(st->u, &run, st->sample, st->ctx, st->out, st->where, sizeof st->where);
    dq_arena_reset(run.arena, m0);
    return rc;
}

int dq_unet_forward(dq_unet_t *self, const dq_tensor_t *sample, const float *timesteps,
                    int n_timesteps, const dq_tensor_t *context, dq_tensor_t *out, char *err,
                    size_t errlen) {
    if (s_check_args(self, sample, n_timesteps, context, out, err, errlen) ||
        s_arena_for(self, sample->shape[0], sample->shape[2], sample->shape[3], context->shape[1],
                    err, errlen))
        return -1;
    if (s_time_proj_upload(self, sample->shape[0], timesteps, n_timesteps)) {
        snprintf(err, errlen, "unet forward: uploading the time projection failed");
        return -1;
    }
    /* Graphs on: the step reads and writes the UNet's own io tensors (fixed addresses), and the
     * caller's tensors are copied in and out around it, outside what a graph records. The first
     * call of a size runs the same way, so recording sees what that call warmed up. With F16
     * activations those copies are the F32 <-> F16 conversions (graphs on or off). */
    s_step_t st = {.u = self, .sample = sample, .ctx = context, .out = out};
    const bool staged = self->io_sample != NULL;
    /* Channels last, the copies permute too: the sample as [N, H, W, C] in, out back. */
    dq_tensor_t sample_v = *sample;
    if (self->nhwc && dq_tensor_permute(&sample_v, sample, (const int[]){0, 2, 3, 1})) {
        snprintf(err, errlen, "unet forward: permuting the sample failed");
        return -1;
    }
    if (staged) {
        st.sample = self->io_sample, st.ctx = self->io_ctx, st.out = self->io_out;
        if (dq_op_cpy(self->be, &sample_v, self->io_sample) ||
            dq_op_cpy(self->be, context, self->io_ctx)) {
            snprintf(err, errlen, "unet forward: copying sample and context in failed");
            return -1;
        }
    }
    const int64_t key[5] = {self->key_n, self->key_h, self->key_w, self->key_l, self->arena_gen};
    int rc = dq_step_graph_run(self->graph, key, 5, self->arena_exact, s_step, &st);
    if (rc) {
        snprintf(err, errlen, "unet forward: %s failed (the op's message is in the log)",
                 st.where);
        return -1;
    }
    if (staged) {
        dq_tensor_t out_v = *self->io_out;
        if ((self->nhwc && dq_tensor_permute(&out_v, self->io_out, (const int[]){0, 3, 1, 2})) ||
            dq_op_cpy(self->be, &out_v, out)) {
            snprintf(err, errlen, "unet forward: copying the output out failed");
            return -1;
        }
    }
    if (s_arena_cut(self)) {
        snprintf(err, errlen, "unet: out of memory cutting the arena to its peak");
        return -1;
    }
    return 0;
}
