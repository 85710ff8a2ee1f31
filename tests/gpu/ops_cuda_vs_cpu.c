/* tests/gpu/ops_cuda_vs_cpu.c: every op on the CUDA backend against the CPU backend.
 *
 * Random inputs of several shapes (odd sizes, batch > 1) are uploaded to both backends; each op
 * runs on both; outputs (poisoned with NaN before the op and fenced by sentinel floats) come
 * back through download only. A case passes when the CUDA output is finite wherever the CPU's
 * is, its relative L2 error ||cuda - cpu|| / ||cpu|| is within the mode's tolerance (f32 mode
 * 1e-5, f16 mode 1e-2), and no guard float was touched. The suite runs in f32 mode with the
 * default workspace, in f32 mode with a small workspace (forces the tiled paths), in f16 mode,
 * and in f16 mode with the small workspace (the larger convs then take the f32 fallback, which
 * adds the bias separately); the f32 and f16 passes also run SD 1.5-size cases (DQ_GPU_SMALL=1
 * leaves them out). The "h" passes (small cases only) give the CUDA side F16 activations
 * (kernels/backend.h): inputs are drawn in f32 and rounded to f16, the CPU gets the rounded
 * values as F32, and the CUDA backend's F16 output is widened and compared at 1e-2 (guards and
 * NaN poison work on its 2-byte elements too). The "b" passes do the same with BF16
 * activations, at 1e-2 too. One table row per case; exit status 0 all
 * passed, 1 any failed, 77 no CUDA device (skip, automake's convention). Needs a GPU: built by
 * `make check`, not run, except against the CPU emulation of CUDA (tests/emul/ops_cuda_emul),
 * where it prints TAP. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/cuda/backend_cuda.h"
#include "kernels/cuda/device.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"

#define S_GUARD 16                /* floats of sentinel on each side of an output */
#define S_SENTINEL 1234.5678f     /* a value no op writes by accident */
#define S_MAX_PAIRS 32

/* One tensor on both backends with the same contents. */
typedef struct {
    dq_tensor_t c, g;         /* the CPU's and the CUDA backend's tensor */
    dq_buffer_t *cb, *gb;     /* owned: their buffers */
    bool output;              /* fenced by guards */
} s_pair_t;

static dq_backend_t *s_cpu, *s_gpu;
static s_pair_t s_pairs[S_MAX_PAIRS];
static int s_npairs;
static uint64_t s_rng = 0x9e3779b97f4a7c15ull;
static int s_failures, s_cases;
static const char *s_mode = "f32";
static double s_tol = 1e-5;
static bool s_big; /* add the SD-size cases (the CPU side takes seconds each) */
/* The CUDA side's activation dtype (F32, or F16 in the "h" passes); the CPU's is always F32. */
static dq_dtype_t s_act_dt = DQ_DTYPE_F32;

static float s_uniform(float lo, float hi) {
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    uint64_t r = s_rng * 0x2545f4914f6cdd1dull;
    return lo + (hi - lo) * (float) ((double) (r >> 40) / (double) (1ull << 24));
}

static void s_die(const char *what) {
    fprintf(stderr, "ops_cuda_vs_cpu: %s\n", what);
    exit(1);
}

/* The whole buffer of an output as raw bytes (guards included). */
static void s_raw(dq_tensor_t *raw, const dq_buffer_t *buf, int64_t bytes) {
    if (dq_tensor_init(raw, DQ_DTYPE_U8, 1, &bytes, buf->base, (dq_buffer_t *) buf, "raw"))
        s_die("raw view failed");
}

/* Allocates a tensor of dtype/shape on backend be (with guards for outputs) holding bytes. */
static dq_buffer_t *s_make(dq_backend_t *be, dq_tensor_t *t, dq_dtype_t dtype, int ndim,
                           const int64_t *shape, const void *bytes, bool output) {
    dq_tensor_t probe;
    if (dq_tensor_init(&probe, dtype, ndim, shape, NULL, NULL, NULL)) s_die("bad shape");
    size_t nb = dq_tensor_nbytes(&probe), gb = output ? S_GUARD * sizeof(float) : 0;
    dq_buffer_t *buf = dq_backend_buffer_alloc(be, nb + 2 * gb);
    if (!buf) s_die("buffer allocation failed");
    if (output) {
        /* Sentinel floats on both sides, NaN poison of the output's own dtype (an f32 NaN's
         * low half is 0 as an f16) in between. */
        size_t total = nb + 2 * gb;
        unsigned char *h = malloc(total);
        if (!h) s_die("out of host memory");
        const float sent = S_SENTINEL, nan32 = NAN;
        const uint16_t nan16 = dtype == DQ_DTYPE_BF16 ? 0x7fc0 : 0x7e00;
        for (size_t i = 0; i < S_GUARD; i++) {
            memcpy(h + i * sizeof sent, &sent, sizeof sent);
            memcpy(h + gb + nb + i * sizeof sent, &sent, sizeof sent);
        }
        size_t esz = dq_dtype_size(dtype);
        for (size_t i = 0; i < nb / esz; i++)
            memcpy(h + gb + i * esz, esz == 2 ? (const void *) &nan16 : (const void *) &nan32,
                   esz);
        dq_tensor_t raw;
        s_raw(&raw, buf, (int64_t) total);
        if (dq_tensor_upload(be, &raw, 0, h, total)) s_die("guard upload failed");
        free(h);
    }
    if (dq_tensor_init(t, dtype, ndim, shape, (char *) buf->base + gb, buf, output ? "y" : "in"))
        s_die("tensor init failed");
    if (bytes && dq_tensor_upload(be, t, 0, bytes, nb)) s_die("upload failed");
    return buf;
}

/* A pair whose two sides may differ in dtype (cdt/cbytes for the CPU, gdt/gbytes for CUDA). */
static s_pair_t *s_pair2(dq_dtype_t cdt, const void *cbytes, dq_dtype_t gdt, const void *gbytes,
                         int ndim, const int64_t *shape, bool output) {
    if (s_npairs == S_MAX_PAIRS) s_die("too many tensors in one case");
    s_pair_t *p = &s_pairs[s_npairs++];
    p->output = output;
    p->cb = s_make(s_cpu, &p->c, cdt, ndim, shape, cbytes, output);
    p->gb = s_make(s_gpu, &p->g, gdt, ndim, shape, gbytes, output);
    return p;
}

