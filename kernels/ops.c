/* kernels/ops.c: the ops a network calls; each checks its arguments and runs on a backend. */
#include "kernels/ops.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"

/* Logs "op: tensor[shape] dtype: message". Always returns -1, for `return s_fail(...)`. */
static int s_fail(dq_op_t op, const dq_tensor_t *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(dq_op_t op, const dq_tensor_t *t, const char *fmt, ...) {
    char d[96], msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dq_error("%s: %s: %s", dq_op_name(op), t ? dq_tensor_describe(t, d, sizeof d) : "-", msg);
    return -1;
}

/* Tensors in another backend's buffer cannot be read here. A NULL buffer means plain host
 * memory (e.g. an mmapped weight file), which only a host backend can use; such a backend
 * accepts it, others are expected to copy weights into their own buffers at load time. */
static int s_owned(dq_backend_t *be, dq_op_t op, const dq_tensor_t *t, const char *role) {
    if (t->buffer && t->buffer->backend != be)
        return s_fail(op, t, "%s belongs to another backend instance (%s) than the op's (%s)",
                      role, dq_backend_name(t->buffer->backend), dq_backend_name(be));
    return 0;
}

/* A contiguous tensor of dtype dt with data, in be's memory. why: what the dtype rule is. */
static int s_tensor(dq_backend_t *be, dq_op_t op, const dq_tensor_t *t, const char *role,
                    dq_dtype_t dt, const char *why) {
    if (!t) return s_fail(op, NULL, "%s is NULL", role);
    if (s_owned(be, op, t, role)) return -1;
    if (t->dtype != dt) return s_fail(op, t, "%s must be %s (%s)", role, dq_dtype_name(dt), why);
    if (!dq_tensor_is_contiguous(t)) return s_fail(op, t, "%s must be contiguous", role);
    if (!t->data) return s_fail(op, t, "%s has no data", role);
    return 0;
}

/* A further activation of an op whose activations are dt (the first one's dtype). */
static int s_act(dq_backend_t *be, dq_op_t op, const dq_tensor_t *t, const char *role,
                 dq_dtype_t dt) {
    return s_tensor(be, op, t, role, dt, "an op's activations share one dtype");
}

/* The op's first activation: F32, F16 or BF16, a dtype the backend takes for op; *dt gets it. */
static int s_act_first(dq_backend_t *be, dq_op_t op, const dq_tensor_t *t, const char *role,
                       dq_dtype_t *dt) {
    if (!t) return s_fail(op, NULL, "%s is NULL", role);
    if (t->dtype != DQ_DTYPE_F32 && t->dtype != DQ_DTYPE_F16 && t->dtype != DQ_DTYPE_BF16)
        return s_fail(op, t, "%s must be F32, F16 or BF16 (activations)", role);
    if (!dq_backend_supports_activation(be, op, t->dtype)) {
        if (!be->ops->supports_activation)
            return s_fail(op, t, "%s is %s but backend %s takes F32 activations only", role,
                          dq_dtype_name(t->dtype), dq_backend_name(be));
        return s_fail(op, t, "backend %s does not take %s activations for this op",
                      dq_backend_name(be), dq_dtype_name(t->dtype));
    }
    *dt = t->dtype;
    return s_act(be, op, t, role, *dt);
}

/* A contiguous weight operand of a float type the backend takes for op. */
static int s_weight(dq_backend_t *be, dq_op_t op, const dq_tensor_t *t, const char *role) {
    if (!t) return s_fail(op, NULL, "%s is NULL", role);
    if (s_owned(be, op, t, role)) return -1;
    if (!dq_tensor_is_contiguous(t)) return s_fail(op, t, "%s must be contiguous", role);
    if (!t->data) return s_fail(op, t, "%s has no data", role);
    if (!dq_backend_supports_op(be, op, t->dtype))
        return s_fail(op, t, "backend %s does not support %s of this dtype", dq_backend_name(be),
                      role);
    return 0;
}

static int s_ndim(dq_op_t op, const dq_tensor_t *t, int lo, int hi, const char *role) {
    if (t->ndim < lo || t->ndim > hi)
        return s_fail(op, t, "%s must have %d..%d dims", role, lo, hi);
    return 0;
}

static int s_same(dq_op_t op, const dq_tensor_t *x, const dq_tensor_t *y) {
    if (!dq_tensor_same_shape(x, y)) {
        char d[96];
        return s_fail(op, y, "output must have the input's shape %s",
                      dq_tensor_describe(x, d, sizeof d));
    }
    return 0;
}

/* A 1-D F32 vector of n elements (bias, gamma, beta). */
static int s_vec(dq_backend_t *be, dq_op_t op, const dq_tensor_t *t, int64_t n,
                 const char *role) {
    if (s_tensor(be, op, t, role, DQ_DTYPE_F32, "biases and norm parameters are F32") != 0)
        return -1;
    if (t->ndim != 1 || t->shape[0] != n) return s_fail(op, t, "%s must be [%lld]", role,
                                                         (long long) n);
    return 0;
}

static int s_supported(dq_backend_t *be, dq_op_t op, bool implemented) {
    if (!implemented || !dq_backend_supports_op(be, op, DQ_DTYPE_F32)) {
        dq_error("%s: not supported by backend %s", dq_op_name(op), dq_backend_name(be));
        return -1;
    }
    return 0;
}

/* residual of dq_op_*_residual: NULL, y itself (the same struct or another contiguous tensor of
 * y's shape at y's data), or a tensor of y's dtype whose bytes do not overlap y's, of y's shape
 * or (convolutions) the 4-D shape `planes` (one value per image and channel). Backends tell "y
 * itself" by residual->data == y->data and a per-plane residual by its element count. */
static int s_residual(dq_backend_t *be, dq_op_t op, const dq_tensor_t *r, const dq_tensor_t *y,
                      dq_dtype_t dt, const int64_t *planes) {
    if (!r || r == y) return 0;
    if (s_act(be, op, r, "residual", dt)) return -1;
    bool whole = dq_tensor_same_shape(r, y), per_plane = planes && r->ndim == 4;
    for (int i = 0; per_plane && i < 4; i++) per_plane = r->shape[i] == planes[i];
    if (!whole && !per_plane) {
        char d[96], p[64] = "";
        if (planes)
            snprintf(p, sizeof p, " or be [%lld, %lld, %lld, %lld]", (long long) planes[0],
                     (long long) planes[1], (long long) planes[2], (long long) planes[3]);
        return s_fail(op, r, "residual must have the output's shape %s%s",
                      dq_tensor_describe(y, d, sizeof d), p);
    }
    const char *rb = r->data, *yb = y->data;
    size_t rbytes = dq_tensor_nbytes(r), ybytes = dq_tensor_nbytes(y);
    if (!(whole && rb == yb) && rb < yb + ybytes && yb < rb + rbytes)
        return s_fail(op, r, "residual overlaps the output without being it");
    return 0;
}

int dq_op_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                 const dq_tensor_t *bias, dq_tensor_t *y) {
    return dq_op_linear_residual(be, x, w, bias, NULL, y);
}

