/* bench/encoders_cpu.c: the CLIP text encoder and the VAE decoder on the CPU backend, timed.
 *
 * Usage: bench/encoders_cpu MODEL [--threads N] [--latent S] [--reps R] [--dump DIR]
 *   MODEL     a diffusers folder or single file (e.g. `diffq model init --config sd15 --random
 *             --seed 1 -o /tmp/sd15`)
 *   --threads OpenMP/OpenBLAS threads (default 2)
 *   --latent  VAE latent side: 64 decodes 512x512 (default 64)
 *   --reps    timed runs of each network after one warm-up run of the text encoder (default 3;
 *             the VAE's first run is timed too, being long enough not to need a warm-up)
 *   --dump    writes the inputs and outputs as raw little-endian files (ids.i32, text.f32,
 *             latents.f32, image.f32) for bench/pytorch_encoders.py --compare
 * Prints "RESULT engine <case> <best ms> <median ms>" lines plus arena peaks; run it with
 * OMP_WAIT_POLICY=passive (bench/run_encoders.sh does) from a build configured WITHOUT
 * --enable-sanitizers. Inputs are fixed: a CFG batch of the token ids of "" and "a photo of an
 * astronaut riding a horse" (SD 1.5 vocabulary), and latents from a fixed integer hash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "kernels/clip_text.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/model_files.h"
#include "kernels/vae_decoder.h"

#define MAX_REPS 20

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int s_cmp(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static void s_report(const char *what, double *ms, int n, size_t peak) {
    qsort(ms, (size_t) n, sizeof *ms, s_cmp);
    printf("RESULT engine %s %.1f %.1f arena_peak_mib=%.1f\n", what, ms[0], ms[n / 2],
           (double) peak / (1 << 20));
    fflush(stdout);
}

static int s_dump(const char *dir, const char *name, const void *data, size_t bytes) {
    if (!dir) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, bytes, f) == bytes;
    if (f && fclose(f)) ok = 0;
    if (!ok) fprintf(stderr, "encoders_cpu: cannot write %s\n", path);
    return ok ? 0 : -1;
}

/* The text encoder on a CFG batch of 2. */
static int s_bench_text(dq_backend_t *be, dq_clip_text_t *enc, int reps, const char *dump) {
    const int L = dq_clip_text_seq_len(enc), D = dq_clip_text_hidden(enc);
    static const int32_t prompt[] = {49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407};
    int32_t *ids = malloc(sizeof(int32_t) * 2 * (size_t) L);
    float *out = malloc(sizeof(float) * 2 * (size_t) L * (size_t) D);
    dq_arena_t *arena =
        dq_arena_new(be, dq_clip_text_arena_bytes(enc, 2), dq_clip_text_arena_tensors(enc));
    int rc = -1;
    if (!ids || !out || !arena || L < 10) goto out;
    for (int i = 0; i < 2 * L; i++)
        ids[i] = 49407; /* padding is eos for SD 1.x */
    ids[0] = 49406;
    memcpy(ids + L, prompt, sizeof prompt);
    if (dq_clip_text_encode_host(enc, arena, ids, 2, 0, out) < 0) goto out; /* warm-up */
    double ms[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        double t0 = s_now();
        if (dq_clip_text_encode_host(enc, arena, ids, 2, 0, out) < 0) goto out;
        ms[r] = (s_now() - t0) * 1e3;
    }
    s_report("text_encoder_b2", ms, reps, dq_arena_peak(arena));
    if (s_dump(dump, "ids.i32", ids, sizeof(int32_t) * 2 * (size_t) L) ||
        s_dump(dump, "text.f32", out, sizeof(float) * 2 * (size_t) L * (size_t) D))
        goto out;
    rc = 0;
out:
    dq_arena_destroy(&arena);
    free(ids);
    free(out);
    return rc;
}