static s_pair_t *s_pair(dq_dtype_t dtype, int ndim, const int64_t *shape, const void *bytes,
                        bool output) {
    return s_pair2(dtype, bytes, dtype, bytes, ndim, shape, output);
}

static int64_t s_count(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* A random input of dtype F32, F16 or BF16, uniform in [lo, hi). */
static s_pair_t *s_input(dq_dtype_t dtype, int ndim, const int64_t *shape, float lo, float hi) {
    int64_t n = s_count(ndim, shape);
    size_t esz = dq_dtype_size(dtype);
    unsigned char *h = malloc((size_t) n * esz);
    if (!h) s_die("out of host memory");
    for (int64_t i = 0; i < n; i++) {
        float v = s_uniform(lo, hi);
        if (dtype == DQ_DTYPE_F32) memcpy(h + i * 4, &v, 4);
        else {
            uint16_t b = dtype == DQ_DTYPE_F16 ? dq_f32_to_f16(v) : dq_f32_to_bf16(v);
            memcpy(h + i * 2, &b, 2);
        }
    }
    s_pair_t *p = s_pair(dtype, ndim, shape, h, false);
    free(h);
    return p;
}

/* An activation uniform in [lo, hi): F32 on both sides, or in the "h" ("b") passes rounded to
 * f16 (bf16), the CUDA side F16 (BF16) and the CPU side the same values as F32. */
static s_pair_t *s_act_in(int ndim, const int64_t *shape, float lo, float hi) {
    if (s_act_dt == DQ_DTYPE_F32) return s_input(DQ_DTYPE_F32, ndim, shape, lo, hi);
    int64_t n = s_count(ndim, shape);
    float *f = malloc((size_t) n * sizeof *f);
    uint16_t *h = malloc((size_t) n * sizeof *h);
    if (!f || !h) s_die("out of host memory");
    for (int64_t i = 0; i < n; i++) {
        float v = s_uniform(lo, hi);
        bool bf = s_act_dt == DQ_DTYPE_BF16;
        h[i] = bf ? dq_f32_to_bf16(v) : dq_f32_to_f16(v);
        f[i] = bf ? dq_bf16_to_f32(h[i]) : dq_f16_to_f32(h[i]);
    }
    s_pair_t *p = s_pair2(DQ_DTYPE_F32, f, s_act_dt, h, ndim, shape, false);
    free(f);
    free(h);
    return p;
}

static s_pair_t *s_f32(int ndim, const int64_t *shape) {
    return s_act_in(ndim, shape, -2.0f, 2.0f);
}

/* A bias, gamma or beta: F32 on both sides whatever the activations. */
static s_pair_t *s_param(const int64_t *n) { return s_input(DQ_DTYPE_F32, 1, n, -2.0f, 2.0f); }

static s_pair_t *s_output(int ndim, const int64_t *shape) {
    return s_pair2(DQ_DTYPE_F32, NULL, s_act_dt, NULL, ndim, shape, true);
}

static void s_free_pairs(void) {
    for (int i = 0; i < s_npairs; i++) {
        dq_buffer_free(&s_pairs[i].cb);
        dq_buffer_free(&s_pairs[i].gb);
    }
    s_npairs = 0;
}

/* The output's n values widened to f32, its guard bands checked; returns false when a guard
 * was touched. */
static bool s_fetch(dq_backend_t *be, const dq_tensor_t *t, const dq_buffer_t *buf, float *out,
                    int64_t n) {
    size_t nb = dq_tensor_nbytes(t), gb = S_GUARD * sizeof(float), total = nb + 2 * gb;
    unsigned char *h = malloc(total);
    dq_tensor_t raw;
    if (!h) s_die("out of host memory");
    s_raw(&raw, buf, (int64_t) total);
    if (dq_tensor_download(be, &raw, 0, h, total)) s_die("download failed");
    bool ok = true;
    for (size_t i = 0; i < S_GUARD; i++) {
        float a, b;
        memcpy(&a, h + i * sizeof a, sizeof a);
        memcpy(&b, h + gb + nb + i * sizeof b, sizeof b);
        ok = ok && a == S_SENTINEL && b == S_SENTINEL;
    }
    if (dq_convert_to_f32(out, h + gb, t->dtype, (size_t) n)) s_die("output of no float dtype");
    free(h);
    return ok;
}

/* One result row: a table row, or under the CPU emulation of CUDA (tests/emul/, run by make
 * check) a TAP line, so each case counts. why: NULL when the case passed. */
static void s_row(const char *op, const char *shape, const char *err, const char *tol,
                  const char *why) {
#ifdef DQ_CUDA_EMUL
    printf("%s %d - %s %s %s rel_l2 %s tol %s%s%s\n", why ? "not ok" : "ok", s_cases, op, shape,
           s_mode, err, tol, why ? ": " : "", why ? why : "");
#else
    printf("%-23s %-28s %-4s %11s %9s  %s\n", op, shape, s_mode, err, tol, why ? why : "ok");
#endif
    fflush(stdout);
}

/* Compares output pair y after both ops returned rc_c and rc_g; prints the table row. */
static void s_check(const char *op, const char *shape, const s_pair_t *y, int rc_c, int rc_g,
                    double tol) {
    s_cases++;
    const char *why = NULL;
    double err = NAN;
    if (rc_c != 0 || rc_g != 0) why = rc_c ? "cpu op failed" : "cuda op failed";
    else if (dq_backend_synchronize(s_gpu) != 0) why = "device fault";
    if (!why) {
        int64_t n = dq_tensor_nelements(&y->c);
        float *a = malloc((size_t) n * sizeof *a), *b = malloc((size_t) n * sizeof *b);
        if (!a || !b) s_die("out of host memory");
        bool gc = s_fetch(s_cpu, &y->c, y->cb, a, n), gg = s_fetch(s_gpu, &y->g, y->gb, b, n);
        double num = 0.0, den = 0.0;
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) {
            if (isfinite(a[i]) && !isfinite(b[i])) bad++;
            double d = (double) b[i] - (double) a[i];
            if (isfinite(a[i])) {
                num += d * d;
                den += (double) a[i] * a[i];
            }
        }
        err = den > 0 ? sqrt(num / den) : sqrt(num);
        if (!gc) why = "cpu guard overwritten";
        else if (!gg) why = "cuda guard overwritten";
        else if (bad) why = "non-finite values";
        else if (!(err <= tol)) why = "error above tolerance";
        free(a);
        free(b);
    }
    if (why) s_failures++;
    char es[16], ts[16];
    snprintf(es, sizeof es, "%.3e", err);
    snprintf(ts, sizeof ts, "%.1e", tol);
    s_row(op, shape, es, ts, why);
    s_free_pairs();
}

