/* kernels/unet_blocks.c: ResnetBlock2D, Transformer2DModel, Downsample2D, Upsample2D and the
 * timestep embedding of diffusers' UNet2DConditionModel (diffusers 0.42: models/resnet.py,
 * models/transformers/transformer_2d.py, models/attention.py, models/embeddings.py). */
#include "kernels/unet_blocks.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "kernels/ops.h"

/* Transformer2DModel's GroupNorm eps (hard-coded 1e-6 in diffusers) and BasicTransformerBlock's
 * LayerNorm eps (its norm_eps default, 1e-5). */
#define DQ_UNET_TF_GN_EPS 1e-6f
#define DQ_UNET_TF_LN_EPS 1e-5f

/* Looks up prefix.name; on a miss writes err once (the first miss) and counts it in *bad. */
static const dq_tensor_t *s_w(const dq_weights_t *w, const char *prefix, const char *name,
                              int *bad, char *err, size_t errlen) {
    const dq_tensor_t *t = dq_weights_getf(w, "%s.%s", prefix, name);
    if (!t && (*bad)++ == 0) snprintf(err, errlen, "unet: weight %s.%s is missing", prefix, name);
    return t;
}

int dq_unet_resnet_init(dq_unet_resnet_t *r, const dq_weights_t *w, const char *prefix, int in_ch,
                        int out_ch, int groups, float eps, float out_scale, char *err,
                        size_t errlen) {
    int bad = 0;
    *r = (dq_unet_resnet_t){.in_ch = in_ch, .out_ch = out_ch, .groups = groups, .eps = eps,
                            .out_scale = out_scale};
    r->norm1_w = s_w(w, prefix, "norm1.weight", &bad, err, errlen);
    r->norm1_b = s_w(w, prefix, "norm1.bias", &bad, err, errlen);
    r->conv1_w = s_w(w, prefix, "conv1.weight", &bad, err, errlen);
    r->conv1_b = s_w(w, prefix, "conv1.bias", &bad, err, errlen);
    r->temb_w = s_w(w, prefix, "time_emb_proj.weight", &bad, err, errlen);
    r->temb_b = s_w(w, prefix, "time_emb_proj.bias", &bad, err, errlen);
    r->norm2_w = s_w(w, prefix, "norm2.weight", &bad, err, errlen);
    r->norm2_b = s_w(w, prefix, "norm2.bias", &bad, err, errlen);
    r->conv2_w = s_w(w, prefix, "conv2.weight", &bad, err, errlen);
    r->conv2_b = s_w(w, prefix, "conv2.bias", &bad, err, errlen);
    if (in_ch != out_ch) {
        r->short_w = s_w(w, prefix, "conv_shortcut.weight", &bad, err, errlen);
        r->short_b = s_w(w, prefix, "conv_shortcut.bias", &bad, err, errlen);
    }
    return bad ? -1 : 0;
}

dq_tensor_t *dq_unet_image(const dq_unet_run_t *run, int64_t n, int64_t c, int64_t h, int64_t w,
                           const char *name) {
    const int64_t shape[4] = {n, run->nhwc ? h : c, run->nhwc ? w : h, run->nhwc ? c : w};
    return dq_arena_tensor(run->arena, run->act, 4, shape, name);
}

int dq_unet_conv(const dq_unet_run_t *run, const dq_tensor_t *x, const dq_tensor_t *w,
                 const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                 dq_tensor_t *y) {
    return run->nhwc ? dq_op_conv2d_nhwc(run->be, x, w, bias, stride, padding, residual, y)
                     : dq_op_conv2d_residual(run->be, x, w, bias, stride, padding, residual, y);
}

int dq_unet_group_norm(const dq_unet_run_t *run, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, int groups, float eps, bool silu, dq_tensor_t *y) {
    dq_backend_t *be = run->be;
    if (run->nhwc)
        return silu ? dq_op_group_norm_silu_nhwc(be, x, gamma, beta, groups, eps, y)
                    : dq_op_group_norm_nhwc(be, x, gamma, beta, groups, eps, y);
    return silu ? dq_op_group_norm_silu(be, x, gamma, beta, groups, eps, y)
                : dq_op_group_norm(be, x, gamma, beta, groups, eps, y);
}

