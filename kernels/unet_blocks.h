/* kernels/unet_blocks.h: the building blocks of diffusers' UNet2DConditionModel (ResnetBlock2D,
 * Transformer2DModel with BasicTransformerBlock, Downsample2D, Upsample2D, the sinusoidal
 * timestep embedding), each with its weights looked up once by checkpoint name. */
#ifndef DQ_UNET_BLOCKS_H
#define DQ_UNET_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/arena.h"
#include "kernels/backend.h"
#include "kernels/tensor.h"
#include "kernels/weights.h"

/* What every block's forward needs: where to run and where temporaries come from. A forward
 * takes temporaries above the arena's current position and returns it there. */
typedef struct {
    dq_backend_t *be; /* borrowed */
    dq_arena_t *arena; /* borrowed: activations */
    dq_dtype_t act;    /* the activations' dtype: F32, or F16 (the UNet's choice at creation) */
    bool nhwc;         /* image activations are [N, H, W, C] (channels last) and conv weights
                          [Co, kh, kw, Ci] (the UNet's choice at creation); else [N, C, H, W] */
} dq_unet_run_t;

/* The layout in one place: the dims of an image activation, and the ops that differ. Shapes
 * below are written NCHW; with run->nhwc they are the same tensors channels last. */
static inline int dq_unet_dim_c(const dq_unet_run_t *run) { return run->nhwc ? 3 : 1; }
static inline int dq_unet_dim_h(const dq_unet_run_t *run) { return run->nhwc ? 1 : 2; }
static inline int dq_unet_dim_w(const dq_unet_run_t *run) { return run->nhwc ? 2 : 3; }
/* An image activation [N, C, H, W] in the run's layout and dtype from run->arena, or NULL. */
dq_tensor_t *dq_unet_image(const dq_unet_run_t *run, int64_t n, int64_t c, int64_t h, int64_t w,
                           const char *name);
/* dq_op_conv2d_residual or dq_op_conv2d_nhwc. */
int dq_unet_conv(const dq_unet_run_t *run, const dq_tensor_t *x, const dq_tensor_t *w,
                 const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                 dq_tensor_t *y);
/* Group norm (then SiLU with silu) over the run's channel dim. */
int dq_unet_group_norm(const dq_unet_run_t *run, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, int groups, float eps, bool silu, dq_tensor_t *y);

/* diffusers ResnetBlock2D (resnet_time_scale_shift "default", no up/down inside). All tensors are
 * borrowed from a dq_weights_t. */
typedef struct {
    int in_ch, out_ch;
    int groups;        /* norm_num_groups of both GroupNorms */
    float eps;         /* norm_eps */
    float out_scale;   /* output_scale_factor: output = (shortcut + h) / out_scale */
    const dq_tensor_t *norm1_w, *norm1_b, *conv1_w, *conv1_b;
    const dq_tensor_t *temb_w, *temb_b; /* time_emb_proj: [out_ch, temb_dim], [out_ch] */
    const dq_tensor_t *norm2_w, *norm2_b, *conv2_w, *conv2_b;
    const dq_tensor_t *short_w, *short_b; /* conv_shortcut 1x1, NULL when in_ch == out_ch */
} dq_unet_resnet_t;

/* Looks up `prefix`.norm1.weight ... Returns 0, or -1 with err naming the missing weight. */
int dq_unet_resnet_init(dq_unet_resnet_t *r, const dq_weights_t *w, const char *prefix, int in_ch,
                        int out_ch, int groups, float eps, float out_scale, char *err,
                        size_t errlen);
/* x: [N, in_ch, H, W]; temb_act: [N, temb_dim] = silu(time embedding); y: [N, out_ch, H, W],
 * distinct from x. Returns 0, or -1 after the failing op logged. */
int dq_unet_resnet_forward(const dq_unet_resnet_t *r, const dq_unet_run_t *run,
                           const dq_tensor_t *x, const dq_tensor_t *temb_act, dq_tensor_t *y);

/* One attention of a BasicTransformerBlock: to_q/to_k/to_v without bias, to_out.0 with bias. */
typedef struct {
    const dq_tensor_t *q_w, *k_w, *v_w, *out_w, *out_b;
} dq_unet_attn_t;