/* ---- the cases, one function per op family ---- */

/* The residual of a linear or conv2d case: none, a tensor of its own, y itself, or (conv2d)
 * one value per image and channel. */
typedef enum { S_RES_NONE, S_RES_OWN, S_RES_Y, S_RES_PLANES } s_res_t;

/* Copies src's values into dst on both backends (same shapes and dtypes). */
static void s_copy_into(const s_pair_t *src, s_pair_t *dst) {
    const dq_tensor_t *st[2] = {&src->c, &src->g};
    dq_tensor_t *dt[2] = {&dst->c, &dst->g};
    dq_backend_t *be[2] = {s_cpu, s_gpu};
    for (int i = 0; i < 2; i++) {
        size_t nb = dq_tensor_nbytes(st[i]);
        void *h = malloc(nb);
        if (!h || dq_tensor_download(be[i], st[i], 0, h, nb) ||
            dq_tensor_upload(be[i], dt[i], 0, h, nb))
            s_die("residual copy failed");
        free(h);
    }
}

/* The residual pair for mode res (NULL for none); for S_RES_Y its values are written into y.
 * S_RES_PLANES is [N, C, 1, 1], or [N, 1, 1, C] with nhwc. */
static s_pair_t *s_residual(s_res_t res, int ndim, const int64_t *shape, s_pair_t *y, bool nhwc) {
    if (res == S_RES_NONE) return NULL;
    int64_t planes[4] = {shape[0], shape[1], 1, 1};
    if (nhwc) {
        planes[1] = 1;
        planes[3] = shape[3];
    }
    s_pair_t *r = s_f32(ndim, res == S_RES_PLANES ? planes : shape);
    if (res != S_RES_Y) return r;
    s_copy_into(r, y);
    return y;
}

static const char *s_res_name(s_res_t res) {
    static const char *names[] = {"", " +r", " +=", " +p"};
    return names[res];
}

static void s_case_linear_res(const int64_t *xs, int xnd, int64_t n, dq_dtype_t wt, bool bias,
                              s_res_t res) {
    int64_t k = xs[xnd - 1], ws[2] = {n, k}, ys[4];
    memcpy(ys, xs, sizeof ys[0] * (size_t) xnd);
    ys[xnd - 1] = n;
    s_pair_t *x = s_f32(xnd, xs), *w = s_input(wt, 2, ws, -0.3f, 0.3f);
    s_pair_t *b = bias ? s_param(&n) : NULL, *y = s_output(xnd, ys);
    s_pair_t *r = s_residual(res, xnd, ys, y, false);
    char d[64];
    snprintf(d, sizeof d, "K=%lld N=%lld %s%s%s", (long long) k, (long long) n,
             dq_dtype_name(wt), bias ? " +b" : "", s_res_name(res));
    /* f16 weights in f16 mode round x to f16: that mode's tolerance, not f32's. */
    s_check("linear", d, y,
            dq_op_linear_residual(s_cpu, &x->c, &w->c, b ? &b->c : NULL, r ? &r->c : NULL,
                                  &y->c),
            dq_op_linear_residual(s_gpu, &x->g, &w->g, b ? &b->g : NULL, r ? &r->g : NULL,
                                  &y->g),
            s_tol);
}

static void s_case_linear(const int64_t *xs, int xnd, int64_t n, dq_dtype_t wt, bool bias) {
    s_case_linear_res(xs, xnd, n, wt, bias, S_RES_NONE);
}

static void s_case_matmul(int64_t batch, int64_t m, int64_t k, int64_t n, bool trans_b,
                          bool shared) {
    int64_t as[3] = {batch, m, k}, ys[3] = {batch, m, n};
    int64_t bs[3] = {shared ? 1 : batch, trans_b ? n : k, trans_b ? k : n};
    s_pair_t *a = s_f32(3, as), *b = s_f32(3, bs), *y = s_output(3, ys);
    char d[64];
    snprintf(d, sizeof d, "%lldx%lldx%lldx%lld%s%s", (long long) batch, (long long) m,
             (long long) k, (long long) n, trans_b ? " bT" : "", shared ? " shared" : "");
    s_check("matmul", d, y, dq_op_matmul(s_cpu, &a->c, &b->c, trans_b, 0.37f, &y->c),
            dq_op_matmul(s_gpu, &a->g, &b->g, trans_b, 0.37f, &y->g), s_tol);
}

static void s_case_conv_res(int64_t nb, int64_t ci, int64_t h, int64_t w, int64_t co,
                            int64_t kk, int stride, int pad, dq_dtype_t wt, bool bias,
                            s_res_t res) {
    int64_t xs[4] = {nb, ci, h, w}, wsh[4] = {co, ci, kk, kk};
    int64_t ys[4] = {nb, co, (h + 2 * pad - kk) / stride + 1, (w + 2 * pad - kk) / stride + 1};
    s_pair_t *x = s_f32(4, xs), *wp = s_input(wt, 4, wsh, -0.2f, 0.2f);
    s_pair_t *b = bias ? s_param(&co) : NULL, *y = s_output(4, ys);
    s_pair_t *r = s_residual(res, 4, ys, y, false);
    char d[64];
    snprintf(d, sizeof d, "%lldx%lldx%lldx%lld k%lld s%d p%d %s%s", (long long) nb,
             (long long) ci, (long long) h, (long long) w, (long long) kk, stride, pad,
             dq_dtype_name(wt), s_res_name(res));
    s_check("conv2d", d, y,
            dq_op_conv2d_residual(s_cpu, &x->c, &wp->c, b ? &b->c : NULL, stride, pad,
                                  r ? &r->c : NULL, &y->c),
            dq_op_conv2d_residual(s_gpu, &x->g, &wp->g, b ? &b->g : NULL, stride, pad,
                                  r ? &r->g : NULL, &y->g),
            s_tol);
}