int dq_unet_resnet_forward(const dq_unet_resnet_t *r, const dq_unet_run_t *run,
                           const dq_tensor_t *x, const dq_tensor_t *temb_act, dq_tensor_t *y) {
    dq_backend_t *be = run->be;
    dq_arena_t *a = run->arena;
    const int64_t n = x->shape[0], h = x->shape[dq_unet_dim_h(run)];
    const int64_t wd = x->shape[dq_unet_dim_w(run)];
    int rc = -1;
    dq_arena_mark_t m = dq_arena_mark(a);
    // t1: [N, in_ch, H, W] = silu(norm1(x))
    dq_tensor_t *t1 = dq_arena_like(a, x, "resnet.norm1");
    if (!t1 || dq_unet_group_norm(run, x, r->norm1_w, r->norm1_b, r->groups, r->eps, true, t1))
        goto done;
    // t2: [N, out_ch, H, W] = conv1(t1) + time_emb_proj(temb_act)[:, :, None, None]
    dq_tensor_t *t2 = dq_unet_image(run, n, r->out_ch, h, wd, "resnet.conv1");
    dq_tensor_t *tp = dq_arena_tensor(a, run->act, 2, (int64_t[]){n, r->out_ch},
                                      "resnet.temb");
    // the projection as one value per image and channel: conv1 adds it to every pixel
    const int64_t per_image[4] = {n, run->nhwc ? 1 : r->out_ch, 1, run->nhwc ? r->out_ch : 1};
    dq_tensor_t tp4;
    if (!t2 || !tp || dq_op_linear(be, temb_act, r->temb_w, r->temb_b, tp) ||
        dq_tensor_reshape(&tp4, tp, 4, per_image) ||
        dq_unet_conv(run, t1, r->conv1_w, r->conv1_b, 1, 1, &tp4, t2))
        goto done;
    // t3: [N, out_ch, H, W] = silu(norm2(t2))
    dq_tensor_t *t3 = dq_arena_like(a, t2, "resnet.norm2");
    if (!t3 || dq_unet_group_norm(run, t2, r->norm2_w, r->norm2_b, r->groups, r->eps, true, t3))
        goto done;
    // y = (shortcut(x) + conv2(t3)) / out_scale (dropout is identity); shortcut is
    // conv_shortcut (1x1, written into y first) or identity; conv2 adds onto it in one op
    if (r->short_w) {
        if (dq_unet_conv(run, x, r->short_w, r->short_b, 1, 0, NULL, y) ||
            dq_unet_conv(run, t3, r->conv2_w, r->conv2_b, 1, 1, y, y))
            goto done;
    } else if (dq_unet_conv(run, t3, r->conv2_w, r->conv2_b, 1, 1, x, y)) {
        goto done;
    }
    if (r->out_scale != 1.0f && dq_op_scale(be, y, 1.0f / r->out_scale, 0.0f, y)) goto done;
    rc = 0;
done:
    dq_arena_reset(a, m);
    return rc;
}

static int s_attn_init(dq_unet_attn_t *at, const dq_weights_t *w, const char *prefix,
                       const char *which, int *bad, char *err, size_t errlen) {
    char p[256];
    snprintf(p, sizeof p, "%s.transformer_blocks.0.%s", prefix, which);
    at->q_w = s_w(w, p, "to_q.weight", bad, err, errlen);
    at->k_w = s_w(w, p, "to_k.weight", bad, err, errlen);
    at->v_w = s_w(w, p, "to_v.weight", bad, err, errlen);
    at->out_w = s_w(w, p, "to_out.0.weight", bad, err, errlen);
    at->out_b = s_w(w, p, "to_out.0.bias", bad, err, errlen);
    return *bad ? -1 : 0;
}

/* A 1x1 conv weight ([C, C, 1, 1], or [C, 1, 1, C] channels last: the same memory) seen as a
 * [C, C] linear weight, or the 2-D tensor itself; NULL for anything else. */
