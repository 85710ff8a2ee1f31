/* kernels/ops.h: the ops a network calls; each checks its arguments and runs on a backend. */
#ifndef DQ_OPS_H
#define DQ_OPS_H

#include <stdbool.h>

#include "kernels/backend.h"
#include "kernels/tensor.h"

/* Conventions for every dq_op_*:
 * - Shapes are in PyTorch order (outermost first). "[..., K]" means any leading dimensions.
 * - Activations (inputs and outputs that are not weights) are contiguous and F32, or F16 where
 *   the backend's supports_activation says so (kernels/backend.h); all activations of one call
 *   share a dtype (cpy and get_rows convert: see them). F16 is storage only: backends compute
 *   in f32 (reductions wider) and round once when they store. Biases, gamma and beta are F32
 *   whatever the activations. "weight" operands may be F32, F16 or BF16 where the backend's
 *   supports_op says so. A mixed-dtype call or an activation dtype the backend does not take
 *   fails validation.
 * - The output y is allocated by the caller (usually from an arena) with the exact shape given.
 *   Elementwise ops (gelu, gelu_quick, silu, add, mul, scale) may run in place (y == x or
 *   y == a); the others need y distinct from their inputs.
 * - Return 0, or -1 after logging the op, the offending tensor (name and shape) and what was
 *   expected. Nothing is written to y on a validation failure.
 * - Numerics follow PyTorch's f32 CPU results (biased variance, eps inside the sqrt, erf GELU,
 *   max-subtracted softmax); reductions accumulate in double. */

/* Example: the first half of a diffusers ResnetBlock2D (norm1 -> SiLU -> conv1 -> + time emb),
 * temporaries from an arena that is rewound when the block is done:
 *
 *     // x: [N, C, H, W], temb: [N, C] (already projected), out: [N, C, H, W]
 *     dq_arena_mark_t m = dq_arena_mark(arena);
 *     dq_tensor_t *h = dq_arena_like(arena, x, "h");
 *     if (!h || dq_op_group_norm_silu(be, x, blk->norm1_w, blk->norm1_b, 32, 1e-5f, h) ||
 *         dq_op_conv2d(be, h, blk->conv1_w, blk->conv1_b, 1, 1, out))
 *         goto fail;
 *     dq_tensor_t t4;                                                 // temb as [N, C, 1, 1]
 *     if (dq_tensor_reshape(&t4, temb, 4, (int64_t[]){N, C, 1, 1}) ||
 *         dq_op_add(be, out, &t4, out))                               // broadcast over H, W
 *         goto fail;
 *     dq_arena_reset(arena, m);
 *
 * NCHW -> [N, HW, C] for a transformer block: reshape x to [N, C, HW], dq_tensor_permute it with
 * {0, 2, 1}, then dq_op_cpy into an [N, HW, C] tensor; the way back is the same in reverse. */

/* y[..., N] = x[..., K] @ w[N, K]^T + bias[N]. bias may be NULL. The leading dims of x and y
 * must match. w: F32, F16 or BF16 (as nn.Linear stores it). */
int dq_op_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                 const dq_tensor_t *bias, dq_tensor_t *y);
/* y = linear(x, w, bias) + residual in one op: the residual connections of the transformer
 * blocks (x = to_out(attn(norm(x))) + x). residual has y's shape and dtype and is either y
 * itself (y += linear(...)) or a tensor that does not overlap y; it may be x's memory when y is
 * distinct. A backend may sum the three terms in any order (the CPU and CUDA backends start y
 * as residual + bias and let the GEMM accumulate onto it), so the result can differ from
 * dq_op_linear then dq_op_add by rounding. */
int dq_op_linear_residual(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                          const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y);

/* y[B.., M, N] = alpha * a[B.., M, K] @ b[B.., K, N], or with trans_b, b is [B.., N, K] and
 * y = alpha * a @ b^T. ndim 2..4; leading dims are the batch; b's batch is a's or 1 (shared). */
int dq_op_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                 float alpha, dq_tensor_t *y);

/* y[N, Co, Ho, Wo] = conv2d(x[N, Ci, H, W], w[Co, Ci, kh, kw]) + bias[Co], stride and zero
 * padding equal in both directions, dilation 1, groups 1, Ho = (H + 2*padding - kh)/stride + 1.
 * bias may be NULL. w: F32, F16 or BF16. */
int dq_op_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                 const dq_tensor_t *bias, int stride, int padding, dq_tensor_t *y);
/* y = conv2d(x, w, bias) + residual in one op: a ResnetBlock2D's shortcut add and a spatial
 * transformer's x + proj_out(...). residual: as for dq_op_linear_residual (y itself, or a
 * tensor of y's shape and dtype not overlapping y), or [N, Co, 1, 1], one value per image and
 * channel, broadcast over the plane (a ResnetBlock2D's time embedding after conv1). */
int dq_op_conv2d_residual(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                          const dq_tensor_t *bias, int stride, int padding,
                          const dq_tensor_t *residual, dq_tensor_t *y);