static void s_case_conv(int64_t nb, int64_t ci, int64_t h, int64_t w, int64_t co, int64_t kk,
                        int stride, int pad, dq_dtype_t wt, bool bias) {
    s_case_conv_res(nb, ci, h, w, co, kk, stride, pad, wt, bias, S_RES_NONE);
}

/* conv2d_nhwc: x[nb, h, w, ci], w[co, kk, kk, ci] (KRSC), y[nb, Ho, Wo, co]. */
static void s_case_conv_nhwc(int64_t nb, int64_t ci, int64_t h, int64_t w, int64_t co, int64_t kk,
                             int stride, int pad, dq_dtype_t wt, bool bias, s_res_t res) {
    int64_t xs[4] = {nb, h, w, ci}, wsh[4] = {co, kk, kk, ci};
    int64_t ys[4] = {nb, (h + 2 * pad - kk) / stride + 1, (w + 2 * pad - kk) / stride + 1, co};
    s_pair_t *x = s_f32(4, xs), *wp = s_input(wt, 4, wsh, -0.2f, 0.2f);
    s_pair_t *b = bias ? s_param(&co) : NULL, *y = s_output(4, ys);
    s_pair_t *r = s_residual(res, 4, ys, y, true);
    char d[64];
    snprintf(d, sizeof d, "%lldx%lldx%lldx%lld k%lld s%d p%d co%lld %s%s%s", (long long) nb,
             (long long) h, (long long) w, (long long) ci, (long long) kk, stride, pad,
             (long long) co, dq_dtype_name(wt), bias ? " +b" : "", s_res_name(res));
    s_check("conv2d_nhwc", d, y,
            dq_op_conv2d_nhwc(s_cpu, &x->c, &wp->c, b ? &b->c : NULL, stride, pad, r ? &r->c : NULL,
                              &y->c),
            dq_op_conv2d_nhwc(s_gpu, &x->g, &wp->g, b ? &b->g : NULL, stride, pad, r ? &r->g : NULL,
                              &y->g),
            s_tol);
}

/* group_norm(_silu)_nhwc on x[N, ..., C] (the channels last). */
static void s_case_group_norm_nhwc(int nd, const int64_t *xs, int groups, bool affine, bool silu) {
    const int64_t *c = &xs[nd - 1];
    s_pair_t *x = s_act_in(nd, xs, 1.0f, 4.0f);
    s_pair_t *g = affine ? s_param(c) : NULL, *b = affine ? s_param(c) : NULL;
    s_pair_t *y = s_output(nd, xs);
    char d[64];
    snprintf(d, sizeof d, "%lld..x%lld g%d%s", (long long) xs[0], (long long) *c, groups,
             affine ? " affine" : "");
    int (*fn)(dq_backend_t *, const dq_tensor_t *, const dq_tensor_t *, const dq_tensor_t *, int,
              float, dq_tensor_t *) = silu ? dq_op_group_norm_silu_nhwc : dq_op_group_norm_nhwc;
    int rc_c = fn(s_cpu, &x->c, g ? &g->c : NULL, b ? &b->c : NULL, groups, 1e-5f, &y->c);
    int rc_g = fn(s_gpu, &x->g, g ? &g->g : NULL, b ? &b->g : NULL, groups, 1e-5f, &y->g);
    s_check(silu ? "group_norm_silu_nhwc" : "group_norm_nhwc", d, y, rc_c, rc_g, s_tol);
}

static void s_case_group_norm(int nd, const int64_t *xs, int groups, bool affine, bool silu) {
    s_pair_t *x = s_act_in(nd, xs, 1.0f, 4.0f);
    s_pair_t *g = affine ? s_param(&xs[1]) : NULL, *b = affine ? s_param(&xs[1]) : NULL;
    s_pair_t *y = s_output(nd, xs);
    char d[64];
    snprintf(d, sizeof d, "%lldx%lld.. g%d%s", (long long) xs[0], (long long) xs[1], groups,
             affine ? " affine" : "");
    /* The CPU's group_norm_silu is bit-identical to its group_norm then silu
     * (tests/unit/test_ops_cpu.c), so both sides go through the op table. */
    int (*fn)(dq_backend_t *, const dq_tensor_t *, const dq_tensor_t *, const dq_tensor_t *, int,
              float, dq_tensor_t *) = silu ? dq_op_group_norm_silu : dq_op_group_norm;
    int rc_c = fn(s_cpu, &x->c, g ? &g->c : NULL, b ? &b->c : NULL, groups, 1e-5f, &y->c);
    int rc_g = fn(s_gpu, &x->g, g ? &g->g : NULL, b ? &b->g : NULL, groups, 1e-5f, &y->g);
    s_check(silu ? "group_norm_silu" : "group_norm", d, y, rc_c, rc_g, s_tol);
}

static void s_case_layer_norm(int nd, const int64_t *xs, bool affine) {
    int64_t dd = xs[nd - 1];
    s_pair_t *x = s_act_in(nd, xs, 2.0f, 5.0f);
    s_pair_t *g = affine ? s_param(&dd) : NULL, *b = affine ? s_param(&dd) : NULL;
    s_pair_t *y = s_output(nd, xs);
    char d[64];
    snprintf(d, sizeof d, "rows x %lld%s", (long long) dd, affine ? " affine" : "");
    s_check("layer_norm", d, y,
            dq_op_layer_norm(s_cpu, &x->c, g ? &g->c : NULL, b ? &b->c : NULL, 1e-5f, &y->c),
            dq_op_layer_norm(s_gpu, &x->g, g ? &g->g : NULL, b ? &b->g : NULL, 1e-5f, &y->g),
            s_tol);
}

typedef int (*s_unary_t)(dq_backend_t *, const dq_tensor_t *, dq_tensor_t *);

static void s_case_unary(const char *op, s_unary_t fn, int nd, const int64_t *xs, float range,
                         bool in_place) {
    s_pair_t *x = s_act_in(nd, xs, -range, range);
    s_pair_t *y = s_output(nd, xs);
    char d[64];
    snprintf(d, sizeof d, "%lld elems%s", (long long) s_count(nd, xs), in_place ? " in place" : "");
    if (in_place) {
        /* Copy x into y on each side first, then run y = f(y). */
        int rc_c = dq_op_scale(s_cpu, &x->c, 1.0f, 0.0f, &y->c);
        int rc_g = dq_op_scale(s_gpu, &x->g, 1.0f, 0.0f, &y->g);
        s_check(op, d, y, rc_c ? rc_c : fn(s_cpu, &y->c, &y->c), rc_g ? rc_g : fn(s_gpu, &y->g, &y->g),
                s_tol);
        return;
    }
    s_check(op, d, y, fn(s_cpu, &x->c, &y->c), fn(s_gpu, &x->g, &y->g), s_tol);
}