int dq_op_linear_residual(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                          const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_LINEAR;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->linear != NULL) || s_act_first(be, op, x, "x", &dt) ||
        s_act(be, op, y, "y", dt) || s_weight(be, op, w, "weight"))
        return -1;
    if (w->ndim != 2) return s_fail(op, w, "weight must be [N, K]");
    int64_t n = w->shape[0], k = w->shape[1];
    if (x->shape[x->ndim - 1] != k) return s_fail(op, x, "last dim must be K=%lld", (long long) k);
    if (y->ndim != x->ndim || y->shape[y->ndim - 1] != n)
        return s_fail(op, y, "must be x's shape with last dim N=%lld", (long long) n);
    for (int i = 0; i + 1 < x->ndim; i++)
        if (x->shape[i] != y->shape[i]) return s_fail(op, y, "leading dims must match x's");
    if ((bias && s_vec(be, op, bias, n, "bias")) || s_residual(be, op, residual, y, dt, NULL))
        return -1;
    return be->ops->linear(be, x, w, bias, residual, y);
}

int dq_op_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                 float alpha, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_MATMUL;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->matmul != NULL) || s_act_first(be, op, a, "a", &dt) ||
        s_act(be, op, b, "b", dt) || s_act(be, op, y, "y", dt) || s_ndim(op, a, 2, 4, "a") ||
        s_ndim(op, b, 2, 4, "b") || s_ndim(op, y, 2, 4, "y"))
        return -1;
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t bk = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t n = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (bk != k) return s_fail(op, b, "inner dim must be K=%lld", (long long) k);
    if (y->ndim != a->ndim || y->shape[y->ndim - 2] != m || y->shape[y->ndim - 1] != n)
        return s_fail(op, y, "must be [..., %lld, %lld] with a's ndim", (long long) m,
                      (long long) n);
    int64_t batch_a = dq_tensor_nelements(a) / (m * k), batch_b = dq_tensor_nelements(b) / (k * n);
    for (int i = 0; i + 2 < a->ndim; i++)
        if (a->shape[i] != y->shape[i]) return s_fail(op, y, "batch dims must match a's");
    if (batch_b != 1 && batch_b != batch_a)
        return s_fail(op, b, "batch must be a's (%lld) or 1", (long long) batch_a);
    return be->ops->matmul(be, a, b, trans_b, alpha, y);
}

