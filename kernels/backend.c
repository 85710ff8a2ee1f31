/* kernels/backend.c: the backend interface (buffers, transfers, one function pointer per op). */
#include "kernels/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static const char *const s_op_names[DQ_OP_COUNT] = {
    [DQ_OP_LINEAR] = "linear",
    [DQ_OP_MATMUL] = "matmul",
    [DQ_OP_CONV2D] = "conv2d",
    [DQ_OP_GROUP_NORM] = "group_norm",
    [DQ_OP_GROUP_NORM_SILU] = "group_norm_silu",
    [DQ_OP_LAYER_NORM] = "layer_norm",
    [DQ_OP_SOFTMAX] = "softmax",
    [DQ_OP_ATTENTION] = "attention",
    [DQ_OP_GELU] = "gelu",
    [DQ_OP_GELU_QUICK] = "gelu_quick",
    [DQ_OP_SILU] = "silu",
    [DQ_OP_GEGLU] = "geglu",
    [DQ_OP_ADD] = "add",
    [DQ_OP_MUL] = "mul",
    [DQ_OP_SCALE] = "scale",
    [DQ_OP_UPSAMPLE_NEAREST2X] = "upsample_nearest2x",
    [DQ_OP_CONCAT] = "concat",
    [DQ_OP_CPY] = "cpy",
    [DQ_OP_GET_ROWS] = "get_rows",
    [DQ_OP_CONV2D_NHWC] = "conv2d_nhwc",
    [DQ_OP_GROUP_NORM_NHWC] = "group_norm_nhwc",
    [DQ_OP_GROUP_NORM_SILU_NHWC] = "group_norm_silu_nhwc",
    [DQ_OP_UPSAMPLE_NEAREST2X_NHWC] = "upsample_nearest2x_nhwc",
};

const char *dq_op_name(dq_op_t op) {
    return (unsigned) op < DQ_OP_COUNT && s_op_names[op] ? s_op_names[op] : "?";
}

void dq_backend_destroy(dq_backend_t **be_p) {
    if (!be_p || !*be_p) return;
    dq_backend_t *be = *be_p;
    *be_p = NULL;
    be->ops->destroy(be);
}

const char *dq_backend_name(const dq_backend_t *be) { return be->ops->name; }

dq_buffer_t *dq_backend_buffer_alloc(dq_backend_t *be, size_t size) {
    if (size == 0) {
        dq_error("buffer alloc: size 0 requested from backend %s", be->ops->name);
        return NULL;
    }
    return be->ops->buffer_alloc(be, size);
}

void dq_buffer_free(dq_buffer_t **buf_p) {
    if (!buf_p || !*buf_p) return;
    dq_buffer_t *buf = *buf_p;
    *buf_p = NULL;
    buf->backend->ops->buffer_free(buf->backend, buf);
}

static int s_check_range(const char *what, const dq_tensor_t *t, size_t offset, size_t n) {
    char d[96];
    if (!t->data) {
        dq_error("%s: %s has no data", what, dq_tensor_describe(t, d, sizeof d));
        return -1;
    }
    if (!dq_tensor_is_contiguous(t)) {
        dq_error("%s: %s is not contiguous", what, dq_tensor_describe(t, d, sizeof d));
        return -1;
    }
    size_t total = dq_tensor_nbytes(t);
    if (offset > total || n > total - offset) {
        dq_error("%s: bytes [%zu, %zu+%zu) outside %s (%zu bytes)", what, offset, offset, n,
                 dq_tensor_describe(t, d, sizeof d), total);
        return -1;
    }
    return 0;
}

int dq_tensor_upload(dq_backend_t *be, dq_tensor_t *dst, size_t offset, const void *src,
                     size_t n) {
    if (s_check_range("upload", dst, offset, n) != 0) return -1;
    return n ? be->ops->upload(be, dst, offset, src, n) : 0;
}

int dq_tensor_download(dq_backend_t *be, const dq_tensor_t *src, size_t offset, void *dst,
                       size_t n) {
    if (s_check_range("download", src, offset, n) != 0) return -1;
    return n ? be->ops->download(be, src, offset, dst, n) : 0;
}

int dq_backend_synchronize(dq_backend_t *be) { return be->ops->synchronize(be); }

bool dq_backend_supports_op(const dq_backend_t *be, dq_op_t op, dq_dtype_t weight_dtype) {
    return (unsigned) op < DQ_OP_COUNT && be->ops->supports_op(be, op, weight_dtype);
}