/* torch.nn.GroupNorm: x[N, C, ...] split into groups of C/groups channels; each (n, group) is
 * normalised with its mean and biased variance: (x - mean) / sqrt(var + eps) * gamma[c] + beta[c].
 * gamma and beta are both NULL (no affine) or both [C]. groups must divide C. y: x's shape. */
int dq_op_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                     const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
/* y = silu(group_norm(x)) in one pass over the data: diffusers' ResnetBlock2D norm1/norm2 and
 * the UNet's and VAE's conv_norm_out are always followed by SiLU. Same arguments and checks as
 * dq_op_group_norm; the CPU backend's result is bit-identical to dq_op_group_norm followed by
 * dq_op_silu. */
int dq_op_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                          const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);

/* torch.nn.LayerNorm over the last dim: x[..., D], gamma/beta [D] or both NULL. y: x's shape. */
int dq_op_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                     const dq_tensor_t *beta, float eps, dq_tensor_t *y);

/* Softmax over the last dim of x[..., D] (max subtracted first). y: x's shape. */
int dq_op_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);

/* Multi-head scaled dot-product attention as F.scaled_dot_product_attention computes it, with
 * heads packed in the last dim as nn.Linear projections produce them:
 *   q[B, Lq, H*D], k[B, Lk, H*D], v[B, Lk, H*D] -> y[B, Lq, H*D],
 *   y_h = softmax(q_h k_h^T / sqrt(D) + mask) v_h for each head h (columns h*D..h*D+D-1).
 * causal masks key j > query i (CLIP's text encoder; needs Lq == Lk). Memory stays bounded:
 * queries are processed in blocks sized to the backend's workspace. */
int dq_op_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                    const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y);

/* Exact GELU, torch's default: 0.5 * x * (1 + erf(x / sqrt(2))). y: x's shape. */
int dq_op_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
/* CLIP's quick_gelu: x * sigmoid(1.702 * x). */
int dq_op_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
/* SiLU: x * sigmoid(x). */
int dq_op_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
/* diffusers GEGLU after its projection: x[..., 2F] is split into (h, gate) = x.chunk(2, -1);
 * y[..., F] = h * gelu(gate). */
int dq_op_geglu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);

/* y = a + b and y = a * b with b broadcast to a's shape, numpy style: b's dims align with a's
 * innermost dims and each is a's size or 1 (e.g. a[N, C, H, W] + b[C, 1, 1] for a channel bias,
 * a[N, C, H, W] + b[N, C, 1, 1] for a time embedding). y: a's shape. */
int dq_op_add(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y);
int dq_op_mul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y);
/* y = x * s + b for scalars s and b. */
int dq_op_scale(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y);

/* F.interpolate(scale_factor=2, mode="nearest"): x[N, C, H, W] -> y[N, C, 2H, 2W]. */
int dq_op_upsample_nearest2x(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
/* torch.cat([a, b], dim): shapes equal except along dim; y has the sum there. */
int dq_op_concat(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                 dq_tensor_t *y);
/* y = x made contiguous in y's dtype (an activation dtype: F32, or F16 where supported): x may
 * be any view (permute, slice) and F32, F16 or BF16, converted with one rounding (to nearest
 * even) when y is F16. Use it for NCHW <-> NHWC: permute a view with dq_tensor_permute, then
 * cpy; and for F32 <-> F16 activations. y: x's shape. */
int dq_op_cpy(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
/* Embedding lookup: y[..., D] row r = table[ids[r], :]. table [V, D] F32/F16/BF16, ids I32
 * contiguous with as many elements as y has rows. y: an activation dtype (F32, or F16 where
 * supported), whatever the table's. An id outside [0, V) is an error. */
int dq_op_get_rows(dq_backend_t *be, const dq_tensor_t *table, const dq_tensor_t *ids,
                   dq_tensor_t *y);

/* ---- Channels last (NHWC): the same ops on [N, H, W, C] activations. On a GPU they let
 * cuDNN's tensor-core convolutions take the activations as they are (it transposes NCHW data
 * itself), and a transformer block's tokens [N, HW, C] are then the activation, not a transposed
 * copy. A backend offers them through its supports_op; add, concat (dim 3), linear, the
 * activations and the norms over the last dim need no variant. ---- */

/* conv2d on x[N, H, W, Ci] with w[Co, kh, kw, Ci] (dq_op_conv2d's weight permuted {0, 2, 3, 1}:
 * cuDNN's KRSC), y[N, Ho, Wo, Co], Ho and Wo as for dq_op_conv2d. bias [Co] or NULL; residual
 * NULL, y itself, a tensor of y's shape not overlapping y, or [N, 1, 1, Co] (one value per image
 * and channel). */
int dq_op_conv2d_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                      const dq_tensor_t *bias, int stride, int padding,
                      const dq_tensor_t *residual, dq_tensor_t *y);
/* dq_op_group_norm and dq_op_group_norm_silu with the channels in the last dim: x[N, ..., C],
 * each (n, group) normalised over its C/groups channels at every position. */
int dq_op_group_norm_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                          const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
int dq_op_group_norm_silu_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                               const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
/* Nearest 2x upsampling x[N, H, W, C] -> y[N, 2H, 2W, C]. */
int dq_op_upsample_nearest2x_nhwc(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);

#endif