static void s_case_softmax(int nd, const int64_t *xs) {
    s_pair_t *x = s_act_in(nd, xs, -8.0f, 8.0f), *y = s_output(nd, xs);
    char d[64];
    snprintf(d, sizeof d, "rows x %lld", (long long) xs[nd - 1]);
    s_check("softmax", d, y, dq_op_softmax(s_cpu, &x->c, &y->c), dq_op_softmax(s_gpu, &x->g, &y->g),
            s_tol);
}

static void s_case_attention(int64_t b, int64_t lq, int64_t lk, int heads, int64_t dh,
                             bool causal) {
    int64_t qs[3] = {b, lq, heads * dh}, ks[3] = {b, lk, heads * dh};
    s_pair_t *q = s_f32(3, qs), *k = s_f32(3, ks), *v = s_f32(3, ks), *y = s_output(3, qs);
    char d[64];
    snprintf(d, sizeof d, "B%lld Lq%lld Lk%lld H%d D%lld%s", (long long) b, (long long) lq,
             (long long) lk, heads, (long long) dh, causal ? " causal" : "");
    s_check("attention", d, y, dq_op_attention(s_cpu, &q->c, &k->c, &v->c, heads, causal, &y->c),
            dq_op_attention(s_gpu, &q->g, &k->g, &v->g, heads, causal, &y->g), s_tol);
}

static void s_case_geglu(int64_t rows, int64_t f) {
    int64_t xs[3] = {2, rows, 2 * f}, ys[3] = {2, rows, f};
    s_pair_t *x = s_act_in(3, xs, -4.0f, 4.0f), *y = s_output(3, ys);
    char d[64];
    snprintf(d, sizeof d, "2x%lldx%lld", (long long) rows, (long long) (2 * f));
    s_check("geglu", d, y, dq_op_geglu(s_cpu, &x->c, &y->c), dq_op_geglu(s_gpu, &x->g, &y->g),
            s_tol);
}

static void s_case_binary(bool mul, int an, const int64_t *as, int bn, const int64_t *bs,
                          bool in_place) {
    s_pair_t *a = s_f32(an, as), *b = s_f32(bn, bs), *y = s_output(an, as);
    char d[64];
    snprintf(d, sizeof d, "%dd + b %dd [%lld..]%s", an, bn, (long long) bs[0],
             in_place ? " in place" : "");
    const char *op = mul ? "mul" : "add";
    int (*fn)(dq_backend_t *, const dq_tensor_t *, const dq_tensor_t *, dq_tensor_t *) =
        mul ? dq_op_mul : dq_op_add;
    if (in_place) {
        int rc_c = dq_op_scale(s_cpu, &a->c, 1.0f, 0.0f, &y->c);
        int rc_g = dq_op_scale(s_gpu, &a->g, 1.0f, 0.0f, &y->g);
        s_check(op, d, y, rc_c ? rc_c : fn(s_cpu, &y->c, &b->c, &y->c),
                rc_g ? rc_g : fn(s_gpu, &y->g, &b->g, &y->g), s_tol);
        return;
    }
    s_check(op, d, y, fn(s_cpu, &a->c, &b->c, &y->c), fn(s_gpu, &a->g, &b->g, &y->g), s_tol);
}

static void s_case_scale(int64_t n) {
    s_pair_t *x = s_f32(1, &n), *y = s_output(1, &n);
    s_check("scale", "x*0.18215+0.5", y, dq_op_scale(s_cpu, &x->c, 0.18215f, 0.5f, &y->c),
            dq_op_scale(s_gpu, &x->g, 0.18215f, 0.5f, &y->g), s_tol);
}

static void s_case_upsample(const int64_t *xs) {
    int64_t ys[4] = {xs[0], xs[1], 2 * xs[2], 2 * xs[3]};
    s_pair_t *x = s_f32(4, xs), *y = s_output(4, ys);
    char d[64];
    snprintf(d, sizeof d, "%lldx%lldx%lldx%lld", (long long) xs[0], (long long) xs[1],
             (long long) xs[2], (long long) xs[3]);
    s_check("upsample_nearest2x", d, y, dq_op_upsample_nearest2x(s_cpu, &x->c, &y->c),
            dq_op_upsample_nearest2x(s_gpu, &x->g, &y->g), s_tol);
}

static void s_case_upsample_nhwc(const int64_t *xs) {
    int64_t ys[4] = {xs[0], 2 * xs[1], 2 * xs[2], xs[3]};
    s_pair_t *x = s_f32(4, xs), *y = s_output(4, ys);
    char d[64];
    snprintf(d, sizeof d, "%lldx%lldx%lldx%lld", (long long) xs[0], (long long) xs[1],
             (long long) xs[2], (long long) xs[3]);
    s_check("upsample_nearest2x_nhwc", d, y, dq_op_upsample_nearest2x_nhwc(s_cpu, &x->c, &y->c),
            dq_op_upsample_nearest2x_nhwc(s_gpu, &x->g, &y->g), s_tol);
}

static void s_case_concat(int dim) {
    int64_t as[4] = {2, 3, 5, 7}, bs[4] = {2, 3, 5, 7}, ys[4] = {2, 3, 5, 7};
    bs[dim] = 4;
    ys[dim] += 4;
    s_pair_t *a = s_f32(4, as), *b = s_f32(4, bs), *y = s_output(4, ys);
    char d[64];
    snprintf(d, sizeof d, "dim %d", dim);
    s_check("concat", d, y, dq_op_concat(s_cpu, &a->c, &b->c, dim, &y->c),
            dq_op_concat(s_gpu, &a->g, &b->g, dim, &y->g), s_tol);
}

