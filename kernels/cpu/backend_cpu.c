/* kernels/cpu/backend_cpu.c: the CPU backend's table, buffers and host transfers. */
#include "kernels/cpu/backend_cpu.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "kernels/cpu/cpu_internal.h"

static void s_destroy(dq_backend_t *be) {
    dq_cpu_ctx_t *ctx = dq_cpu_ctx(be);
    free(ctx->work);
    free(ctx);
    free(be);
}

static dq_buffer_t *s_buffer_alloc(dq_backend_t *be, size_t size) {
    dq_buffer_t *buf = calloc(1, sizeof *buf);
    /* aligned_alloc wants a multiple of the alignment. */
    size_t rounded = (size + 63) & ~(size_t) 63;
    void *base = rounded >= size ? aligned_alloc(64, rounded) : NULL;
    if (!buf || !base) {
        dq_error("cpu: out of host memory for a buffer of %zu bytes", size);
        free(buf);
        free(base);
        return NULL;
    }
    buf->backend = be;
    buf->base = base;
    buf->size = size;
    return buf;
}

static void s_buffer_free(dq_backend_t *be, dq_buffer_t *buf) {
    (void) be;
    free(buf->base);
    free(buf);
}

static int s_upload(dq_backend_t *be, dq_tensor_t *dst, size_t offset, const void *src,
                    size_t n) {
    (void) be;
    memcpy((char *) dst->data + offset, src, n);
    return 0;
}

static int s_download(dq_backend_t *be, const dq_tensor_t *src, size_t offset, void *dst,
                      size_t n) {
    (void) be;
    memcpy(dst, (const char *) src->data + offset, n);
    return 0;
}

/* CPU ops are synchronous. */
static int s_synchronize(dq_backend_t *be) {
    (void) be;
    return 0;
}

static bool s_supports_op(const dq_backend_t *be, dq_op_t op, dq_dtype_t weight_dtype) {
    (void) be;
    bool float_weights = weight_dtype == DQ_DTYPE_F32 || weight_dtype == DQ_DTYPE_F16 ||
                         weight_dtype == DQ_DTYPE_BF16;
    switch (op) {
    case DQ_OP_LINEAR:
    case DQ_OP_CONV2D:
    case DQ_OP_CONV2D_NHWC:
    case DQ_OP_CPY:
    case DQ_OP_GET_ROWS:
        return float_weights;
    case DQ_OP_COUNT:
        return false;
    default:
        return weight_dtype == DQ_DTYPE_F32;
    }
}

static const dq_backend_ops_t s_cpu_ops = {
    .name = "cpu",
    .destroy = s_destroy,
    .buffer_alloc = s_buffer_alloc,
    .buffer_free = s_buffer_free,
    .upload = s_upload,
    .download = s_download,
    .synchronize = s_synchronize,
    .supports_op = s_supports_op,
    .linear = dq_cpu_linear,
    .matmul = dq_cpu_matmul,
    .conv2d = dq_cpu_conv2d,
    .group_norm = dq_cpu_group_norm,
    .group_norm_silu = dq_cpu_group_norm_silu,
    .layer_norm = dq_cpu_layer_norm,
    .softmax = dq_cpu_softmax,
    .attention = dq_cpu_attention,
    .gelu = dq_cpu_gelu,
    .gelu_quick = dq_cpu_gelu_quick,
    .silu = dq_cpu_silu,
    .geglu = dq_cpu_geglu,
    .add = dq_cpu_add,
    .mul = dq_cpu_mul,
    .scale = dq_cpu_scale,
    .upsample_nearest2x = dq_cpu_upsample_nearest2x,
    .concat = dq_cpu_concat,
    .cpy = dq_cpu_cpy,
    .get_rows = dq_cpu_get_rows,
    .conv2d_nhwc = dq_cpu_conv2d_nhwc,
    .group_norm_nhwc = dq_cpu_group_norm_nhwc,
    .group_norm_silu_nhwc = dq_cpu_group_norm_silu_nhwc,
    .upsample_nearest2x_nhwc = dq_cpu_upsample_nearest2x_nhwc,
};

dq_backend_t *dq_backend_cpu_new(size_t workspace_bytes, int n_threads) {
    if (workspace_bytes == 0) workspace_bytes = DQ_CPU_DEFAULT_WORKSPACE;
    dq_backend_t *be = calloc(1, sizeof *be);
    dq_cpu_ctx_t *ctx = calloc(1, sizeof *ctx);
    size_t floats = workspace_bytes / sizeof(float);
    float *work = floats ? aligned_alloc(64, ((floats * sizeof(float)) + 63) & ~(size_t) 63)
                         : NULL;
    if (!be || !ctx || !work) {
        dq_error("cpu: out of host memory for backend with workspace of %zu bytes",
                 workspace_bytes);
        free(be);
        free(ctx);
        free(work);
        return NULL;
    }
    ctx->work = work;
    ctx->work_floats = floats;
    be->ops = &s_cpu_ops;
    be->ctx = ctx;
    const char *wait = getenv("OMP_WAIT_POLICY");
    if (!wait || strcasecmp(wait, "passive") != 0)
        dq_info("cpu backend: OMP_WAIT_POLICY is not passive; OpenMP threads spinning between "
                "ops slow down sgemm (set OMP_WAIT_POLICY=passive)");
    if (n_threads > 0) {
        omp_set_num_threads(n_threads);
        openblas_set_num_threads(n_threads);
    }
    return be;
}
