/* bench/ops_cpu.c: CPU op throughput against the raw OpenBLAS sgemm rate of this machine.
 *
 * Usage: bench/ops_cpu [latent_size [filter]]   (size default 32; SD 1.x at 512x512 is 64;
 * filter: run only the cases whose name contains it, e.g. "attention")
 * Prints one line per case: milliseconds (best of 5 calls), CPU milliseconds of all threads
 * (best of 5: the steadier figure on a shared machine), GFLOP/s, and the fraction of the sgemm
 * rate measured first on a 1024^3 product, so "conv2d runs at 0.8 of sgemm" can be reported per
 * machine.
 * Build it with `make bench/ops_cpu` in a build configured WITHOUT --enable-sanitizers. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "kernels/arena.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (all threads): on a shared machine the time the op's threads
 * actually ran, which other processes change far less than the wall clock (idle OpenMP
 * threads sleep under OMP_WAIT_POLICY=passive, so waiting is not counted). */
static double s_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static void s_fill(dq_tensor_t *t) {
    float *d = t->data;
    int64_t n = dq_tensor_nelements(t);
    for (int64_t i = 0; i < n; i++) d[i] = (float) ((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
}

static dq_tensor_t *s_rand(dq_arena_t *a, int ndim, const int64_t *shape, const char *name) {
    dq_tensor_t *t = dq_arena_tensor(a, DQ_DTYPE_F32, ndim, shape, name);
    if (!t) exit(1);
    s_fill(t);
    return t;
}

/* w's values rounded to F16, as --precision f16 stores matrices (the CPU converts them back in
 * blocks inside each op). */
static dq_tensor_t *s_f16_copy(dq_arena_t *a, const dq_tensor_t *w, const char *name) {
    dq_tensor_t *t = dq_arena_tensor(a, DQ_DTYPE_F16, w->ndim, w->shape, name);
    if (!t) exit(1);
    const float *src = w->data;
    uint16_t *dst = t->data;
    for (int64_t i = 0; i < dq_tensor_nelements(w); i++) dst[i] = dq_f32_to_f16(src[i]);
    return t;
}

static double s_sgemm_rate(void) {
    const int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) exit(1);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = (float) (i % 7) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double dt = 1e30;
    for (int r = 0; r < 10; r++) {
        double t0 = s_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        if (s_now() - t0 < dt) dt = s_now() - t0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * n / dt * 1e-9;
}

static void s_report(const char *what, double ms, double cpu_ms, double gflop, double peak) {
    if (gflop > 0)
        printf("%-44s %9.2f ms %9.2f cpu-ms %8.1f GFLOP/s %5.2f of sgemm\n", what, ms, cpu_ms,
               gflop / (ms * 1e-3), gflop / (ms * 1e-3) / peak);
    else
        printf("%-44s %9.2f ms %9.2f cpu-ms\n", what, ms, cpu_ms);
}

/* Best of 5 calls after a warm-up, in wall and in CPU time (each its own best): on a shared
 * machine the best is the figure that other processes disturbed least. */
#define TIME(what, gflop, call)                                                                    \
    do {                                                                                           \
        if (filter && !strstr(what, filter)) break;                                                \
        if ((call) != 0) exit(1);                                                                  \
        double best_ = 1e30, cbest_ = 1e30;                                                        \
        for (int r_ = 0; r_ < 5; r_++) {                                                           \
            double t0_ = s_now(), c0_ = s_cpu();                                                   \
            if ((call) != 0) exit(1);                                                              \
            double dt_ = s_now() - t0_, dc_ = s_cpu() - c0_;                                       \
            if (dt_ < best_) best_ = dt_;                                                          \
            if (dc_ < cbest_) cbest_ = dc_;                                                        \
        }                                                                                          \
        s_report(what, best_ * 1e3, cbest_ * 1e3, gflop, peak);                                    \
    } while (0)

int main(int argc, char **argv) {
    int64_t s = argc > 1 ? atoll(argv[1]) : 32;
    const char *filter = argc > 2 ? argv[2] : NULL;
    if (s < 8 || s > 128) {
        fprintf(stderr, "usage: %s [latent_size 8..128 [filter]]\n", argv[0]);
        return 2;
    }
    dq_log_init("bench", DQ_LOG_WARN, false);
    double peak = s_sgemm_rate();
    printf("sgemm 1024^3: %.1f GFLOP/s\n", peak);
    dq_backend_t *be = dq_backend_cpu_new(0, 0);
    dq_arena_t *a = be ? dq_arena_new(be, (size_t) 1 << 30, 64) : NULL;
    if (!a) return 1;
    int64_t l = s * s;
    char what[64];

    /* UNet level-1 resnet conv: 320 -> 320, 3x3, batch 2 (classifier-free guidance). */
    dq_tensor_t *x = s_rand(a, 4, SHAPE(2, 320, s, s), "x");
    dq_tensor_t *w = s_rand(a, 4, SHAPE(320, 320, 3, 3), "w");
    dq_tensor_t *b = s_rand(a, 1, SHAPE(320), "b");
    dq_tensor_t *y = dq_arena_like(a, x, "y");
    snprintf(what, sizeof what, "conv2d 3x3 320->320 [2,320,%lld,%lld]", (long long) s,
             (long long) s);
    TIME(what, 2.0 * 2 * 320 * 320 * 9 * l * 1e-9, dq_op_conv2d(be, x, w, b, 1, 1, y));
    dq_tensor_t *w16 = s_f16_copy(a, w, "w16");
    snprintf(what, sizeof what, "conv2d 3x3 320->320 F16 weights");
    TIME(what, 2.0 * 2 * 320 * 320 * 9 * l * 1e-9, dq_op_conv2d(be, x, w16, b, 1, 1, y));
    /* The same convolution channels last (what the networks run with DQ_LAYOUT=nhwc). */
    dq_tensor_t xn, yn, wn, wn16;
    if (dq_tensor_init(&xn, DQ_DTYPE_F32, 4, SHAPE(2, s, s, 320), x->data, x->buffer, "xn") ||
        dq_tensor_init(&yn, DQ_DTYPE_F32, 4, SHAPE(2, s, s, 320), y->data, y->buffer, "yn") ||
        dq_tensor_init(&wn, DQ_DTYPE_F32, 4, SHAPE(320, 3, 3, 320), w->data, w->buffer, "wn") ||
        dq_tensor_init(&wn16, DQ_DTYPE_F16, 4, SHAPE(320, 3, 3, 320), w16->data, w16->buffer,
                       "wn16"))
        return 1;
    TIME("conv2d_nhwc 3x3 320->320", 2.0 * 2 * 320 * 320 * 9 * l * 1e-9,
         dq_op_conv2d_nhwc(be, &xn, &wn, b, 1, 1, NULL, &yn));
    TIME("conv2d_nhwc 3x3 320->320 F16 weights", 2.0 * 2 * 320 * 320 * 9 * l * 1e-9,
         dq_op_conv2d_nhwc(be, &xn, &wn16, b, 1, 1, NULL, &yn));
    dq_tensor_t *w1 = s_rand(a, 4, SHAPE(320, 320, 1, 1), "w1");
    TIME("conv2d 1x1 320->320", 2.0 * 2 * 320 * 320 * l * 1e-9,
         dq_op_conv2d(be, x, w1, b, 1, 0, y));
    /* The deeper levels (fewer pixels, more channels: 64 pixels per image at s/8), and the up
     * blocks' first convolutions, whose input is the skip concatenated to the block's. */
    static const int64_t levels[][3] = {{1, 640, 640},   {2, 1280, 1280}, {3, 2560, 1280},
                                        {0, 960, 320},   {1, 1920, 640}};
    for (int i = 0; i < 5; i++) {
        int64_t lv = levels[i][0], ci = levels[i][1], c = levels[i][2], sl = s >> lv;
        dq_tensor_t *xl = s_rand(a, 4, SHAPE(2, ci, sl, sl), "xl");
        dq_tensor_t *wl3 = s_rand(a, 4, SHAPE(c, ci, 3, 3), "wl3");
        dq_tensor_t *bl3 = s_rand(a, 1, SHAPE(c), "bl3");
        dq_tensor_t *yl = dq_arena_tensor(a, DQ_DTYPE_F32, 4, SHAPE(2, c, sl, sl), "yl");
        if (!yl) return 1;
        snprintf(what, sizeof what, "conv2d 3x3 %lld->%lld [2,%lld,%lld,%lld]", (long long) ci,
                 (long long) c, (long long) ci, (long long) sl, (long long) sl);
        TIME(what, 2.0 * 2 * ci * c * 9 * sl * sl * 1e-9, dq_op_conv2d(be, xl, wl3, bl3, 1, 1, yl));
    }
    TIME("group_norm 32 groups", 0, dq_op_group_norm(be, x, b, b, 32, 1e-5f, y));
    TIME("silu", 0, dq_op_silu(be, x, y));
    /* The resnets' norm + SiLU: one fused pass against the two ops it replaced. */
    TIME("group_norm + silu (two ops)", 0,
         dq_op_group_norm(be, x, b, b, 32, 1e-5f, y) || dq_op_silu(be, y, y));
    TIME("group_norm_silu 32 groups", 0, dq_op_group_norm_silu(be, x, b, b, 32, 1e-5f, y));

    /* Transformer block at level 1: tokens [2, L, 320], 8 heads of 40. */
    dq_tensor_t *t = s_rand(a, 3, SHAPE(2, l, 320), "t");
    dq_tensor_t *wl = s_rand(a, 2, SHAPE(2560, 320), "wl");
    dq_tensor_t *bl = s_rand(a, 1, SHAPE(2560), "bl");
    dq_tensor_t *h = dq_arena_tensor(a, DQ_DTYPE_F32, 3, SHAPE(2, l, 2560), "h");
    TIME("linear 320->2560 (GEGLU proj)", 2.0 * 2 * l * 320 * 2560 * 1e-9,
         dq_op_linear(be, t, wl, bl, h));
    dq_tensor_t *g = dq_arena_tensor(a, DQ_DTYPE_F32, 3, SHAPE(2, l, 1280), "g");
    TIME("geglu", 0, dq_op_geglu(be, h, g));
    dq_tensor_t *o = dq_arena_like(a, t, "o");
    snprintf(what, sizeof what, "attention self L=%lld 8x40", (long long) l);
    TIME(what, 2.0 * 2 * 2 * 8 * (double) l * l * 40 * 1e-9,
         dq_op_attention(be, t, t, t, 8, false, o));
    dq_tensor_t *kv = s_rand(a, 3, SHAPE(2, 77, 320), "kv");
    TIME("attention cross Lk=77 8x40", 2.0 * 2 * 2 * 8 * (double) l * 77 * 40 * 1e-9,
         dq_op_attention(be, t, kv, kv, 8, false, o));
    TIME("layer_norm 320", 0, dq_op_layer_norm(be, t, b, b, 1e-5f, o));

    dq_arena_destroy(&a);
    dq_backend_destroy(&be);
    return 0;
}
