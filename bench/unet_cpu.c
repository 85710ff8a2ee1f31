/* bench/unet_cpu.c: seconds per UNet step (one CFG batch of 2) on the CPU backend, and the
 * fraction of this machine's sgemm rate that the UNet's FLOPs reach.
 *
 * Usage: bench/unet_cpu MODEL [latent_size] [reps] [threads] [OUT.f32]
 *   MODEL: a diffusers folder or single file (e.g. `diffq model init --config sd15 --random
 *   --seed 1 -o /tmp/sd15`); latent_size default 32 (256x256 images; 64 is 512x512); reps
 *   default 3 timed calls after one warm-up (the warm-up sizes the arena); threads default 2;
 *   OUT.f32: where to write the output (raw little-endian f32, [2, 4, s, s]) so that
 *   bench/pytorch_unet.py, which builds the same inputs (s_fill below), can compare.
 * Run with OMP_WAIT_POLICY=passive (see kernels/cpu/backend_cpu.h) in a build configured
 * WITHOUT --enable-sanitizers; bench/run_unet.sh does both next to diffusers. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "kernels/arena.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/unet.h"

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* CPU seconds of all the process's threads: what a step cost the machine, which other
 * processes on a shared machine change much less than the wall clock (idle OpenMP threads
 * sleep under OMP_WAIT_POLICY=passive, so waiting is not counted). */
static double s_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* GFLOP/s of a 1024^3 sgemm with the threads the backend set: best of 20, since other
 * processes on a shared machine make single samples vary twofold. */
static double s_sgemm_rate(void) {
    const int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) exit(1);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = (float) (i % 7) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 1e30;
    for (int r = 0; r < 20; r++) {
        double t0 = s_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double dt = s_now() - t0;
        if (dt < best) best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * n / best * 1e-9;
}

/* Deterministic values in [-1, 1); bench/pytorch_unet.py computes the same (keep in sync). */
static void s_fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (float) (((i + seed) * 2654435761u) % 2000) / 1000.0f - 1;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [latent_size] [reps] [threads] [OUT.f32]\n", argv[0]);
        return 2;
    }
    int s = argc > 2 ? atoi(argv[2]) : 32, reps = argc > 3 ? atoi(argv[3]) : 3;
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    if (s < 1 || s > 256 || reps < 1 || reps > 100 || threads < 1) {
        fprintf(stderr, "%s: latent_size 1..256, reps 1..100, threads >= 1\n", argv[0]);
        return 2;
    }
    dq_log_init("bench", DQ_LOG_WARN, false);
    char err[512] = "";
    double t0 = s_now();
    dq_model_t *model = dq_model_load(argv[1], err, sizeof err);
    if (!model) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    dq_backend_t *be = dq_backend_cpu_new(0, threads);
    dq_unet_t *u = be ? dq_unet_new(be, model, err, sizeof err) : NULL;
    if (!u) {
        fprintf(stderr, "unet: %s\n", err);
        return 1;
    }
    const dq_unet_config_t *cfg = dq_unet_config(u);
    const int n = 2, l = 77, d = cfg->cross_attention_dim;
    dq_model_destroy(&model);
    double t_load = s_now() - t0;
    double peak = s_sgemm_rate();

    size_t ns = (size_t) n * 4 * s * s, nc = (size_t) n * l * d;
    dq_arena_t *io = dq_arena_new(be, (2 * ns + nc) * sizeof(float) + 1024, 4);
    dq_tensor_t *x = io ? dq_arena_tensor(io, DQ_DTYPE_F32, 4, (int64_t[]){n, 4, s, s}, "x")
                        : NULL;
    dq_tensor_t *c = io ? dq_arena_tensor(io, DQ_DTYPE_F32, 3, (int64_t[]){n, l, d}, "c") : NULL;
    dq_tensor_t *y = io ? dq_arena_tensor(io, DQ_DTYPE_F32, 4, (int64_t[]){n, 4, s, s}, "y")
                        : NULL;
    if (!y) return 1;
    s_fill(x->data, ns, 1);
    s_fill(c->data, nc, 2);
    const float t[2] = {500, 500};

    t0 = s_now();
    if (dq_unet_forward(u, x, t, 2, c, y, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t_first = s_now() - t0;
    if (argc > 5) {
        FILE *f = fopen(argv[5], "wb");
        if (!f || fwrite(y->data, sizeof(float), ns, f) != ns || fclose(f)) {
            fprintf(stderr, "%s: cannot write the output\n", argv[5]);
            return 1;
        }
    }
    double *times = calloc((size_t) reps, sizeof *times);
    for (int r = 0; r < reps; r++) {
        t0 = s_now();
        double c0 = s_cpu();
        if (dq_unet_forward(u, x, t, 2, c, y, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        times[r] = s_now() - t0;
        printf("step %d: %.3f s (cpu %.3f s)\n", r + 1, times[r], s_cpu() - c0);
        fflush(stdout);
    }
    qsort(times, (size_t) reps, sizeof *times, s_cmp);
    double flops = dq_unet_flops(cfg, n, s, s, l);
    double best = times[0], med = times[reps / 2];
    printf("engine latent %dx%d batch %d threads %d: load %.1f s, first call %.3f s, "
           "best %.3f s, median %.3f s per step\n", s, s, n, threads, t_load, t_first, best, med);
    printf("engine flops %.1f GFLOP/step, %.1f GFLOP/s (median), sgemm 1024^3 %.1f GFLOP/s, "
           "fraction %.2f (median) %.2f (best)\n", flops * 1e-9, flops / med * 1e-9, peak,
           flops / med * 1e-9 / peak, flops / best * 1e-9 / peak);
    printf("engine memory: weights %.0f MiB, arena %.0f MiB\n",
           (double) dq_unet_weight_bytes(u) / 1048576.0,
           (double) dq_unet_arena_bytes(u) / 1048576.0);
    free(times);
    dq_arena_destroy(&io);
    dq_unet_destroy(&u);
    dq_backend_destroy(&be);
    return 0;
}
