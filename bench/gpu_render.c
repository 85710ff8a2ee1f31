/* bench/gpu_render.c: whole renders per second and peak device memory of the pipeline, one JSON
 * line per batch size, to set beside bench/diffusers_gpu.py (same model folder, prompt, steps,
 * guidance and batches; tests/gpu/check.sh runs both on a GPU and writes gpu-latest.json).
 *
 * Usage: bench/gpu_render --model DIR [--device cuda:0] [--precision f16] [--size 512]
 *            [--steps 50] [--guidance 7.5] [--batches "1 4 8"] [--reps 3] [--budget SECONDS]
 *   For each B in --batches: one request with num_images_per_prompt = B (CFG doubles the UNet
 *   batch), the model's own scheduler (PNDM for SD 1.5), one warm-up render, then --reps timed
 *   renders, fewer when --budget seconds of timed renders have passed (at least one).
 *   images_per_s = B / the median timed render. Memory is sampled at every step and image
 *   callback (bench/gpu_mem.h: device total - free on CUDA, resident set on the CPU) minus a
 *   baseline read before the pipeline is made; peak_mib is the largest sample of that batch's
 *   renders. cuda_graphs says whether the UNet's steps ran as CUDA graphs ("on", or "off: why";
 *   DQ_CUDA_GRAPHS=0 turns them off), graph_launches counts them since the model was loaded;
 *   layout is "nhwc" or "nchw" (DQ_LAYOUT), attention "gemm" when DQ_CUDA_ATTENTION=gemm, and
 *   conv_search "off" when DQ_CUDA_CONV_SEARCH=0. A build configured without --enable-sanitizers gives meaningful times.
 * Exit 0, 1 (a render or the model failed: message on stderr), 2 (usage). */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/gpu_mem.h"
#include "common/config.h"
#include "kernels/pipeline.h"

#define S_MAX_BATCHES 16
#define S_MAX_REPS 64

static const dq_option_t s_options[] = {
    {"model", 'm', NULL, DQ_OPT_STRING, NULL, "DIR", "diffusers model folder (required)"},
    {"device", 'd', NULL, DQ_OPT_STRING, "cpu", "DEV", "cpu, cuda or cuda:N"},
    {"precision", 0, NULL, DQ_OPT_STRING, NULL, "P", "f32, f16 or bf16 (default: the device's)"},
    {"size", 0, NULL, DQ_OPT_INT, "512", "PX", "width and height (a multiple of 8)"},
    {"steps", 0, NULL, DQ_OPT_INT, "50", "N", "inference steps"},
    {"guidance", 0, NULL, DQ_OPT_DOUBLE, "7.5", "G", "guidance scale"},
    {"batches", 0, NULL, DQ_OPT_STRING, "1 4 8", "LIST", "images per prompt, one run each"},
    {"reps", 0, NULL, DQ_OPT_INT, "3", "N", "timed renders per batch after one warm-up"},
    {"budget", 0, NULL, DQ_OPT_DOUBLE, "0", "S",
     "stop a batch's timed renders once they took this long (0: no limit)"},
    {"prompt", 0, NULL, DQ_OPT_STRING, "a photo of an astronaut riding a horse on mars", "TEXT",
     "the prompt"},
    {"seed", 0, NULL, DQ_OPT_INT, "1", "N", "seed"},
    {"threads", 't', NULL, DQ_OPT_INT, "0", "N", "CPU threads (0: all)"},
};

static double s_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* Memory sampling state shared with the callbacks. */
typedef struct {
    int cuda_index; /* -1: the CPU */
    size_t peak;    /* largest sample since the last reset, bytes */
    int failed;     /* a sample could not be read: message in err */
    char err[256];
} s_sampler_t;

static void s_sample(s_sampler_t *s) {
    size_t used = 0;
    if (dq_bench_mem_used(s->cuda_index, &used, s->err, sizeof s->err) < 0) {
        s->failed = 1;
        return;
    }
    if (used > s->peak) s->peak = used;
}

static int s_on_step(void *ctx, int call, int total) {
    (void) call;
    (void) total;
    s_sample(ctx);
    return 0;
}