int dq_op_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                 const dq_tensor_t *bias, int stride, int padding, dq_tensor_t *y) {
    return dq_op_conv2d_residual(be, x, w, bias, stride, padding, NULL, y);
}

/* The checks of a convolution in either layout. nhwc: x[N, H, W, Ci], w[Co, kh, kw, Ci],
 * y[N, Ho, Wo, Co]; else x[N, Ci, H, W], w[Co, Ci, kh, kw], y[N, Co, Ho, Wo]. */
static int s_conv_args(dq_backend_t *be, dq_op_t op, bool implemented, bool nhwc,
                       const dq_tensor_t *x, const dq_tensor_t *w, const dq_tensor_t *bias,
                       int stride, int padding, const dq_tensor_t *residual,
                       const dq_tensor_t *y) {
    dq_dtype_t dt;
    if (s_supported(be, op, implemented) || s_act_first(be, op, x, "x", &dt) ||
        s_act(be, op, y, "y", dt) || s_weight(be, op, w, "weight") || s_ndim(op, x, 4, 4, "x") ||
        s_ndim(op, y, 4, 4, "y") || s_ndim(op, w, 4, 4, "weight"))
        return -1;
    if (stride < 1 || padding < 0)
        return s_fail(op, x, "stride=%d padding=%d, need stride >= 1, padding >= 0", stride,
                      padding);
    /* dims: channels, height, width of x and y; in-channels, kh, kw of w */
    const int c = nhwc ? 3 : 1, h = nhwc ? 1 : 2, wd = nhwc ? 2 : 3;
    const int64_t co = w->shape[0];
    if (w->shape[c] != x->shape[c])
        return s_fail(op, w, "weight in-channels must be x's C=%lld", (long long) x->shape[c]);
    int64_t ho = x->shape[h] + 2 * padding - w->shape[h];
    int64_t wo = x->shape[wd] + 2 * padding - w->shape[wd];
    if (ho < 0 || wo < 0) return s_fail(op, x, "kernel larger than padded input");
    ho = ho / stride + 1;
    wo = wo / stride + 1;
    int64_t want[4] = {x->shape[0], 0, 0, 0}, planes[4] = {x->shape[0], 1, 1, 1};
    want[c] = co, want[h] = ho, want[wd] = wo, planes[c] = co;
    for (int i = 0; i < 4; i++)
        if (y->shape[i] != want[i])
            return s_fail(op, y, "must be [%lld, %lld, %lld, %lld]", (long long) want[0],
                          (long long) want[1], (long long) want[2], (long long) want[3]);
    if ((bias && s_vec(be, op, bias, co, "bias")) || s_residual(be, op, residual, y, dt, planes))
        return -1;
    return 0;
}