/* The VAE decoder on one latent of side s. */
static int s_bench_vae(dq_backend_t *be, dq_vae_decoder_t *dec, int s, int reps, const char *dump) {
    const int f = dq_vae_decoder_factor(dec), c = dq_vae_decoder_latent_channels(dec);
    const int oc = dq_vae_decoder_out_channels(dec);
    const int64_t ls[4] = {1, c, s, s}, is[4] = {1, oc, (int64_t) s * f, (int64_t) s * f};
    size_t nl = (size_t) c * s * s, ni = (size_t) oc * s * f * s * f;
    dq_arena_t *io = dq_arena_new(be, (nl + ni) * sizeof(float) + 256, 2);
    dq_arena_t *arena = dq_arena_new(be, dq_vae_decoder_arena_bytes(dec, 1, s, s),
                                     dq_vae_decoder_arena_tensors(dec));
    float *lat = malloc(nl * sizeof(float)), *img = malloc(ni * sizeof(float));
    int rc = -1;
    dq_tensor_t *lt, *it;
    if (!io || !arena || !lat || !img || !(lt = dq_arena_tensor(io, DQ_DTYPE_F32, 4, ls, "lat")) ||
        !(it = dq_arena_tensor(io, DQ_DTYPE_F32, 4, is, "img")))
        goto out;
    /* latents of about unit spread, from an integer hash (reproducible anywhere) */
    for (size_t i = 0; i < nl; i++)
        lat[i] = (float) ((uint32_t) (i * 2654435761u) >> 8) / (float) (1 << 24) * 3.0f - 1.5f;
    if (dq_tensor_upload(be, lt, 0, lat, nl * sizeof(float))) goto out;
    double ms[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        double t0 = s_now();
        if (dq_vae_decoder_decode(dec, arena, lt, it) || dq_backend_synchronize(be)) goto out;
        ms[r] = (s_now() - t0) * 1e3;
    }
    char what[64];
    snprintf(what, sizeof what, "vae_decoder_%dx%d", s * f, s * f);
    s_report(what, ms, reps, dq_arena_peak(arena));
    if (dq_tensor_download(be, it, 0, img, ni * sizeof(float))) goto out;
    if (s_dump(dump, "latents.f32", lat, nl * sizeof(float)) ||
        s_dump(dump, "image.f32", img, ni * sizeof(float)))
        goto out;
    rc = 0;
out:
    free(lat);
    free(img);
    dq_arena_destroy(&arena);
    dq_arena_destroy(&io);
    return rc;
}

int main(int argc, char **argv) {
    const char *path = NULL, *dump = NULL;
    int threads = 2, latent = 64, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latent") && i + 1 < argc)
            latent = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
            dump = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            path = NULL, i = argc;
    }
    if (!path || threads < 1 || latent < 1 || latent > 256 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr,
                "usage: %s MODEL [--threads N] [--latent 1..256] [--reps 1..%d] "
                "[--dump DIR]\n",
                argv[0], MAX_REPS);
        return 2;
    }
    dq_log_init("bench", DQ_LOG_WARN, false);
    char err[512] = "";
    dq_model_t *model = dq_model_load(path, err, sizeof err);
    if (!model) {
        fprintf(stderr, "encoders_cpu: %s\n", err);
        return 1;
    }
    /* both networks built, then the model unmapped: what a node holds while it renders */
    dq_backend_t *be = dq_backend_cpu_new(0, threads);
    dq_clip_text_t *enc = be ? dq_clip_text_new(be, model, DQ_DTYPE_F32, err, sizeof err) : NULL;
    dq_vae_decoder_t *dec =
        enc ? dq_vae_decoder_new(be, model, DQ_DTYPE_F32, DQ_DTYPE_F32, err, sizeof err) : NULL;
    dq_model_destroy(&model);
    if (!dec) fprintf(stderr, "encoders_cpu: %s\n", err[0] ? err : "no CPU backend");
    int rc = !dec || s_bench_text(be, enc, reps, dump) || s_bench_vae(be, dec, latent, reps, dump);
    dq_vae_decoder_destroy(&dec);
    dq_clip_text_destroy(&enc);
    dq_backend_destroy(&be);
    return rc ? 1 : 0;
}