/* A permuted (and optionally sliced) view of a [2, 6, 5, 7] tensor of dtype, made contiguous. */
static void s_case_cpy(dq_dtype_t dt, const int *perm, bool slice) {
    int64_t xs[4] = {2, 6, 5, 7};
    s_pair_t *x = s_input(dt, 4, xs, -3.0f, 3.0f);
    dq_tensor_t vc, vg, pc, pg;
    if (dq_tensor_permute(&pc, &x->c, perm) || dq_tensor_permute(&pg, &x->g, perm))
        s_die("permute failed");
    vc = pc;
    vg = pg;
    if (slice && (dq_tensor_slice(&vc, &pc, 1, 1, pc.shape[1] - 2) ||
                  dq_tensor_slice(&vg, &pg, 1, 1, pg.shape[1] - 2)))
        s_die("slice failed");
    s_pair_t *y = s_output(4, vc.shape);
    char d[64];
    snprintf(d, sizeof d, "perm %d%d%d%d%s %s", perm[0], perm[1], perm[2], perm[3],
             slice ? " sliced" : "", dq_dtype_name(dt));
    s_check("cpy", d, y, dq_op_cpy(s_cpu, &vc, &y->c), dq_op_cpy(s_gpu, &vg, &y->g), s_tol);
}

static void s_case_get_rows(dq_dtype_t dt, bool bad_id) {
    int64_t ts[2] = {50, 33}, is = 14, ys[3] = {2, 7, 33};
    int32_t ids[14];
    for (int i = 0; i < 14; i++) ids[i] = (int32_t) ((i * 37 + 11) % 50);
    if (bad_id) ids[9] = 50;
    s_pair_t *t = s_input(dt, 2, ts, -1.0f, 1.0f);
    s_pair_t *id = s_pair(DQ_DTYPE_I32, 1, &is, ids, false);
    s_pair_t *y = s_output(3, ys);
    int rc_c = dq_op_get_rows(s_cpu, &t->c, &id->c, &y->c);
    int rc_g = dq_op_get_rows(s_gpu, &t->g, &id->g, &y->g);
    if (bad_id) {
        /* Both must refuse the id; the output is not compared. */
        s_cases++;
        bool ok = rc_c == -1 && rc_g == -1;
        if (!ok) s_failures++;
        s_row("get_rows", "id out of range (both must refuse)", "-", "-",
              ok ? NULL : "accepted a bad id");
        s_free_pairs();
        return;
    }
    char d[64];
    snprintf(d, sizeof d, "50x33 %s", dq_dtype_name(dt));
    s_check("get_rows", d, y, rc_c, rc_g, s_tol);
}

/* The channels-last ops: odd sizes, stride 2, 1x1 and 3x3, every residual kind, F32/F16/BF16
 * weights, with and without bias; the 64 -> 64 and 64 -> 160 cases split their converted weights
 * into blocks of output channels in the small-workspace passes (channel blocks of a channels-last
 * y). */
static void s_suite_nhwc(void) {
    const dq_dtype_t f32 = DQ_DTYPE_F32, f16 = DQ_DTYPE_F16, bf16 = DQ_DTYPE_BF16;
    s_case_conv_nhwc(2, 5, 9, 11, 7, 3, 1, 1, f32, true, S_RES_NONE);
    s_case_conv_nhwc(2, 5, 9, 11, 7, 3, 2, 0, f32, true, S_RES_NONE);
    s_case_conv_nhwc(2, 5, 9, 11, 7, 3, 2, 1, f16, false, S_RES_NONE);
    s_case_conv_nhwc(3, 8, 6, 5, 12, 1, 1, 0, f32, true, S_RES_NONE);
    s_case_conv_nhwc(2, 6, 7, 9, 10, 1, 2, 0, bf16, true, S_RES_NONE);
    s_case_conv_nhwc(1, 64, 32, 32, 64, 3, 1, 1, bf16, true, S_RES_NONE);
    s_case_conv_nhwc(2, 32, 17, 15, 48, 3, 1, 1, f16, true, S_RES_NONE);
    s_case_conv_nhwc(1, 64, 12, 10, 160, 3, 1, 1, f32, false, S_RES_NONE);
    s_case_conv_nhwc(2, 5, 9, 11, 7, 3, 1, 1, f32, true, S_RES_OWN);
    s_case_conv_nhwc(2, 5, 9, 11, 7, 3, 1, 1, f16, true, S_RES_Y);
    s_case_conv_nhwc(3, 8, 6, 5, 12, 1, 1, 0, f32, false, S_RES_Y);
    s_case_conv_nhwc(1, 64, 32, 32, 64, 3, 1, 1, bf16, true, S_RES_Y);
    s_case_conv_nhwc(2, 32, 17, 15, 48, 3, 1, 1, f16, false, S_RES_OWN);
    s_case_conv_nhwc(2, 5, 9, 11, 7, 3, 1, 1, f32, true, S_RES_PLANES);
    s_case_conv_nhwc(2, 32, 17, 15, 48, 3, 1, 1, f16, true, S_RES_PLANES);
    s_case_conv_nhwc(2, 6, 7, 9, 10, 1, 2, 0, bf16, false, S_RES_PLANES);
    s_case_conv_nhwc(2, 64, 12, 10, 160, 3, 1, 1, bf16, true, S_RES_PLANES);
    /* small y, large weights: the small workspace still times the channel blocks (s_search's
     * scratch y spans a block of a channels-last y) */
    s_case_conv_nhwc(2, 64, 5, 3, 160, 3, 1, 1, bf16, true, S_RES_OWN);
    int64_t g4[4] = {2, 7, 5, 64}, g3[3] = {3, 10, 12}, g2[4] = {1, 16, 16, 128}, g1[2] = {5, 24};
    for (int silu = 0; silu < 2; silu++) {
        s_case_group_norm_nhwc(4, g4, 32, true, silu);
        s_case_group_norm_nhwc(3, g3, 4, false, silu);
        s_case_group_norm_nhwc(4, g2, 32, true, silu);
        s_case_group_norm_nhwc(2, g1, 4, true, silu);
    }
    int64_t up1[4] = {2, 5, 7, 3}, up2[4] = {1, 4, 3, 10};
    s_case_upsample_nhwc(up1);
    s_case_upsample_nhwc(up2);
}