int dq_op_conv2d_residual(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                          const dq_tensor_t *bias, int stride, int padding,
                          const dq_tensor_t *residual, dq_tensor_t *y) {
    if (s_conv_args(be, DQ_OP_CONV2D, be->ops->conv2d != NULL, false, x, w, bias, stride,
                    padding, residual, y))
        return -1;
    return be->ops->conv2d(be, x, w, bias, stride, padding, residual, y);
}

int dq_op_conv2d_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                      const dq_tensor_t *bias, int stride, int padding,
                      const dq_tensor_t *residual, dq_tensor_t *y) {
    if (s_conv_args(be, DQ_OP_CONV2D_NHWC, be->ops->conv2d_nhwc != NULL, true, x, w, bias, stride,
                    padding, residual, y))
        return -1;
    return be->ops->conv2d_nhwc(be, x, w, bias, stride, padding, residual, y);
}

static int s_affine(dq_backend_t *be, dq_op_t op, const dq_tensor_t *gamma,
                    const dq_tensor_t *beta, int64_t n) {
    if (!gamma != !beta) return s_fail(op, gamma ? gamma : beta, "gamma and beta go together");
    if (gamma && (s_vec(be, op, gamma, n, "gamma") || s_vec(be, op, beta, n, "beta"))) return -1;
    return 0;
}

/* The checks group_norm and group_norm_silu share; implemented: the backend has op's entry. */
/* The checks of a group norm; the channels are dim 1, or the last dim with nhwc. */
static int s_group_norm_args(dq_backend_t *be, dq_op_t op, bool implemented, bool nhwc,
                             const dq_tensor_t *x, const dq_tensor_t *gamma,
                             const dq_tensor_t *beta, int groups, float eps, const dq_tensor_t *y) {
    dq_dtype_t dt;
    if (s_supported(be, op, implemented) || s_act_first(be, op, x, "x", &dt) ||
        s_act(be, op, y, "y", dt) || s_ndim(op, x, 2, 4, "x") || s_same(op, x, y))
        return -1;
    int64_t c = x->shape[nhwc ? x->ndim - 1 : 1];
    if (groups < 1 || c % groups != 0)
        return s_fail(op, x, "groups=%d must divide the channels", groups);
    if (!(eps >= 0.0f)) return s_fail(op, x, "eps must be >= 0");
    return s_affine(be, op, gamma, beta, c);
}

int dq_op_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                     const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    if (s_group_norm_args(be, DQ_OP_GROUP_NORM, be->ops->group_norm != NULL, false, x, gamma, beta,
                          groups, eps, y))
        return -1;
    return be->ops->group_norm(be, x, gamma, beta, groups, eps, y);
}

int dq_op_group_norm_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                          const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    if (s_group_norm_args(be, DQ_OP_GROUP_NORM_NHWC, be->ops->group_norm_nhwc != NULL, true, x,
                          gamma, beta, groups, eps, y))
        return -1;
    return be->ops->group_norm_nhwc(be, x, gamma, beta, groups, eps, y);
}

int dq_op_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                          const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    if (s_group_norm_args(be, DQ_OP_GROUP_NORM_SILU, be->ops->group_norm_silu != NULL, false, x,
                          gamma, beta, groups, eps, y))
        return -1;
    return be->ops->group_norm_silu(be, x, gamma, beta, groups, eps, y);
}

int dq_op_group_norm_silu_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                               const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    if (s_group_norm_args(be, DQ_OP_GROUP_NORM_SILU_NHWC, be->ops->group_norm_silu_nhwc != NULL,
                          true, x, gamma, beta, groups, eps, y))
        return -1;
    return be->ops->group_norm_silu_nhwc(be, x, gamma, beta, groups, eps, y);
}

int dq_op_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                     const dq_tensor_t *beta, float eps, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_LAYER_NORM;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->layer_norm != NULL) || s_act_first(be, op, x, "x", &dt) ||
        s_act(be, op, y, "y", dt) || s_same(op, x, y))
        return -1;
    if (!(eps >= 0.0f)) return s_fail(op, x, "eps must be >= 0");
    if (s_affine(be, op, gamma, beta, x->shape[x->ndim - 1])) return -1;
    return be->ops->layer_norm(be, x, gamma, beta, eps, y);
}

