/* cli/cmd_render.c: "diffq render": one request rendered locally through the engine, no broker. */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/config.h"
#include "common/job.h"
#include "common/log.h"
#include "common/png_out.h"
#include "kernels/pipeline.h"
#include "kernels/sched/sampler.h"

static const dq_option_t s_options[] = {
    {"model", 'm', "DIFFQ_MODEL", DQ_OPT_STRING, NULL, "PATH",
     "diffusers folder or single-file .safetensors checkpoint"},
    {"configs", 0, NULL, DQ_OPT_STRING, NULL, "DIR",
     "for a single file: take configs and tokenizer from this diffusers folder"},
    {"prompt", 'p', NULL, DQ_OPT_STRING, NULL, "TEXT", "what to draw (required)"},
    {"negative-prompt", 'n', NULL, DQ_OPT_STRING, NULL, "TEXT", "what to avoid"},
    {"seed", 's', NULL, DQ_OPT_STRING, NULL, "N", "0..2^64-1; default: a random seed, printed"},
    {"steps", 0, NULL, DQ_OPT_INT, NULL, "N", "denoising steps (default 50)"},
    {"guidance", 'g', NULL, DQ_OPT_DOUBLE, NULL, "G", "classifier-free guidance scale (default 7.5)"},
    {"width", 'W', NULL, DQ_OPT_INT, NULL, "PX", "multiple of 8 (default 512)"},
    {"height", 'H', NULL, DQ_OPT_INT, NULL, "PX", "multiple of 8 (default 512)"},
    {"scheduler", 0, NULL, DQ_OPT_STRING, NULL, "NAME",
     "pndm, ddim, euler, euler_a, lms, dpmpp_2m, dpmpp_2m_karras (default: the model's)"},
    {"batch", 'b', NULL, DQ_OPT_INT, NULL, "N", "images of the prompt, one seed (default 1)"},
    {"output", 'o', NULL, DQ_OPT_STRING, "diffq.png", "FILE",
     "output PNG; with --batch N > 1, -K is added before .png for image K"},
    {"json", 0, NULL, DQ_OPT_BOOL, NULL, NULL, "progress and results as JSON lines on stdout"},
    {"threads", 't', "DIFFQ_THREADS", DQ_OPT_INT, "0", "N", "CPU threads (0: all)"},
    {"device", 'd', "DIFFQ_DEVICE", DQ_OPT_STRING, "cpu", "DEV", "cpu, cuda or cuda:N"},
    {"precision", 0, "DIFFQ_PRECISION", DQ_OPT_STRING, NULL, "P",
     "f32, f16 or bf16 (default: f32 on the CPU, f16 on CUDA)"},
};

/* Builds the request through the job format's own validation, as if it were a JSONL line. */
static int s_request(const dq_config_t *cfg, dq_request_t *req) {
    json_t *o = json_object();
    json_object_set_new(o, "prompt", json_string(dq_config_str(cfg, "prompt")));
    if (dq_config_is_set(cfg, "negative-prompt"))
        json_object_set_new(o, "negative_prompt", json_string(dq_config_str(cfg, "negative-prompt")));
    if (dq_config_is_set(cfg, "steps"))
        json_object_set_new(o, "num_inference_steps", json_integer(dq_config_int(cfg, "steps")));
    if (dq_config_is_set(cfg, "guidance"))
        json_object_set_new(o, "guidance_scale", json_real(dq_config_double(cfg, "guidance")));
    if (dq_config_is_set(cfg, "width"))
        json_object_set_new(o, "width", json_integer(dq_config_int(cfg, "width")));
    if (dq_config_is_set(cfg, "height"))
        json_object_set_new(o, "height", json_integer(dq_config_int(cfg, "height")));
    if (dq_config_is_set(cfg, "batch"))
        json_object_set_new(o, "num_images_per_prompt", json_integer(dq_config_int(cfg, "batch")));
    if (dq_config_is_set(cfg, "scheduler"))
        json_object_set_new(o, "scheduler", json_string(dq_config_str(cfg, "scheduler")));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text) return -1;
    /* The seed goes in as written: JSON integers here are signed 64-bit, seeds are not. */
    char *line = text;
    const char *seed = dq_config_str(cfg, "seed");
    if (seed && asprintf(&line, "%.*s,\"seed\":%s}", (int) strlen(text) - 1, text, seed) < 0) line = NULL;

    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    dq_errlist_t *errors = dq_errlist_new(DQ_ERRLIST_DEFAULT_CAP);
    dq_jobparser_t *parser = dq_jobparser_new("render options", &limits, errors);
    int rc = line && parser && dq_jobparser_line(parser, line, strlen(line), strlen(line), req) == 1 ? 0 : -1;
    if (rc < 0) dq_errlist_print(errors, stderr);
    dq_jobparser_destroy(&parser);
    dq_errlist_destroy(&errors);
    if (line != text) free(line);
    free(text);
    return rc;
}

/* Progress and output state of one render. */
typedef struct {
    const dq_request_t *req;
    const dq_pipeline_t *pipeline;
    const char *output;
    int json;
    int tty;
    struct timespec start;
    int failed;
} s_render_t;