static int s_on_image(void *ctx, int request, int image, const uint8_t *rgb, int w, int h) {
    (void) request;
    (void) image;
    (void) rgb;
    (void) w;
    (void) h;
    s_sample(ctx);
    return 0;
}

/* "cpu" -> -1, "cuda" -> 0, "cuda:N" -> N; -2 for anything else (the pipeline names it). */
static int s_cuda_index(const char *device) {
    if (!strcmp(device, "cpu")) return -1;
    if (!strcmp(device, "cuda")) return 0;
    int n = -1;
    char tail;
    if (sscanf(device, "cuda:%d%c", &n, &tail) == 1 && n >= 0) return n;
    return -2;
}

/* "1 4 8" or "1,4,8" into b[]; returns the count, or -1 on a bad entry. */
static int s_parse_batches(const char *text, int *b, int cap) {
    int n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 64 || n == cap) return -1;
        b[n++] = (int) v;
        p = end;
        if (*p && *p != ' ' && *p != ',') return -1;
    }
    return n > 0 ? n : -1;
}

static int s_cmp_double(const void *a, const void *b) {
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* Renders one batch size: warm-up, timed renders; prints its JSON line. 0, or -1 (message). */
static int s_run_batch(dq_pipeline_t *pipe, const dq_config_t *cfg, int batch, size_t baseline,
                       double load_s, s_sampler_t *sampler) {
    dq_request_t req;
    memset(&req, 0, sizeof req);
    req.prompt = (char *) dq_config_str(cfg, "prompt");
    req.negative_prompt = "";
    req.seed = (uint64_t) dq_config_int(cfg, "seed");
    req.num_inference_steps = (int) dq_config_int(cfg, "steps");
    req.guidance_scale = dq_config_double(cfg, "guidance");
    req.width = req.height = (int) dq_config_int(cfg, "size");
    req.num_images_per_prompt = batch;
    req.scheduler = DQ_SCHED_MODEL;
    dq_pipeline_sink_t sink = {sampler, s_on_step, s_on_image, NULL};
    char err[1024] = "";
    int reps = (int) dq_config_int(cfg, "reps");
    double budget = dq_config_double(cfg, "budget"), secs[S_MAX_REPS], timed = 0;
    sampler->peak = baseline;
    double t0 = s_now();
    if (dq_pipeline_render(pipe, &req, 1, &sink, err, sizeof err) != 0) {
        fprintf(stderr, "gpu_render: batch %d (warm-up): %s\n", batch, err);
        return -1;
    }
    double warmup = s_now() - t0;
    int done = 0;
    while (done < reps && (done == 0 || budget <= 0 || timed < budget)) {
        t0 = s_now();
        if (dq_pipeline_render(pipe, &req, 1, &sink, err, sizeof err) != 0) {
            fprintf(stderr, "gpu_render: batch %d (render %d): %s\n", batch, done + 1, err);
            return -1;
        }
        secs[done] = s_now() - t0;
        timed += secs[done++];
    }
    if (sampler->failed) {
        fprintf(stderr, "gpu_render: memory: %s\n", sampler->err);
        return -1;
    }
    json_t *times = json_array();
    for (int i = 0; i < done; i++) json_array_append_new(times, json_real(secs[i]));
    qsort(secs, (size_t) done, sizeof *secs, s_cmp_double);
    double median = done % 2 ? secs[done / 2] : (secs[done / 2 - 1] + secs[done / 2]) / 2;
    /* Whether the UNet's steps were CUDA graphs (docs/cuda.md): "on", or "off: <why>". */
    dq_step_graph_stats_t gs;
    dq_pipeline_graph_stats(pipe, &gs);
    char graphs[200];
    snprintf(graphs, sizeof graphs, "%s%s", gs.enabled ? "on" : "off: ", gs.why_off);
    /* What else decides the speed: the layout and the bisecting switches check.sh may set. */
    const char *attn = getenv("DQ_CUDA_ATTENTION"), *search = getenv("DQ_CUDA_CONV_SEARCH");
    json_t *line = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:i, s:f, s:i, s:i, s:f, s:o, s:f, s:f, s:f, s:f, s:f, s:s, "
        "s:I, s:s, s:s, s:s}", "tool",
        "diffq", "device", dq_pipeline_device(pipe), "precision", dq_pipeline_precision(pipe),
        "model", dq_pipeline_model_name(pipe), "size", req.width, "steps", req.num_inference_steps,
        "guidance", req.guidance_scale, "batch", batch, "reps", done, "warmup_s", warmup,
        "seconds", times, "median_s", median, "images_per_s", batch / median, "peak_mib",
        (double) (sampler->peak - baseline) / (1 << 20), "baseline_mib",
        (double) baseline / (1 << 20), "load_s", load_s, "cuda_graphs", graphs, "graph_launches",
        (json_int_t) gs.launches, "layout", dq_pipeline_layout(pipe), "attention",
        attn && strcmp(attn, "gemm") == 0 ? "gemm" : "default", "conv_search",
        search && strcmp(search, "0") == 0 ? "off" : "on");
    char *text = line ? json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(line);
    if (!text) {
        fprintf(stderr, "gpu_render: out of memory\n");
        return -1;
    }
    printf("%s\n", text);
    fflush(stdout); /* a later batch may run past a timeout: keep this one */
    free(text);
    return 0;
}