/* Checks an op y = f(x) of matching shapes. */
static int s_unary(dq_backend_t *be, dq_op_t op, dq_unary_fn fn, const dq_tensor_t *x,
                   dq_tensor_t *y) {
    dq_dtype_t dt;
    if (s_supported(be, op, fn != NULL) || s_act_first(be, op, x, "x", &dt) ||
        s_act(be, op, y, "y", dt) || s_same(op, x, y))
        return -1;
    return fn(be, x, y);
}

int dq_op_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_SOFTMAX, be->ops->softmax, x, y);
}

int dq_op_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                    const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_ATTENTION;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->attention != NULL) || s_act_first(be, op, q, "q", &dt) ||
        s_act(be, op, k, "k", dt) || s_act(be, op, v, "v", dt) || s_act(be, op, y, "y", dt) ||
        s_ndim(op, q, 3, 3, "q") ||
        s_ndim(op, k, 3, 3, "k") || s_ndim(op, v, 3, 3, "v") || s_same(op, q, y) ||
        s_same(op, k, v))
        return -1;
    if (heads < 1 || q->shape[2] % heads != 0)
        return s_fail(op, q, "heads=%d must divide the last dim", heads);
    if (k->shape[0] != q->shape[0] || k->shape[2] != q->shape[2])
        return s_fail(op, k, "must be [B, Lk, H*D] with q's B and H*D");
    if (causal && k->shape[1] != q->shape[1])
        return s_fail(op, k, "causal attention needs Lk == Lq");
    return be->ops->attention(be, q, k, v, heads, causal, y);
}

int dq_op_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_GELU, be->ops->gelu, x, y);
}

int dq_op_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_GELU_QUICK, be->ops->gelu_quick, x, y);
}

int dq_op_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_SILU, be->ops->silu, x, y);
}

int dq_op_geglu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_GEGLU;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->geglu != NULL) || s_act_first(be, op, x, "x", &dt) ||
        s_act(be, op, y, "y", dt))
        return -1;
    int64_t d = x->shape[x->ndim - 1];
    if (d % 2 != 0) return s_fail(op, x, "last dim must be even");
    bool ok = y->ndim == x->ndim && y->shape[y->ndim - 1] == d / 2;
    for (int i = 0; ok && i + 1 < x->ndim; i++) ok = x->shape[i] == y->shape[i];
    if (!ok) return s_fail(op, y, "must be x's shape with last dim %lld", (long long) (d / 2));
    return be->ops->geglu(be, x, y);
}

static int s_binary(dq_backend_t *be, dq_op_t op, dq_binary_fn fn, const dq_tensor_t *a,
                    const dq_tensor_t *b, dq_tensor_t *y) {
    dq_dtype_t dt;
    if (s_supported(be, op, fn != NULL) || s_act_first(be, op, a, "a", &dt) ||
        s_act(be, op, b, "b", dt) || s_act(be, op, y, "y", dt) || s_same(op, a, y))
        return -1;
    if (b->ndim > a->ndim) return s_fail(op, b, "b has more dims than a");
    for (int i = 0; i < b->ndim; i++) {
        int64_t bs = b->shape[b->ndim - 1 - i], as = a->shape[a->ndim - 1 - i];
        if (bs != as && bs != 1) {
            char d[96];
            return s_fail(op, b, "does not broadcast to %s", dq_tensor_describe(a, d, sizeof d));
        }
    }
    return fn(be, a, b, y);
}

int dq_op_add(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    return s_binary(be, DQ_OP_ADD, be->ops->add, a, b, y);
}

int dq_op_mul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    return s_binary(be, DQ_OP_MUL, be->ops->mul, a, b, y);
}

int dq_op_scale(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_SCALE;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->scale != NULL) || s_act_first(be, op, x, "x", &dt) ||
        s_act(be, op, y, "y", dt) || s_same(op, x, y))
        return -1;
    return be->ops->scale(be, x, s, b, y);
}