bool dq_backend_supports_activation(const dq_backend_t *be, dq_op_t op, dq_dtype_t act_dtype) {
    if ((unsigned) op >= DQ_OP_COUNT) return false;
    if (act_dtype == DQ_DTYPE_F32) return true;
    return be->ops->supports_activation && be->ops->supports_activation(be, op, act_dtype);
}

bool dq_backend_supports_activation_all(const dq_backend_t *be, dq_dtype_t act_dtype) {
    for (int op = 0; op < DQ_OP_COUNT; op++)
        if (!dq_backend_supports_activation(be, (dq_op_t) op, act_dtype)) return false;
    return true;
}

bool dq_backend_activation_usable(const dq_backend_t *be, dq_dtype_t act_dtype, const char *who,
                                  char *err, size_t errlen) {
    if (act_dtype != DQ_DTYPE_F32 && act_dtype != DQ_DTYPE_F16 && act_dtype != DQ_DTYPE_BF16) {
        snprintf(err, errlen, "%s: activations must be F32, F16 or BF16, not %s", who,
                 dq_dtype_name(act_dtype));
        return false;
    }
    if (dq_backend_supports_activation_all(be, act_dtype)) return true;
    bool f16 = dq_backend_supports_activation_all(be, DQ_DTYPE_F16),
         bf16 = dq_backend_supports_activation_all(be, DQ_DTYPE_BF16);
    snprintf(err, errlen, "%s: activations in %s: the %s backend takes F32%s", who,
             dq_dtype_name(act_dtype), dq_backend_name(be),
             f16 && bf16 ? ", F16 or BF16" : f16 ? " or F16" : bf16 ? " or BF16" : " only");
    return false;
}

bool dq_backend_use_nhwc(const dq_backend_t *be, dq_dtype_t matrix_dtype, dq_dtype_t act_dtype) {
    const dq_backend_ops_t *o = be->ops;
    bool has = o->conv2d_nhwc && o->group_norm_nhwc && o->group_norm_silu_nhwc &&
               o->upsample_nearest2x_nhwc &&
               dq_backend_supports_op(be, DQ_OP_CONV2D_NHWC, matrix_dtype) &&
               dq_backend_supports_op(be, DQ_OP_GROUP_NORM_NHWC, DQ_DTYPE_F32) &&
               dq_backend_supports_op(be, DQ_OP_GROUP_NORM_SILU_NHWC, DQ_DTYPE_F32) &&
               dq_backend_supports_op(be, DQ_OP_UPSAMPLE_NEAREST2X_NHWC, DQ_DTYPE_F32);
    const char *env = getenv("DQ_LAYOUT");
    if (env && strcmp(env, "nchw") == 0) return false;
    if (env && strcmp(env, "nhwc") == 0) {
        if (!has)
            dq_warn("DQ_LAYOUT=nhwc, but the %s backend lacks the channels-last ops; "
                    "running NCHW",
                    dq_backend_name(be));
        return has;
    }
    return has && (act_dtype == DQ_DTYPE_F16 || act_dtype == DQ_DTYPE_BF16);
}

bool dq_backend_graph_supported(const dq_backend_t *be) {
    const dq_backend_ops_t *o = be->ops;
    return o->graph_begin && o->graph_end && o->graph_launch && o->graph_destroy;
}

int dq_backend_graph_begin(dq_backend_t *be) {
    return dq_backend_graph_supported(be) ? be->ops->graph_begin(be) : DQ_BACKEND_UNSUPPORTED;
}

int dq_backend_graph_end(dq_backend_t *be, dq_backend_graph_t **graph) {
    *graph = NULL;
    return dq_backend_graph_supported(be) ? be->ops->graph_end(be, graph) : DQ_BACKEND_UNSUPPORTED;
}

int dq_backend_graph_launch(dq_backend_t *be, dq_backend_graph_t *graph) {
    return dq_backend_graph_supported(be) ? be->ops->graph_launch(be, graph)
                                          : DQ_BACKEND_UNSUPPORTED;
}

void dq_backend_graph_destroy(dq_backend_t *be, dq_backend_graph_t **graph_p) {
    if (!graph_p || !*graph_p) return;
    dq_backend_graph_t *g = *graph_p;
    *graph_p = NULL;
    /* A graph only comes from a backend with hooks. */
    be->ops->graph_destroy(be, g);
}
