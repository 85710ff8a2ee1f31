/* tests/unit/record_backend.c: the CPU backend plus graph hooks that record op calls and replay
 * them (a CPU stand-in for CUDA stream capture; see record_backend.h). */
#include "tests/unit/record_backend.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/cpu/backend_cpu.h"

/* One recorded op call: its tensors by value (the caller's structs are reused after the call,
 * the memory they point at is not) and its scalars. */
typedef struct {
    dq_op_t op;
    dq_tensor_t t[5]; /* operands in the table entry's order, the output at 3; linear's and
                         conv2d's residual at 4 */
    bool has[5];      /* t[i] was given (bias and residual may be NULL) */
    int i0;           /* stride, groups, heads or dim */
    int i1;           /* padding */
    float f0, f1;     /* alpha, eps, s, b */
    bool b0;          /* trans_b, causal */
} s_rec_t;

struct dq_backend_graph {
    s_rec_t *recs; /* owned */
    size_t n;
};

typedef struct {
    dq_backend_t *cpu;    /* owned: runs every op */
    dq_record_stats_t stats;
    bool recording;
    s_rec_t *recs;        /* owned: the recording in progress */
    size_t n, cap;
    bool spoiled;         /* an illegal call or out of memory while recording */
} s_ctx_t;

static s_ctx_t *s_ctx(dq_backend_t *be) { return be->ctx; }
static dq_backend_t *s_cpu(dq_backend_t *be) { return s_ctx(be)->cpu; }

static void s_put(s_rec_t *r, int i, const dq_tensor_t *t) {
    r->has[i] = t != NULL;
    if (t) r->t[i] = *t;
}

static const dq_tensor_t *s_in(const s_rec_t *r, int i) { return r->has[i] ? &r->t[i] : NULL; }

