/* kernels/layout.h: image activations in either memory layout, NCHW or channels last (NHWC):
 * their shapes, and the ops that differ between the two. The UNet and the VAE decoder choose a
 * layout once (dq_backend_use_nhwc) and build every image tensor and call through these. */
#ifndef DQ_LAYOUT_H
#define DQ_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/arena.h"
#include "kernels/backend.h"
#include "kernels/tensor.h"

/* The dims of an image activation: channels, height, width. */
static inline int dq_layout_dim_c(bool nhwc) { return nhwc ? 3 : 1; }
static inline int dq_layout_dim_h(bool nhwc) { return nhwc ? 1 : 2; }
static inline int dq_layout_dim_w(bool nhwc) { return nhwc ? 2 : 3; }

/* out = [n, c, h, w] in the layout ([n, h, w, c] channels last). */
void dq_layout_shape(bool nhwc, int64_t n, int64_t c, int64_t h, int64_t w, int64_t out[4]);
/* An image activation [n, c, h, w] of dtype in the layout from arena, or NULL (logged). */
dq_tensor_t *dq_layout_image(dq_arena_t *arena, bool nhwc, dq_dtype_t dtype, int64_t n,
                             int64_t c, int64_t h, int64_t w, const char *name);
/* dq_op_conv2d_residual, or dq_op_conv2d_nhwc (w then [Co, kh, kw, Ci]); a per-image residual
 * is [N, Co, 1, 1], or [N, 1, 1, Co] channels last. */
int dq_layout_conv(dq_backend_t *be, bool nhwc, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                   dq_tensor_t *y);
/* Group norm over the layout's channel dim, then SiLU with silu. */
int dq_layout_group_norm(dq_backend_t *be, bool nhwc, const dq_tensor_t *x,
                         const dq_tensor_t *gamma, const dq_tensor_t *beta, int groups, float eps,
                         bool silu, dq_tensor_t *y);
/* Nearest 2x upsampling of the layout's height and width. */
int dq_layout_upsample2x(dq_backend_t *be, bool nhwc, const dq_tensor_t *x, dq_tensor_t *y);

#endif
