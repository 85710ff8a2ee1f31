/* tests/gpu/graph_cuda.c: the CUDA backend's graph hooks on a real device.
 *
 * A small step that touches every kind of work a UNet step queues (cuDNN conv2d, group norm and
 * SiLU kernels, cuBLAS linear and attention GEMMs with the softmax kernel, add, cpy) is run op by
 * op for several inputs, then recorded once (dq_backend_graph_begin/end) and replayed for the
 * same inputs, each uploaded into the step's input tensor outside the recording: every replay
 * must give the eager bits. Then a recording spoiled by a call that is not allowed during capture
 * (an upload, which synchronizes) must fail cleanly at dq_backend_graph_end and leave the backend
 * working (the step again gives the eager bits). Runs in f32 and f16 mode. One line per check;
 * exit 0 all passed, 1 a failure, 77 no CUDA device. Needs a GPU: built by `make check`, run by
 * tests/gpu/check.sh. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/arena.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/device.h"
#include "kernels/ops.h"

#define S_INPUTS 3 /* different inputs replayed */

static int s_checks, s_failures;

static void s_row(const char *mode, const char *what, bool ok, const char *note) {
    s_checks++;
    s_failures += !ok;
    printf("%-4s %-44s %-6s %s\n", mode, what, ok ? "ok" : "FAILED", note ? note : "");
}

/* Deterministic values in [-scale, scale). */
static void s_fill(float *p, size_t n, uint32_t seed, float scale) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = scale * ((float) (seed >> 8) / (float) (1u << 23) - 1.0f);
    }
}

/* The step's tensors: x is the per-call input, out the result; the rest are weights and
 * activations (all in one arena, fixed for the backend's life). */
typedef struct {
    dq_backend_t *be;
    dq_arena_t *a;
    dq_tensor_t *x, *cw, *cb, *gw, *gb, *lw, *lb, *c, *g, *l, *att, *sum, *out;
    dq_tensor_t c3; /* c viewed as [2, 16, 144] */
} s_step_t;

static dq_tensor_t *s_t(s_step_t *s, int ndim, const int64_t *shape, const char *name,
                        uint32_t seed, float scale) {
    dq_tensor_t *t = dq_arena_tensor(s->a, DQ_DTYPE_F32, ndim, shape, name);
    if (!t) return NULL;
    if (seed) {
        size_t n = (size_t) dq_tensor_nelements(t);
        float *h = malloc(n * sizeof *h);
        if (!h) return NULL;
        s_fill(h, n, seed, scale);
        int rc = dq_tensor_upload(s->be, t, 0, h, n * sizeof *h);
        free(h);
        if (rc) return NULL;
    }
    return t;
}

static int s_step_init(s_step_t *s, dq_backend_t *be) {
    memset(s, 0, sizeof *s);
    s->be = be;
    s->a = dq_arena_new(be, (size_t) 1 << 20, 32);
    if (!s->a) return -1;
    s->x = s_t(s, 4, (int64_t[]){2, 8, 12, 12}, "x", 0, 0);
    s->cw = s_t(s, 4, (int64_t[]){16, 8, 3, 3}, "conv.w", 11, 0.2f);
    s->cb = s_t(s, 1, (int64_t[]){16}, "conv.b", 12, 0.1f);
    s->gw = s_t(s, 1, (int64_t[]){16}, "norm.w", 13, 1.0f);
    s->gb = s_t(s, 1, (int64_t[]){16}, "norm.b", 14, 0.1f);
    s->lw = s_t(s, 2, (int64_t[]){64, 144}, "linear.w", 15, 0.1f);
    s->lb = s_t(s, 1, (int64_t[]){64}, "linear.b", 16, 0.1f);
    s->c = s_t(s, 4, (int64_t[]){2, 16, 12, 12}, "c", 0, 0);
    s->g = s_t(s, 4, (int64_t[]){2, 16, 12, 12}, "g", 0, 0);
    s->l = s_t(s, 3, (int64_t[]){2, 16, 64}, "l", 0, 0);
    s->att = s_t(s, 3, (int64_t[]){2, 16, 64}, "att", 0, 0);
    s->sum = s_t(s, 3, (int64_t[]){2, 16, 64}, "sum", 0, 0);
    s->out = s_t(s, 3, (int64_t[]){2, 16, 64}, "out", 0, 0);
    const dq_tensor_t *all[] = {s->x, s->cw, s->cb, s->gw, s->gb, s->lw, s->lb,
                                s->c, s->g, s->l, s->att, s->sum, s->out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!all[i]) return -1;
    return dq_tensor_reshape(&s->c3, s->g, 3, (int64_t[]){2, 16, 144});
}