/* Runs one op on the CPU backend. */
static int s_exec(dq_backend_t *cpu, s_rec_t *r) {
    const dq_backend_ops_t *o = cpu->ops;
    switch (r->op) {
    case DQ_OP_LINEAR:
        return o->linear(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), s_in(r, 4), &r->t[3]);
    case DQ_OP_MATMUL: return o->matmul(cpu, s_in(r, 0), s_in(r, 1), r->b0, r->f0, &r->t[3]);
    case DQ_OP_CONV2D:
        return o->conv2d(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->i0, r->i1, s_in(r, 4),
                         &r->t[3]);
    case DQ_OP_GROUP_NORM:
        return o->group_norm(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->i0, r->f0, &r->t[3]);
    case DQ_OP_GROUP_NORM_SILU:
        return o->group_norm_silu(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->i0, r->f0,
                                  &r->t[3]);
    case DQ_OP_LAYER_NORM:
        return o->layer_norm(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->f0, &r->t[3]);
    case DQ_OP_ATTENTION:
        return o->attention(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->i0, r->b0, &r->t[3]);
    case DQ_OP_SOFTMAX: return o->softmax(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_GELU: return o->gelu(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_GELU_QUICK: return o->gelu_quick(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_SILU: return o->silu(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_GEGLU: return o->geglu(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_UPSAMPLE_NEAREST2X: return o->upsample_nearest2x(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_CONV2D_NHWC:
        return o->conv2d_nhwc(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->i0, r->i1, s_in(r, 4),
                              &r->t[3]);
    case DQ_OP_GROUP_NORM_NHWC:
        return o->group_norm_nhwc(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->i0, r->f0,
                                  &r->t[3]);
    case DQ_OP_GROUP_NORM_SILU_NHWC:
        return o->group_norm_silu_nhwc(cpu, s_in(r, 0), s_in(r, 1), s_in(r, 2), r->i0, r->f0,
                                       &r->t[3]);
    case DQ_OP_UPSAMPLE_NEAREST2X_NHWC:
        return o->upsample_nearest2x_nhwc(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_CPY: return o->cpy(cpu, s_in(r, 0), &r->t[3]);
    case DQ_OP_ADD: return o->add(cpu, s_in(r, 0), s_in(r, 1), &r->t[3]);
    case DQ_OP_MUL: return o->mul(cpu, s_in(r, 0), s_in(r, 1), &r->t[3]);
    case DQ_OP_SCALE: return o->scale(cpu, s_in(r, 0), r->f0, r->f1, &r->t[3]);
    case DQ_OP_CONCAT: return o->concat(cpu, s_in(r, 0), s_in(r, 1), r->i0, &r->t[3]);
    default: dq_error("record backend: op %s cannot be recorded", dq_op_name(r->op)); return -1;
    }
}

/* Records r while recording, else runs it. */
static int s_do(dq_backend_t *be, s_rec_t *r) {
    s_ctx_t *c = s_ctx(be);
    if (!c->recording) {
        c->stats.ops_run++;
        return s_exec(c->cpu, r);
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        s_rec_t *recs = realloc(c->recs, cap * sizeof *recs);
        if (!recs) {
            c->spoiled = true;
            return -1;
        }
        c->recs = recs, c->cap = cap;
    }
    c->recs[c->n++] = *r;
    return 0;
}

static int s_linear(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                    const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_LINEAR};
    s_put(&r, 0, x), s_put(&r, 1, w), s_put(&r, 2, bias), s_put(&r, 3, y);
    s_put(&r, 4, residual);
    return s_do(be, &r);
}
static int s_matmul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                    float alpha, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_MATMUL, .b0 = trans_b, .f0 = alpha};
    s_put(&r, 0, a), s_put(&r, 1, b), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_conv2d(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                    const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                    dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_CONV2D, .i0 = stride, .i1 = padding};
    s_put(&r, 0, x), s_put(&r, 1, w), s_put(&r, 2, bias), s_put(&r, 3, y);
    s_put(&r, 4, residual);
    return s_do(be, &r);
}
static int s_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                        const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_GROUP_NORM, .i0 = groups, .f0 = eps};
    s_put(&r, 0, x), s_put(&r, 1, gamma), s_put(&r, 2, beta), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                             const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_GROUP_NORM_SILU, .i0 = groups, .f0 = eps};
    s_put(&r, 0, x), s_put(&r, 1, gamma), s_put(&r, 2, beta), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                        const dq_tensor_t *beta, float eps, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_LAYER_NORM, .f0 = eps};
    s_put(&r, 0, x), s_put(&r, 1, gamma), s_put(&r, 2, beta), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_attention(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                       const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_ATTENTION, .i0 = heads, .b0 = causal};
    s_put(&r, 0, q), s_put(&r, 1, k), s_put(&r, 2, v), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_unary(dq_backend_t *be, dq_op_t op, const dq_tensor_t *x, dq_tensor_t *y) {
    s_rec_t r = {.op = op};
    s_put(&r, 0, x), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_softmax(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_SOFTMAX, x, y);
}
static int s_gelu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_GELU, x, y);
}
static int s_gelu_quick(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_GELU_QUICK, x, y);
}
static int s_silu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_SILU, x, y);
}
static int s_geglu(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_GEGLU, x, y);
}
static int s_upsample(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_UPSAMPLE_NEAREST2X, x, y);
}
static int s_upsample_nhwc(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_UPSAMPLE_NEAREST2X_NHWC, x, y);
}
static int s_conv2d_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                         const dq_tensor_t *bias, int stride, int padding,
                         const dq_tensor_t *residual, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_CONV2D_NHWC, .i0 = stride, .i1 = padding};
    s_put(&r, 0, x), s_put(&r, 1, w), s_put(&r, 2, bias), s_put(&r, 3, y);
    s_put(&r, 4, residual);
    return s_do(be, &r);
}
static int s_group_norm_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                             const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_GROUP_NORM_NHWC, .i0 = groups, .f0 = eps};
    s_put(&r, 0, x), s_put(&r, 1, gamma), s_put(&r, 2, beta), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_group_norm_silu_nhwc(dq_backend_t *be, const dq_tensor_t *x,
                                  const dq_tensor_t *gamma, const dq_tensor_t *beta, int groups,
                                  float eps, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_GROUP_NORM_SILU_NHWC, .i0 = groups, .f0 = eps};
    s_put(&r, 0, x), s_put(&r, 1, gamma), s_put(&r, 2, beta), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_cpy(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    return s_unary(be, DQ_OP_CPY, x, y);
}
static int s_binary(dq_backend_t *be, dq_op_t op, const dq_tensor_t *a, const dq_tensor_t *b,
                    dq_tensor_t *y) {
    s_rec_t r = {.op = op};
    s_put(&r, 0, a), s_put(&r, 1, b), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_add(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    return s_binary(be, DQ_OP_ADD, a, b, y);
}
static int s_mul(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, dq_tensor_t *y) {
    return s_binary(be, DQ_OP_MUL, a, b, y);
}
static int s_scale(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_SCALE, .f0 = s, .f1 = b};
    s_put(&r, 0, x), s_put(&r, 3, y);
    return s_do(be, &r);
}
static int s_concat(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                    dq_tensor_t *y) {
    s_rec_t r = {.op = DQ_OP_CONCAT, .i0 = dim};
    s_put(&r, 0, a), s_put(&r, 1, b), s_put(&r, 3, y);
    return s_do(be, &r);
}

/* Calls that would spoil a CUDA capture: counted, and they fail while recording. */
static bool s_illegal(dq_backend_t *be, const char *what) {
    s_ctx_t *c = s_ctx(be);
    if (!c->recording) return false;
    c->stats.illegal++;
    c->spoiled = true;
    dq_error("record backend: %s while recording", what);
    return true;
}