static const dq_tensor_t *s_as_linear(const dq_tensor_t *w, dq_tensor_t *view) {
    if (w->ndim == 2) return w;
    int64_t k = dq_tensor_nelements(w) / w->shape[0];
    if (w->ndim != 4 || w->shape[0] != k ||
        dq_tensor_reshape(view, w, 2, (int64_t[]){w->shape[0], k}))
        return NULL;
    return view;
}

int dq_unet_transformer_init(dq_unet_transformer_t *t, const dq_weights_t *w, const char *prefix,
                             int channels, int heads, int groups, bool linear_proj, char *err,
                             size_t errlen) {
    int bad = 0;
    char p[256];
    *t = (dq_unet_transformer_t){.channels = channels, .heads = heads, .groups = groups,
                                 .linear_proj = linear_proj};
    if (heads <= 0 || channels % heads != 0) {
        snprintf(err, errlen, "unet: %s: %d channels do not split into %d heads", prefix,
                 channels, heads);
        return -1;
    }
    t->norm_w = s_w(w, prefix, "norm.weight", &bad, err, errlen);
    t->norm_b = s_w(w, prefix, "norm.bias", &bad, err, errlen);
    t->proj_in_w = s_w(w, prefix, "proj_in.weight", &bad, err, errlen);
    t->proj_in_b = s_w(w, prefix, "proj_in.bias", &bad, err, errlen);
    t->proj_out_w = s_w(w, prefix, "proj_out.weight", &bad, err, errlen);
    t->proj_out_b = s_w(w, prefix, "proj_out.bias", &bad, err, errlen);
    snprintf(p, sizeof p, "%s.transformer_blocks.0", prefix);
    t->ln1_w = s_w(w, p, "norm1.weight", &bad, err, errlen);
    t->ln1_b = s_w(w, p, "norm1.bias", &bad, err, errlen);
    t->ln2_w = s_w(w, p, "norm2.weight", &bad, err, errlen);
    t->ln2_b = s_w(w, p, "norm2.bias", &bad, err, errlen);
    t->ln3_w = s_w(w, p, "norm3.weight", &bad, err, errlen);
    t->ln3_b = s_w(w, p, "norm3.bias", &bad, err, errlen);
    t->ff0_w = s_w(w, p, "ff.net.0.proj.weight", &bad, err, errlen);
    t->ff0_b = s_w(w, p, "ff.net.0.proj.bias", &bad, err, errlen);
    t->ff2_w = s_w(w, p, "ff.net.2.weight", &bad, err, errlen);
    t->ff2_b = s_w(w, p, "ff.net.2.bias", &bad, err, errlen);
    if (s_attn_init(&t->attn1, w, prefix, "attn1", &bad, err, errlen) ||
        s_attn_init(&t->attn2, w, prefix, "attn2", &bad, err, errlen))
        return -1;
    /* SD 2.x stores Linear [C, C], SD 1.x a 1x1 conv (the same numbers): both get [C, C] views,
     * for the linear projections and for the channels-last path. */
    const dq_tensor_t *in2 = s_as_linear(t->proj_in_w, &t->proj_in_2d);
    const dq_tensor_t *out2 = s_as_linear(t->proj_out_w, &t->proj_out_2d);
    if (!in2 || !out2) {
        snprintf(err, errlen, "unet: %s: proj_in/proj_out are not [C, C] matrices or 1x1 convs",
                 prefix);
        return -1;
    }
    if (in2 != &t->proj_in_2d) t->proj_in_2d = *in2;
    if (out2 != &t->proj_out_2d) t->proj_out_2d = *out2;
    return 0;
}

/* o: [N, Lq, C] += to_out(attention(to_q(xq), to_k(xkv), to_v(xkv))) (the block's residual),
 * xq: [N, Lq, C], xkv: [N, Lk, Dkv]. o is distinct from the inputs. */