static void s_suite(void) {
    int64_t x3[3] = {2, 7, 33}, x2[2] = {77, 768};
    s_case_linear(x3, 3, 19, DQ_DTYPE_F32, true);
    s_case_linear(x3, 3, 19, DQ_DTYPE_F32, false);
    s_case_linear(x3, 3, 19, DQ_DTYPE_F16, true);
    s_case_linear(x3, 3, 19, DQ_DTYPE_BF16, true);
    s_case_linear(x2, 2, 320, DQ_DTYPE_F32, true);
    s_case_linear(x2, 2, 320, DQ_DTYPE_F16, true);
    /* residual adds fused into the product: a tensor of its own, or y itself (y +=) */
    s_case_linear_res(x3, 3, 19, DQ_DTYPE_F32, true, S_RES_OWN);
    s_case_linear_res(x3, 3, 19, DQ_DTYPE_F32, false, S_RES_Y);
    s_case_linear_res(x3, 3, 19, DQ_DTYPE_F16, true, S_RES_Y);
    s_case_linear_res(x3, 3, 19, DQ_DTYPE_BF16, true, S_RES_OWN);
    s_case_linear_res(x2, 2, 320, DQ_DTYPE_F16, true, S_RES_Y);
    s_case_matmul(3, 17, 33, 9, false, false);
    s_case_matmul(3, 17, 33, 9, true, false);
    s_case_matmul(4, 5, 64, 31, false, true);
    s_case_matmul(2, 65, 40, 77, true, false);
    s_case_conv(2, 5, 9, 11, 7, 3, 1, 1, DQ_DTYPE_F32, true);
    s_case_conv(2, 5, 9, 11, 7, 3, 2, 0, DQ_DTYPE_F32, true);
    s_case_conv(2, 5, 9, 11, 7, 3, 2, 1, DQ_DTYPE_F16, false);
    s_case_conv(3, 8, 6, 5, 12, 1, 1, 0, DQ_DTYPE_F32, true);
    s_case_conv(1, 64, 32, 32, 64, 3, 1, 1, DQ_DTYPE_BF16, true);
    s_case_conv(2, 32, 17, 15, 48, 3, 1, 1, DQ_DTYPE_F16, true);
    s_case_conv_res(2, 5, 9, 11, 7, 3, 1, 1, DQ_DTYPE_F32, true, S_RES_OWN);
    s_case_conv_res(2, 5, 9, 11, 7, 3, 1, 1, DQ_DTYPE_F16, true, S_RES_Y);
    s_case_conv_res(3, 8, 6, 5, 12, 1, 1, 0, DQ_DTYPE_F32, false, S_RES_Y);
    s_case_conv_res(1, 64, 32, 32, 64, 3, 1, 1, DQ_DTYPE_BF16, true, S_RES_Y);
    s_case_conv_res(2, 32, 17, 15, 48, 3, 1, 1, DQ_DTYPE_F16, false, S_RES_OWN);
    s_case_conv_res(2, 5, 9, 11, 7, 3, 1, 1, DQ_DTYPE_F32, true, S_RES_PLANES);
    s_case_conv_res(2, 32, 17, 15, 48, 3, 1, 1, DQ_DTYPE_F16, true, S_RES_PLANES);
    int64_t g4[4] = {2, 64, 7, 5}, g3[3] = {3, 12, 10}, g2[4] = {1, 128, 16, 16};
    s_case_group_norm(4, g4, 32, true, false);
    s_case_group_norm(3, g3, 4, false, false);
    s_case_group_norm(4, g2, 32, true, false);
    s_case_group_norm(4, g4, 32, true, true);
    s_case_group_norm(3, g3, 4, false, true);
    s_case_group_norm(4, g2, 32, true, true);
    int64_t l3[3] = {2, 77, 768}, l2[2] = {5, 33};
    s_case_layer_norm(3, l3, true);
    s_case_layer_norm(2, l2, false);
    int64_t sm1[3] = {3, 7, 129}, sm2[2] = {2, 4096};
    s_case_softmax(3, sm1);
    s_case_softmax(2, sm2);
    s_case_attention(2, 77, 77, 4, 16, true);
    s_case_attention(2, 300, 77, 2, 40, false);
    s_case_attention(1, 257, 257, 8, 40, false);
    s_case_attention(2, 33, 33, 3, 8, true);
    /* The fused kernel's head sizes (padded to 32, 48, 64, 80, 128, 160), query blocks and key
     * tiles cut short, causal rows, and d = 192, which takes the GEMM path in every mode. */
    s_case_attention(1, 77, 77, 12, 64, true);
    s_case_attention(2, 100, 77, 8, 80, false);
    s_case_attention(1, 129, 129, 2, 80, false);
    s_case_attention(1, 65, 200, 2, 160, false);
    s_case_attention(1, 70, 70, 2, 100, true);
    s_case_attention(1, 64, 64, 1, 192, false);
    int64_t u1[2] = {3, 1001}, u2[4] = {2, 5, 3, 7};
    s_case_unary("gelu", dq_op_gelu, 2, u1, 6.0f, false);
    s_case_unary("gelu", dq_op_gelu, 4, u2, 6.0f, true);
    s_case_unary("gelu_quick", dq_op_gelu_quick, 2, u1, 6.0f, false);
    s_case_unary("silu", dq_op_silu, 2, u1, 6.0f, false);
    s_case_unary("silu", dq_op_silu, 4, u2, 6.0f, true);
    s_case_geglu(7, 40);
    s_case_geglu(5, 33);
    int64_t a4[4] = {2, 6, 5, 7}, c1[3] = {6, 1, 1}, c2[4] = {2, 6, 1, 1}, c3[1] = {7},
            a3[3] = {3, 5, 7}, c4[2] = {1, 7};
    for (int mul = 0; mul < 2; mul++) {
        s_case_binary(mul, 4, a4, 3, c1, false);
        s_case_binary(mul, 4, a4, 4, c2, false);
        s_case_binary(mul, 4, a4, 1, c3, true);
        s_case_binary(mul, 4, a4, 4, a4, false);
        s_case_binary(mul, 3, a3, 2, c4, false);
    }
    s_case_scale(1001);
    int64_t up[4] = {2, 3, 5, 7};
    s_case_upsample(up);
    for (int dim = 0; dim < 4; dim++) s_case_concat(dim);
    int p0[4] = {0, 2, 1, 3}, p1[4] = {0, 2, 3, 1}, p2[4] = {3, 1, 0, 2};
    s_case_cpy(DQ_DTYPE_F32, p0, false);
    s_case_cpy(DQ_DTYPE_F32, p1, true);
    s_case_cpy(DQ_DTYPE_F16, p2, false);
    s_case_cpy(DQ_DTYPE_BF16, p1, false);
    s_case_get_rows(DQ_DTYPE_F32, false);
    s_case_get_rows(DQ_DTYPE_F16, false);
    s_case_get_rows(DQ_DTYPE_BF16, false);
    s_case_get_rows(DQ_DTYPE_F32, true);
    s_suite_nhwc();
    if (!s_big) return;
    /* SD 1.5 sizes at 512x512, batch 2 (cond + uncond): real tiling and launch sizes. */
    int64_t xl[3] = {2, 4096, 320}, gb[4] = {2, 320, 64, 64}, ln[3] = {2, 4096, 320};
    s_case_linear(xl, 3, 1280, DQ_DTYPE_F16, true);
    s_case_conv(2, 320, 64, 64, 320, 3, 1, 1, DQ_DTYPE_F16, true);
    s_case_conv_res(2, 320, 64, 64, 320, 3, 1, 1, DQ_DTYPE_F16, true, S_RES_Y);
    s_case_conv(1, 128, 256, 256, 128, 3, 1, 1, DQ_DTYPE_F32, true);
    s_case_group_norm(4, gb, 32, true, false);
    s_case_group_norm(4, gb, 32, true, true);
    s_case_layer_norm(3, ln, true);
    s_case_attention(2, 4096, 4096, 8, 40, false);
    s_case_attention(2, 4096, 77, 8, 40, false);
    s_case_geglu(4096, 1280);
    int64_t gn[4] = {2, 64, 64, 320};
    s_case_conv_nhwc(2, 320, 64, 64, 320, 3, 1, 1, DQ_DTYPE_F16, true, S_RES_NONE);
    s_case_group_norm_nhwc(4, gn, 32, true, true);
}