/* out = cpy(attention(l, l, l) + l), l = linear(silu(group_norm(conv(x)))): queues ops only. */
static int s_step_run(s_step_t *s) {
    dq_backend_t *be = s->be;
    return dq_op_conv2d(be, s->x, s->cw, s->cb, 1, 1, s->c) ||
           dq_op_group_norm(be, s->c, s->gw, s->gb, 4, 1e-5f, s->g) ||
           dq_op_silu(be, s->g, s->g) || dq_op_linear(be, &s->c3, s->lw, s->lb, s->l) ||
           dq_op_attention(be, s->l, s->l, s->l, 4, false, s->att) ||
           dq_op_add(be, s->att, s->l, s->sum) || dq_op_cpy(be, s->sum, s->out)
               ? -1
               : 0;
}

/* Uploads input k into x. */
static int s_input(s_step_t *s, int k) {
    float h[2 * 8 * 12 * 12];
    s_fill(h, sizeof h / sizeof *h, 100u + (uint32_t) k, 1.0f);
    return dq_tensor_upload(s->be, s->x, 0, h, sizeof h);
}

static int s_result(s_step_t *s, float *dst) {
    return dq_tensor_download(s->be, s->out, 0, dst, dq_tensor_nbytes(s->out));
}

static void s_suite(int device, dq_cuda_precision_t prec, const char *mode) {
    char err[256] = "", note[128];
    dq_backend_t *be = dq_backend_cuda_new(device, 0, prec, err, sizeof err);
    if (!be) {
        s_row(mode, "create the backend", false, err);
        return;
    }
    s_step_t s;
    enum { N = 2 * 16 * 64 };
    static float eager[S_INPUTS][N], got[N];
    if (s_step_init(&s, be)) {
        s_row(mode, "weights and activations", false, "see the log");
        goto done;
    }
    bool ok = true;
    for (int k = 0; k < S_INPUTS && ok; k++)
        ok = !s_input(&s, k) && !s_step_run(&s) && !s_result(&s, eager[k]);
    s_row(mode, "eager step", ok, NULL);
    if (!ok) goto done;

    dq_backend_graph_t *graph = NULL;
    ok = dq_backend_graph_begin(be) == 0;
    int frc = ok ? s_step_run(&s) : -1;
    int erc = ok ? dq_backend_graph_end(be, &graph) : -1;
    snprintf(note, sizeof note, "begin %s, step %d, end %d", ok ? "ok" : "failed", frc, erc);
    s_row(mode, "record the step", frc == 0 && erc == 0 && graph, note);
    for (int round = 0; graph && round < 2; round++)
        for (int k = 0; k < S_INPUTS; k++) {
            char what[64];
            snprintf(what, sizeof what, "replay %d of input %d gives the eager bits", round, k);
            ok = !s_input(&s, k) && !dq_backend_graph_launch(be, graph) && !s_result(&s, got);
            s_row(mode, what, ok && !memcmp(got, eager[k], sizeof got),
                  ok ? NULL : "launch or download failed");
        }
    dq_backend_graph_destroy(be, &graph);

    /* A spoiled recording: the upload inside synchronizes, which capture does not allow. */
    float h[2 * 8 * 12 * 12] = {0};
    ok = dq_backend_graph_begin(be) == 0;
    int urc = ok ? dq_tensor_upload(be, s.x, 0, h, sizeof h) : 0;
    erc = ok ? dq_backend_graph_end(be, &graph) : 0;
    snprintf(note, sizeof note, "upload %d, end %d", urc, erc);
    s_row(mode, "a spoiled recording fails at the end", ok && urc != 0 && erc != 0 && !graph,
          note);
    dq_backend_graph_destroy(be, &graph);
    ok = !s_input(&s, 1) && !s_step_run(&s) && !s_result(&s, got);
    s_row(mode, "... and the backend still gives the eager bits",
          ok && !memcmp(got, eager[1], sizeof got), ok ? NULL : "an op failed after it");
done:
    dq_arena_destroy(&s.a);
    dq_backend_destroy(&be);
}

int main(void) {
    dq_log_init("graph_cuda", DQ_LOG_WARN, false);
    char err[256] = "";
    if (dq_cuda_device_count(err, sizeof err) < 1) {
        printf("no CUDA device%s%s\n", err[0] ? ": " : "", err);
        return 77;
    }
    s_suite(0, DQ_CUDA_PRECISION_F32, "f32");
    s_suite(0, DQ_CUDA_PRECISION_F16, "f16");
    printf("graph_cuda: %d of %d checks passed\n", s_checks - s_failures, s_checks);
    return s_failures ? 1 : 0;
}