/* diffusers Transformer2DModel with one BasicTransformerBlock (SD 1.x/2.x: layer norms,
 * self-attention, cross-attention, GEGLU feed-forward). */
typedef struct {
    int channels;      /* inner_dim = heads * head_dim = the block's channels */
    int heads;
    int groups;        /* GroupNorm groups (norm_num_groups); its eps is 1e-6 in diffusers */
    bool linear_proj;  /* use_linear_projection: proj_in/out are Linear (SD 2.x), else 1x1 Conv */
    const dq_tensor_t *norm_w, *norm_b;
    const dq_tensor_t *proj_in_w, *proj_in_b, *proj_out_w, *proj_out_b; /* as stored */
    const dq_tensor_t *ln1_w, *ln1_b, *ln2_w, *ln2_b, *ln3_w, *ln3_b;
    dq_unet_attn_t attn1, attn2;
    const dq_tensor_t *ff0_w, *ff0_b; /* ff.net.0.proj: [2*F, C] (GEGLU) */
    const dq_tensor_t *ff2_w, *ff2_b; /* ff.net.2: [C, F] */
    dq_tensor_t proj_in_2d, proj_out_2d; /* proj_in/out as [C, C] Linear weights (views of a
                                            1x1 conv's 4-D weight in either layout) */
} dq_unet_transformer_t;

/* Looks up `prefix`.norm.weight, `prefix`.transformer_blocks.0.... Returns 0 or -1 with err. */
int dq_unet_transformer_init(dq_unet_transformer_t *t, const dq_weights_t *w, const char *prefix,
                             int channels, int heads, int groups, bool linear_proj, char *err,
                             size_t errlen);
/* x: [N, C, H, W], updated in place (the block's residual is x itself); context: [N, L, D].
 * Channels last, x viewed as [N, HW, C] is the tokens: no transposes, and proj_in/out run as
 * linears whatever linear_proj says. */
int dq_unet_transformer_forward(const dq_unet_transformer_t *t, const dq_unet_run_t *run,
                                dq_tensor_t *x, const dq_tensor_t *context);

/* Downsample2D / Upsample2D with their 3x3 conv (`prefix`.conv.weight/bias). */
typedef struct {
    const dq_tensor_t *conv_w, *conv_b;
    int padding; /* downsample_padding (1 for SD) */
} dq_unet_resample_t;

int dq_unet_resample_init(dq_unet_resample_t *s, const dq_weights_t *w, const char *prefix,
                          int padding, char *err, size_t errlen);
/* Conv 3x3, stride 2: x [N, C, H, W] -> y [N, C, (H + 2p - 3)/2 + 1, (W + 2p - 3)/2 + 1]. */
int dq_unet_downsample_forward(const dq_unet_resample_t *s, const dq_unet_run_t *run,
                               const dq_tensor_t *x, dq_tensor_t *y);
/* F.interpolate(x, size=(Ho, Wo), mode="nearest") then conv 3x3 pad 1: x [N, C, H, W] ->
 * y [N, C, Ho, Wo] with Ho in {2H - 1, 2H} and Wo in {2W - 1, 2W} (the skip's size, which is
 * what diffusers passes as upsample_size; for those sizes nearest's source index floor(i*H/Ho)
 * equals i/2, so it is a x2 upsample cropped). Other sizes fail with a message. */
int dq_unet_upsample_forward(const dq_unet_resample_t *s, const dq_unet_run_t *run,
                             const dq_tensor_t *x, dq_tensor_t *y);

/* diffusers get_timestep_embedding in float32 as torch computes it: for i < half = dim/2,
 * freq_i = exp(-ln(10000) * i / (half - shift)), arg = t * freq_i, emb = [sin(arg), cos(arg)],
 * halves swapped when flip_sin_to_cos. t: n values, out: [n, dim] row-major host memory.
 * dim must be even and > 2*shift (checked by the caller's config). */
void dq_unet_time_proj(const float *t, int n, int dim, bool flip_sin_to_cos, int shift,
                       float *out);

#endif