static int s_attention(const dq_unet_attn_t *at, int heads, const dq_unet_run_t *run,
                       const dq_tensor_t *xq, const dq_tensor_t *xkv, dq_tensor_t *o) {
    dq_backend_t *be = run->be;
    dq_arena_t *a = run->arena;
    const int64_t n = xq->shape[0], lk = xkv->shape[1], c = at->q_w->shape[0];
    int rc = -1;
    dq_arena_mark_t m = dq_arena_mark(a);
    dq_tensor_t *q = dq_arena_like(a, o, "attn.q");                                // [N, Lq, C]
    dq_tensor_t *k = dq_arena_tensor(a, run->act, 3, (int64_t[]){n, lk, c}, "attn.k");
    dq_tensor_t *v = dq_arena_tensor(a, run->act, 3, (int64_t[]){n, lk, c}, "attn.v");
    dq_tensor_t *y = dq_arena_like(a, o, "attn.y");                                // [N, Lq, C]
    if (q && k && v && y && !dq_op_linear(be, xq, at->q_w, NULL, q) &&
        !dq_op_linear(be, xkv, at->k_w, NULL, k) && !dq_op_linear(be, xkv, at->v_w, NULL, v) &&
        !dq_op_attention(be, q, k, v, heads, false, y) &&
        !dq_op_linear_residual(be, y, at->out_w, at->out_b, o, o))
        rc = 0;
    dq_arena_reset(a, m);
    return rc;
}

/* BasicTransformerBlock on tokens x: [N, L, C] (in place), context: [N, Lc, D]. */
static int s_basic_block(const dq_unet_transformer_t *t, const dq_unet_run_t *run,
                         dq_tensor_t *x, const dq_tensor_t *context) {
    dq_backend_t *be = run->be;
    dq_arena_t *a = run->arena;
    const int64_t n = x->shape[0], l = x->shape[1], f = t->ff2_w->shape[1];
    int rc = -1;
    dq_arena_mark_t m = dq_arena_mark(a);
    dq_tensor_t *nx = dq_arena_like(a, x, "tf.norm"); // [N, L, C]
    if (!nx) goto done;
    // x = attn1(norm1(x)) + x (self-attention)
    if (dq_op_layer_norm(be, x, t->ln1_w, t->ln1_b, DQ_UNET_TF_LN_EPS, nx) ||
        s_attention(&t->attn1, t->heads, run, nx, nx, x))
        goto done;
    // x = attn2(norm2(x), context) + x (cross-attention)
    if (dq_op_layer_norm(be, x, t->ln2_w, t->ln2_b, DQ_UNET_TF_LN_EPS, nx) ||
        s_attention(&t->attn2, t->heads, run, nx, context, x))
        goto done;
    // x = ff(norm3(x)) + x, ff = net.2(geglu(net.0.proj(.))): [N, L, 2F] -> [N, L, F] -> [N, L, C]
    dq_tensor_t *pf = dq_arena_tensor(a, run->act, 3, (int64_t[]){n, l, 2 * f}, "ff.proj");
    dq_tensor_t *g = dq_arena_tensor(a, run->act, 3, (int64_t[]){n, l, f}, "ff.geglu");
    if (!pf || !g || dq_op_layer_norm(be, x, t->ln3_w, t->ln3_b, DQ_UNET_TF_LN_EPS, nx) ||
        dq_op_linear(be, nx, t->ff0_w, t->ff0_b, pf) || dq_op_geglu(be, pf, g) ||
        dq_op_linear_residual(be, g, t->ff2_w, t->ff2_b, x, x))
        goto done;
    rc = 0;
done:
    dq_arena_reset(a, m);
    return rc;
}

/* src: [N, A, B] (contiguous) -> dst: [N, B, A] (contiguous), a transposing copy. */
static int s_transpose(dq_backend_t *be, const dq_tensor_t *src, dq_tensor_t *dst) {
    dq_tensor_t v;
    if (dq_tensor_permute(&v, src, (const int[]){0, 2, 1})) return -1;
    return dq_op_cpy(be, &v, dst);
}