static dq_buffer_t *s_buffer_alloc(dq_backend_t *be, size_t size) {
    if (s_illegal(be, "buffer_alloc")) return NULL;
    dq_buffer_t *buf = s_cpu(be)->ops->buffer_alloc(s_cpu(be), size);
    if (buf) buf->backend = be; /* frees come back here; ops check the owner */
    return buf;
}
static void s_buffer_free(dq_backend_t *be, dq_buffer_t *buf) {
    s_illegal(be, "buffer_free"); /* freed anyway: a leak would hide the report */
    s_cpu(be)->ops->buffer_free(s_cpu(be), buf);
}
static int s_upload(dq_backend_t *be, dq_tensor_t *dst, size_t offset, const void *src,
                    size_t n) {
    if (s_illegal(be, "upload")) return -1;
    return s_cpu(be)->ops->upload(s_cpu(be), dst, offset, src, n);
}
static int s_download(dq_backend_t *be, const dq_tensor_t *src, size_t offset, void *dst,
                      size_t n) {
    if (s_illegal(be, "download")) return -1;
    return s_cpu(be)->ops->download(s_cpu(be), src, offset, dst, n);
}
static int s_synchronize(dq_backend_t *be) { return s_illegal(be, "synchronize") ? -1 : 0; }
static bool s_supports_op(const dq_backend_t *be, dq_op_t op, dq_dtype_t weight_dtype) {
    const s_ctx_t *c = be->ctx;
    return op != DQ_OP_GET_ROWS && c->cpu->ops->supports_op(c->cpu, op, weight_dtype);
}

static int s_graph_begin(dq_backend_t *be) {
    s_ctx_t *c = s_ctx(be);
    c->stats.begins++;
    c->recording = true;
    c->spoiled = false;
    c->n = 0;
    return 0;
}
static int s_graph_end(dq_backend_t *be, dq_backend_graph_t **graph) {
    s_ctx_t *c = s_ctx(be);
    c->stats.ends++;
    c->recording = false;
    if (c->spoiled || c->stats.fail_end) return -1;
    dq_backend_graph_t *g = calloc(1, sizeof *g);
    if (!g) return -1;
    g->recs = c->recs, g->n = c->n; /* the recording moves into the graph */
    c->recs = NULL, c->n = c->cap = 0;
    c->stats.live++;
    *graph = g;
    return 0;
}
static int s_graph_launch(dq_backend_t *be, dq_backend_graph_t *graph) {
    s_ctx_t *c = s_ctx(be);
    c->stats.launches++;
    if (c->stats.fail_launch) return -1;
    for (size_t i = 0; i < graph->n; i++) {
        s_rec_t r = graph->recs[i]; /* ops may not change the record */
        if (s_exec(c->cpu, &r)) return -1;
        c->stats.ops_replayed++;
    }
    return 0;
}
static void s_graph_destroy(dq_backend_t *be, dq_backend_graph_t *graph) {
    s_ctx_t *c = s_ctx(be);
    c->stats.destroys++;
    c->stats.live--;
    free(graph->recs);
    free(graph);
}

static void s_destroy(dq_backend_t *be) {
    s_ctx_t *c = s_ctx(be);
    dq_backend_destroy(&c->cpu);
    free(c->recs);
    free(c);
    free(be);
}

/* Every op the UNet and the other networks queue (get_rows is left out: it reads back). */
static const dq_backend_ops_t s_ops = {
    .name = "record",
    .destroy = s_destroy,
    .buffer_alloc = s_buffer_alloc,
    .buffer_free = s_buffer_free,
    .upload = s_upload,
    .download = s_download,
    .synchronize = s_synchronize,
    .supports_op = s_supports_op,
    .linear = s_linear,
    .matmul = s_matmul,
    .conv2d = s_conv2d,
    .group_norm = s_group_norm,
    .group_norm_silu = s_group_norm_silu,
    .layer_norm = s_layer_norm,
    .softmax = s_softmax,
    .attention = s_attention,
    .gelu = s_gelu,
    .gelu_quick = s_gelu_quick,
    .silu = s_silu,
    .geglu = s_geglu,
    .add = s_add,
    .mul = s_mul,
    .scale = s_scale,
    .upsample_nearest2x = s_upsample,
    .concat = s_concat,
    .cpy = s_cpy,
    .conv2d_nhwc = s_conv2d_nhwc,
    .group_norm_nhwc = s_group_norm_nhwc,
    .group_norm_silu_nhwc = s_group_norm_silu_nhwc,
    .upsample_nearest2x_nhwc = s_upsample_nhwc,
    .graph_begin = s_graph_begin,
    .graph_end = s_graph_end,
    .graph_launch = s_graph_launch,
    .graph_destroy = s_graph_destroy,
};

dq_backend_t *dq_record_backend_new(size_t workspace_bytes, int n_threads) {
    dq_backend_t *be = calloc(1, sizeof *be);
    s_ctx_t *c = calloc(1, sizeof *c);
    if (c) c->cpu = dq_backend_cpu_new(workspace_bytes, n_threads);
    if (!be || !c || !c->cpu) {
        if (c) dq_backend_destroy(&c->cpu);
        free(c);
        free(be);
        return NULL;
    }
    be->ops = &s_ops;
    be->ctx = c;
    return be;
}

dq_record_stats_t *dq_record_backend_stats(dq_backend_t *be) { return &s_ctx(be)->stats; }