int dq_op_upsample_nearest2x(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_UPSAMPLE_NEAREST2X;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->upsample_nearest2x != NULL) ||
        s_act_first(be, op, x, "x", &dt) || s_act(be, op, y, "y", dt) || s_ndim(op, x, 4, 4, "x") ||
        s_ndim(op, y, 4, 4, "y"))
        return -1;
    if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] ||
        y->shape[2] != 2 * x->shape[2] || y->shape[3] != 2 * x->shape[3])
        return s_fail(op, y, "must be [N, C, 2H, 2W] of x");
    return be->ops->upsample_nearest2x(be, x, y);
}

int dq_op_upsample_nearest2x_nhwc(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_UPSAMPLE_NEAREST2X_NHWC;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->upsample_nearest2x_nhwc != NULL) ||
        s_act_first(be, op, x, "x", &dt) || s_act(be, op, y, "y", dt) || s_ndim(op, x, 4, 4, "x") ||
        s_ndim(op, y, 4, 4, "y"))
        return -1;
    if (y->shape[0] != x->shape[0] || y->shape[1] != 2 * x->shape[1] ||
        y->shape[2] != 2 * x->shape[2] || y->shape[3] != x->shape[3])
        return s_fail(op, y, "must be [N, 2H, 2W, C] of x");
    return be->ops->upsample_nearest2x_nhwc(be, x, y);
}

int dq_op_concat(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                 dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_CONCAT;
    dq_dtype_t dt;
    if (s_supported(be, op, be->ops->concat != NULL) || s_act_first(be, op, a, "a", &dt) ||
        s_act(be, op, b, "b", dt) || s_act(be, op, y, "y", dt))
        return -1;
    if (dim < 0 || dim >= a->ndim) return s_fail(op, a, "dim=%d out of range", dim);
    if (b->ndim != a->ndim || y->ndim != a->ndim) return s_fail(op, y, "ndim must match a's");
    for (int i = 0; i < a->ndim; i++) {
        int64_t want = i == dim ? a->shape[i] + b->shape[i] : a->shape[i];
        if (i != dim && b->shape[i] != a->shape[i])
            return s_fail(op, b, "dim %d must match a's", i);
        if (y->shape[i] != want) return s_fail(op, y, "dim %d must be %lld", i, (long long) want);
    }
    return be->ops->concat(be, a, b, dim, y);
}

int dq_op_cpy(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_CPY;
    dq_dtype_t dt; /* y's; x's may differ (cpy converts) */
    if (s_supported(be, op, be->ops->cpy != NULL) || s_act_first(be, op, y, "y", &dt)) return -1;
    if (!x || !x->data) return s_fail(op, x, "x has no data");
    if (s_owned(be, op, x, "x")) return -1;
    if (!dq_backend_supports_op(be, op, x->dtype))
        return s_fail(op, x, "backend %s cannot read this dtype", dq_backend_name(be));
    if (s_same(op, x, y)) return -1;
    return be->ops->cpy(be, x, y);
}

int dq_op_get_rows(dq_backend_t *be, const dq_tensor_t *table, const dq_tensor_t *ids,
                   dq_tensor_t *y) {
    const dq_op_t op = DQ_OP_GET_ROWS;
    dq_dtype_t dt; /* y's, whatever the table's */
    if (s_supported(be, op, be->ops->get_rows != NULL) || s_act_first(be, op, y, "y", &dt) ||
        s_weight(be, op, table, "table"))
        return -1;
    if (table->ndim != 2) return s_fail(op, table, "table must be [V, D]");
    if (!ids || ids->dtype != DQ_DTYPE_I32 || !dq_tensor_is_contiguous(ids) || !ids->data)
        return s_fail(op, ids, "ids must be contiguous I32 with data");
    if (s_owned(be, op, ids, "ids")) return -1;
    if (y->shape[y->ndim - 1] != table->shape[1] || dq_tensor_nrows(y) != dq_tensor_nelements(ids))
        return s_fail(op, y, "must be [..., D] with one row per id");
    return be->ops->get_rows(be, table, ids, y);
}