int main(int argc, char **argv) {
    char err[1024] = "";
    dq_config_t *cfg = dq_config_new(
        "gpu_render", "--model DIR [OPTIONS]",
        "Images per second and peak memory of whole renders, one JSON line per batch size.",
        s_options, sizeof s_options / sizeof *s_options);
    if (!cfg) return 1;
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "gpu_render: %s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? 0 : 2;
    }
    int batches[S_MAX_BATCHES];
    int nb = s_parse_batches(dq_config_str(cfg, "batches"), batches, S_MAX_BATCHES);
    const char *device = dq_config_str(cfg, "device");
    int cuda_index = s_cuda_index(device);
    long size = dq_config_int(cfg, "size"), steps = dq_config_int(cfg, "steps"),
         reps = dq_config_int(cfg, "reps");
    const char *bad = !dq_config_str(cfg, "model")           ? "--model DIR is required"
                      : nb < 0                               ? "--batches: expected numbers 1..64"
                      : cuda_index == -2                     ? "--device: expected cpu, cuda or cuda:N"
                      : size < 8 || size > 4096 || size % 8 ? "--size: a multiple of 8, 8..4096"
                      : steps < 1 || steps > 1000            ? "--steps: 1..1000"
                      : reps < 1 || reps > S_MAX_REPS        ? "--reps: 1..64"
                                                             : NULL;
    if (bad) {
        fprintf(stderr, "gpu_render: %s\n", bad);
        dq_config_destroy(&cfg);
        return 2;
    }
    s_sampler_t sampler = {.cuda_index = cuda_index};
    size_t baseline = 0;
    if (dq_bench_mem_used(cuda_index, &baseline, err, sizeof err) < 0) {
        fprintf(stderr, "gpu_render: memory baseline: %s\n", err);
        dq_config_destroy(&cfg);
        return 1;
    }
    dq_pipeline_params_t params;
    dq_pipeline_params_init(&params);
    params.model_path = dq_config_str(cfg, "model");
    params.device = device;
    params.precision = dq_config_str(cfg, "precision");
    params.threads = (int) dq_config_int(cfg, "threads");
    double t0 = s_now();
    dq_pipeline_t *pipe = dq_pipeline_new(&params, err, sizeof err);
    double load_s = s_now() - t0;
    int exit_code = 0;
    if (!pipe) {
        fprintf(stderr, "gpu_render: %s\n", err);
        exit_code = 1;
    }
    for (int i = 0; pipe && i < nb && exit_code == 0; i++)
        if (s_run_batch(pipe, cfg, batches[i], baseline, load_s, &sampler) < 0) exit_code = 1;
    dq_pipeline_destroy(&pipe);
    dq_config_destroy(&cfg);
    return exit_code;
}