static double s_seconds_since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double) (now.tv_sec - t0->tv_sec) + (double) (now.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int s_on_step(void *ctx, int call, int total) {
    s_render_t *r = ctx;
    double elapsed = s_seconds_since(&r->start), rate = call / elapsed;
    double eta = (total - call) / rate;
    if (r->json) {
        printf("{\"event\":\"step\",\"step\":%d,\"total\":%d,\"it_per_s\":%.3f,\"eta_s\":%.1f}\n",
               call, total, rate, eta);
        fflush(stdout);
    } else if (r->tty) {
        int width = 30, done = call * width / total;
        fprintf(stderr, "\rstep %3d/%-3d [%.*s%*s] %6.2f it/s  ETA %5.0fs", call, total, done,
                "==============================", width - done, "", rate, eta);
        if (call == total) fputc('\n', stderr);
    }
    return 0;
}

static int s_on_image(void *ctx, int request, int image, const uint8_t *rgb, int w, int h) {
    (void) request;
    s_render_t *r = ctx;
    char path[4096], err[512] = "";
    const char *dot = strrchr(r->output, '.');
    if (r->req->num_images_per_prompt == 1)
        snprintf(path, sizeof path, "%s", r->output);
    else if (dot && !strcmp(dot, ".png"))
        snprintf(path, sizeof path, "%.*s-%d.png", (int) (dot - r->output), r->output, image);
    else
        snprintf(path, sizeof path, "%s-%d.png", r->output, image);
    uint8_t *png = NULL;
    size_t len = 0;
    int sched = dq_pipeline_scheduler(r->pipeline, r->req);
    if (dq_png_encode_request(rgb, w, h, r->req, sched < 0 ? DQ_SCHED_MODEL : (dq_scheduler_t) sched,
                              dq_pipeline_model_name(r->pipeline),
                              image, &png, &len, err, sizeof err) < 0 ||
        dq_png_save_bytes(path, png, len, err, sizeof err) < 0) {
        fprintf(stderr, "diffq render: %s\n", err);
        free(png);
        r->failed = 1;
        return 1;
    }
    free(png);
    if (r->json)
        printf("{\"event\":\"image\",\"index\":%d,\"path\":\"%s\",\"seed\":%llu}\n", image, path,
               (unsigned long long) r->req->seed);
    else
        printf("%s\n", path);
    fflush(stdout);
    return 0;
}

int dq_cmd_render(int argc, char **argv) {
    char err[1024] = "";
    int status = DQ_EXIT_USAGE;
    dq_request_t req = {0};
    dq_pipeline_t *pipeline = NULL;
    dq_config_t *cfg = dq_config_new(
        "diffq render", "--model PATH --prompt TEXT [OPTIONS]",
        "Renders one prompt on this machine through the engine (CPU or CUDA), without a broker,\n"
        "and writes PNGs with the generation parameters embedded. Progress goes to the terminal,\n"
        "or as JSON lines with --json.",
        s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_EXIT_FAILED;
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "%s\n", err);
        status = rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
        goto done;
    }
    if (!dq_config_is_set(cfg, "prompt")) {
        fprintf(stderr, "diffq render: --prompt is required (see --help)\n");
        goto done;
    }
    if (!dq_config_is_set(cfg, "model")) {
        fprintf(stderr, "diffq render: no --model given, and this build has no built-in default "
                        "model (make one with 'diffq model init')\n");
        goto done;
    }
    if (s_request(cfg, &req) < 0) goto done;

    dq_pipeline_params_t params;
    dq_pipeline_params_init(&params);
    params.model_path = dq_config_str(cfg, "model");
    params.config_dir = dq_config_str(cfg, "configs");
    params.threads = (int) dq_config_int(cfg, "threads");
    params.device = dq_config_str(cfg, "device");
    params.precision = dq_config_str(cfg, "precision");
    pipeline = dq_pipeline_new(&params, err, sizeof err);
    if (!pipeline) {
        fprintf(stderr, "diffq render: %s\n", err);
        status = DQ_EXIT_FAILED;
        goto done;
    }
    if (req.seed_drawn && !dq_config_bool(cfg, "json"))
        fprintf(stderr, "diffq render: seed %llu\n", (unsigned long long) req.seed);
    s_render_t r = {.req = &req, .pipeline = pipeline, .output = dq_config_str(cfg, "output"),
                    .json = dq_config_bool(cfg, "json"), .tty = isatty(STDERR_FILENO)};
    clock_gettime(CLOCK_MONOTONIC, &r.start);
    dq_pipeline_sink_t sink = {&r, s_on_step, s_on_image, NULL};
    rc = dq_pipeline_render(pipeline, &req, 1, &sink, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "diffq render: %s\n", err);
        status = DQ_EXIT_FAILED;
    } else {
        status = r.failed ? DQ_EXIT_FAILED : DQ_EXIT_OK;
    }
done:
    dq_pipeline_destroy(&pipeline);
    dq_request_clear(&req);
    dq_config_destroy(&cfg);
    return status;
}