/* Runs the suite on a fresh CUDA backend of the given mode and workspace. */
static void s_run(int device, dq_cuda_precision_t prec, size_t ws, dq_dtype_t act, double tol,
                  const char *label, bool big) {
    char err[256] = "";
    s_gpu = dq_backend_cuda_new(device, ws, prec, err, sizeof err);
    if (!s_gpu) {
        printf("# cuda backend (%s): %s\n", label, err);
        s_failures++;
        return;
    }
    s_mode = label;
    s_act_dt = act;
    s_tol = tol;
    s_big = big;
    s_suite();
    dq_backend_destroy(&s_gpu);
}

int main(void) {
    dq_log_init("ops_cuda_vs_cpu", DQ_LOG_WARN, false);
    char err[256] = "";
    int count = dq_cuda_device_count(err, sizeof err);
    if (count < 1) {
        printf("no CUDA device%s%s\n", err[0] ? ": " : "", err);
        return 77;
    }
    dq_cuda_device_info_t info;
    if (dq_cuda_device_info(0, &info, err, sizeof err) == 0)
        printf("# device 0: %s, sm_%d%d, %zu MiB\n", info.name, info.sm_major, info.sm_minor,
               info.total_memory >> 20);
    s_cpu = dq_backend_cpu_new(0, 0);
    if (!s_cpu) s_die("cpu backend");
#ifndef DQ_CUDA_EMUL
    printf("%-23s %-28s %-4s %11s %9s  %s\n", "op", "case", "mode", "rel_l2", "tol", "result");
#endif
    /* "f32" default workspace, "f32s" 256 KiB (every tiled path), "f16" speed mode, "f16s" speed
     * mode in 256 KiB (conv2d's f32 fallback when the f16 copies do not fit), "f16g" speed mode
     * with attention on the two-GEMM path (DQ_CUDA_ATTENTION=gemm). The "h" passes are the same
     * with F16 activations on the CUDA side: "h16", "h16s", "h16g", and "h32" (f32 mode: FMA
     * math, the GEMM attention); the "b" passes with BF16 ones: "b16", "b16g" and "b32". */
    /* DQ_GPU_SMALL=1 leaves out the SD-size cases (for compute-sanitizer runs). */
    const char *small = getenv("DQ_GPU_SMALL");
    bool big = !(small && strcmp(small, "1") == 0);
#ifdef DQ_CUDA_EMUL
    big = false; /* tests/emul: the emulated device sums every product in double on one core */
#endif
    const dq_dtype_t f32 = DQ_DTYPE_F32, f16 = DQ_DTYPE_F16, bf16 = DQ_DTYPE_BF16;
    const size_t small_ws = (size_t) 256 << 10;
    s_run(0, DQ_CUDA_PRECISION_F32, 0, f32, 1e-5, "f32", big);
    s_run(0, DQ_CUDA_PRECISION_F32, small_ws, f32, 1e-5, "f32s", false);
    s_run(0, DQ_CUDA_PRECISION_F16, 0, f32, 1e-2, "f16", big);
    s_run(0, DQ_CUDA_PRECISION_F16, small_ws, f32, 1e-2, "f16s", false);
    /* (No SD-size cases with F16 activations: their CPU side would add a third of the run,
     * and tests/gpu/check.sh gives the whole program a few minutes.) */
    s_run(0, DQ_CUDA_PRECISION_F16, 0, f16, 1e-2, "h16", false);
    s_run(0, DQ_CUDA_PRECISION_F16, small_ws, f16, 1e-2, "h16s", false);
    s_run(0, DQ_CUDA_PRECISION_F32, 0, f16, 1e-2, "h32", false);
    s_run(0, DQ_CUDA_PRECISION_F16, 0, bf16, 1e-2, "b16", false);
    s_run(0, DQ_CUDA_PRECISION_F32, 0, bf16, 1e-2, "b32", false);
    setenv("DQ_CUDA_ATTENTION", "gemm", 1);
    s_run(0, DQ_CUDA_PRECISION_F16, 0, f32, 1e-2, "f16g", false);
    s_run(0, DQ_CUDA_PRECISION_F16, 0, f16, 1e-2, "h16g", false);
    s_run(0, DQ_CUDA_PRECISION_F16, 0, bf16, 1e-2, "b16g", false);
    unsetenv("DQ_CUDA_ATTENTION");
    dq_backend_destroy(&s_cpu);
#ifdef DQ_CUDA_EMUL
    printf("1..%d\n", s_cases);
#endif
    printf("# ops_cuda_vs_cpu: %d of %d cases passed\n", s_cases - s_failures, s_cases);
    return s_failures ? 1 : 0;
}
