/* bench/ops_cpu.c: CPU op throughput against the raw OpenBLAS sgemm rate of this machine.
 *
 * Usage: bench/ops_cpu [latent_size]   (default 32; SD 1.x at 512x512 is 64)
 * Prints one line per case: milliseconds, GFLOP/s, and the fraction of the sgemm rate measured
 * first on a 1024^3 product, so "conv2d runs at 0.8 of sgemm" can be reported per machine.
 * Build it with `make bench/ops_cpu` in a build configured WITHOUT --enable-sanitizers. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "kernels/arena.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/ops.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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

static double s_sgemm_rate(void) {
    const int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) exit(1);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = (float) (i % 7) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    int reps = 5;
    double t0 = s_now();
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double dt = (s_now() - t0) / reps;
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * n / dt * 1e-9;
}

static void s_report(const char *what, double ms, double gflop, double peak) {
    if (gflop > 0)
        printf("%-44s %9.2f ms %8.1f GFLOP/s %5.2f of sgemm\n", what, ms, gflop / (ms * 1e-3),
               gflop / (ms * 1e-3) / peak);
    else
        printf("%-44s %9.2f ms\n", what, ms);
}

#define TIME(what, gflop, call)                                                                    \
    do {                                                                                           \
        if ((call) != 0) exit(1);                                                                  \
        double t0_ = s_now();                                                                      \
        int reps_ = 3;                                                                             \
        for (int r_ = 0; r_ < reps_; r_++)                                                         \
            if ((call) != 0) exit(1);                                                              \
        s_report(what, (s_now() - t0_) / reps_ * 1e3, gflop, peak);                                \
    } while (0)

int main(int argc, char **argv) {
    int64_t s = argc > 1 ? atoll(argv[1]) : 32;
    if (s < 8 || s > 128) {
        fprintf(stderr, "usage: %s [latent_size 8..128]\n", argv[0]);
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
    dq_tensor_t *w1 = s_rand(a, 4, SHAPE(320, 320, 1, 1), "w1");
    TIME("conv2d 1x1 320->320", 2.0 * 2 * 320 * 320 * l * 1e-9,
         dq_op_conv2d(be, x, w1, b, 1, 0, y));
    TIME("group_norm 32 groups", 0, dq_op_group_norm(be, x, b, b, 32, 1e-5f, y));
    TIME("silu", 0, dq_op_silu(be, x, y));

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
