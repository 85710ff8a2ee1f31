/* kernels/layout.c: image activations in either memory layout (see layout.h). */
#include "kernels/layout.h"

#include "kernels/ops.h"

void dq_layout_shape(bool nhwc, int64_t n, int64_t c, int64_t h, int64_t w, int64_t out[4]) {
    out[0] = n;
    out[1] = nhwc ? h : c;
    out[2] = nhwc ? w : h;
    out[3] = nhwc ? c : w;
}

dq_tensor_t *dq_layout_image(dq_arena_t *arena, bool nhwc, dq_dtype_t dtype, int64_t n,
                             int64_t c, int64_t h, int64_t w, const char *name) {
    int64_t shape[4];
    dq_layout_shape(nhwc, n, c, h, w, shape);
    return dq_arena_tensor(arena, dtype, 4, shape, name);
}

int dq_layout_conv(dq_backend_t *be, bool nhwc, const dq_tensor_t *x, const dq_tensor_t *w,
                   const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                   dq_tensor_t *y) {
    return nhwc ? dq_op_conv2d_nhwc(be, x, w, bias, stride, padding, residual, y)
                : dq_op_conv2d_residual(be, x, w, bias, stride, padding, residual, y);
}

int dq_layout_group_norm(dq_backend_t *be, bool nhwc, const dq_tensor_t *x,
                         const dq_tensor_t *gamma, const dq_tensor_t *beta, int groups, float eps,
                         bool silu, dq_tensor_t *y) {
    if (nhwc)
        return silu ? dq_op_group_norm_silu_nhwc(be, x, gamma, beta, groups, eps, y)
                    : dq_op_group_norm_nhwc(be, x, gamma, beta, groups, eps, y);
    return silu ? dq_op_group_norm_silu(be, x, gamma, beta, groups, eps, y)
                : dq_op_group_norm(be, x, gamma, beta, groups, eps, y);
}

int dq_layout_upsample2x(dq_backend_t *be, bool nhwc, const dq_tensor_t *x, dq_tensor_t *y) {
    return nhwc ? dq_op_upsample_nearest2x_nhwc(be, x, y) : dq_op_upsample_nearest2x(be, x, y);
}