/* The channels-last forward: x [N, H, W, C] is the tokens [N, HW, C] itself. */
static int s_transformer_nhwc(const dq_unet_transformer_t *t, const dq_unet_run_t *run,
                              dq_tensor_t *x, const dq_tensor_t *context) {
    dq_backend_t *be = run->be;
    dq_arena_t *a = run->arena;
    const int64_t n = x->shape[0], l = x->shape[1] * x->shape[2], c = x->shape[3];
    int rc = -1;
    dq_arena_mark_t m = dq_arena_mark(a);
    // hn = GroupNorm(x), as tokens; tok = proj_in(hn)
    dq_tensor_t *hn = dq_arena_like(a, x, "tf.groupnorm");
    dq_tensor_t *tok = dq_arena_tensor(a, run->act, 3, (int64_t[]){n, l, c}, "tf.tokens");
    dq_tensor_t hn3, x3;
    if (!hn || !tok ||
        dq_op_group_norm_nhwc(be, x, t->norm_w, t->norm_b, t->groups, DQ_UNET_TF_GN_EPS, hn) ||
        dq_tensor_reshape(&hn3, hn, 3, (int64_t[]){n, l, c}) ||
        dq_tensor_reshape(&x3, x, 3, (int64_t[]){n, l, c}) ||
        dq_op_linear(be, &hn3, &t->proj_in_2d, t->proj_in_b, tok) ||
        s_basic_block(t, run, tok, context) ||
        // x += proj_out(tok)
        dq_op_linear_residual(be, tok, &t->proj_out_2d, t->proj_out_b, &x3, &x3))
        goto done;
    rc = 0;
done:
    dq_arena_reset(a, m);
    return rc;
}

int dq_unet_transformer_forward(const dq_unet_transformer_t *t, const dq_unet_run_t *run,
                                dq_tensor_t *x, const dq_tensor_t *context) {
    if (run->nhwc) return s_transformer_nhwc(t, run, x, context);
    dq_backend_t *be = run->be;
    dq_arena_t *a = run->arena;
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
    const int64_t l = h * wd;
    int rc = -1;
    dq_arena_mark_t m = dq_arena_mark(a);
    // hn: [N, C, H, W] = GroupNorm(x)
    dq_tensor_t *hn = dq_arena_like(a, x, "tf.groupnorm");
    dq_tensor_t *tok = dq_arena_tensor(a, run->act, 3, (int64_t[]){n, l, c}, "tf.tokens");
    dq_tensor_t *tmp = dq_arena_like(a, x, "tf.tmp"); // [N, C, H, W] or [N, L, C] by view
    dq_tensor_t hn3, tmp3, tmpl;
    if (!hn || !tok || !tmp ||
        dq_op_group_norm(be, x, t->norm_w, t->norm_b, t->groups, DQ_UNET_TF_GN_EPS, hn) ||
        dq_tensor_reshape(&tmp3, tmp, 3, (int64_t[]){n, c, l}) ||
        dq_tensor_reshape(&tmpl, tmp, 3, (int64_t[]){n, l, c}))
        goto done;
    if (!t->linear_proj) {
        // SD 1.x: proj_in 1x1 conv on NCHW, then tokens [N, HW, C]
        if (dq_op_conv2d(be, hn, t->proj_in_w, t->proj_in_b, 1, 0, tmp) ||
            s_transpose(be, &tmp3, tok))
            goto done;
    } else {
        // SD 2.x: tokens [N, HW, C] first, then proj_in Linear
        if (dq_tensor_reshape(&hn3, hn, 3, (int64_t[]){n, c, l}) ||
            s_transpose(be, &hn3, &tmpl) ||
            dq_op_linear(be, &tmpl, &t->proj_in_2d, t->proj_in_b, tok))
            goto done;
    }
    if (s_basic_block(t, run, tok, context)) goto done;
    // back to [N, C, H, W], proj_out, then x += result (x is the residual)
    if (!t->linear_proj) {
        if (s_transpose(be, tok, &tmp3) ||
            dq_op_conv2d_residual(be, tmp, t->proj_out_w, t->proj_out_b, 1, 0, x, x))
            goto done;
    } else {
        if (dq_op_linear(be, tok, &t->proj_out_2d, t->proj_out_b, &tmpl) ||
            dq_tensor_reshape(&hn3, hn, 3, (int64_t[]){n, c, l}) ||
            s_transpose(be, &tmpl, &hn3) || dq_op_add(be, hn, x, x))
            goto done;
    }
    rc = 0;
done:
    dq_arena_reset(a, m);
    return rc;
}

int dq_unet_resample_init(dq_unet_resample_t *s, const dq_weights_t *w, const char *prefix,
                          int padding, char *err, size_t errlen) {
    int bad = 0;
    s->padding = padding;
    s->conv_w = s_w(w, prefix, "conv.weight", &bad, err, errlen);
    s->conv_b = s_w(w, prefix, "conv.bias", &bad, err, errlen);
    return bad ? -1 : 0;
}

int dq_unet_downsample_forward(const dq_unet_resample_t *s, const dq_unet_run_t *run,
                               const dq_tensor_t *x, dq_tensor_t *y) {
    return dq_unet_conv(run, x, s->conv_w, s->conv_b, 2, s->padding, NULL, y);
}

int dq_unet_upsample_forward(const dq_unet_resample_t *s, const dq_unet_run_t *run,
                             const dq_tensor_t *x, dq_tensor_t *y) {
    dq_backend_t *be = run->be;
    dq_arena_t *a = run->arena;
    const int dh = dq_unet_dim_h(run), dw = dq_unet_dim_w(run);
    const int64_t n = x->shape[0], c = x->shape[dq_unet_dim_c(run)], h = x->shape[dh];
    const int64_t wd = x->shape[dw], ho = y->shape[dh], wo = y->shape[dw];
    if ((ho != 2 * h && ho != 2 * h - 1) || (wo != 2 * wd && wo != 2 * wd - 1)) {
        dq_error("unet upsample: %lldx%lld to %lldx%lld is not x2 or x2-1 (skip size mismatch)",
                 (long long) h, (long long) wd, (long long) ho, (long long) wo);
        return -1;
    }
    int rc = -1;
    dq_arena_mark_t m = dq_arena_mark(a);
    // u2: [N, C, 2H, 2W]; u: [N, C, Ho, Wo] (u2 itself, or its top-left crop)
    dq_tensor_t *u2 = dq_unet_image(run, n, c, 2 * h, 2 * wd, "upsample.x2");
    if (!u2 || (run->nhwc ? dq_op_upsample_nearest2x_nhwc(be, x, u2)
                          : dq_op_upsample_nearest2x(be, x, u2)))
        goto done;
    const dq_tensor_t *u = u2;
    if (ho != 2 * h || wo != 2 * wd) {
        dq_tensor_t v1, v2;
        dq_tensor_t *crop = dq_unet_image(run, n, c, ho, wo, "upsample.crop");
        if (!crop || dq_tensor_slice(&v1, u2, dh, 0, ho) || dq_tensor_slice(&v2, &v1, dw, 0, wo) ||
            dq_op_cpy(be, &v2, crop))
            goto done;
        u = crop;
    }
    if (dq_unet_conv(run, u, s->conv_w, s->conv_b, 1, 1, NULL, y)) goto done;
    rc = 0;
done:
    dq_arena_reset(a, m);
    return rc;
}

void dq_unet_time_proj(const float *t, int n, int dim, bool flip_sin_to_cos, int shift,
                       float *out) {
    const int half = dim / 2;
    /* Each step rounds to float32 as torch does: the scalar -ln(10000) is taken as a float,
     * arange is float, the division and exp are float ops. */
    const float neg_log = (float) -log(10000.0);
    const float denom = (float) (half - shift);
    for (int i = 0; i < n; i++) {
        float *row = out + (size_t) i * (size_t) dim;
        for (int k = 0; k < half; k++) {
            float e = (neg_log * (float) k) / denom;
            float arg = t[i] * expf(e);
            float sn = sinf(arg), cs = cosf(arg);
            row[flip_sin_to_cos ? half + k : k] = sn;
            row[flip_sin_to_cos ? k : half + k] = cs;
        }
    }
}
