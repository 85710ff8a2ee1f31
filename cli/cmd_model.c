/* cli/cmd_model.c: `diffq model init` (write a random-weight diffusers folder) and `diffq model
 * info` (what a model folder or checkpoint holds). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/config.h"
#include "common/log.h"
#include "kernels/model_files.h"
#include "kernels/model_init.h"
#include "kernels/tokenizer.h"


/* `--config` names the preset here, as in the documented synopsis; this shadows the generic
 * --config FILE of other commands (DIFFQ_CONFIG still names an options file). */
static const dq_option_t s_init_options[] = {
    {"config", 0, NULL, DQ_OPT_STRING, "sd15", "NAME", "architecture preset: sd15 or tiny"},
    {"random", 0, NULL, DQ_OPT_BOOL, NULL, NULL,
     "random weights (required: the only source of weights)"},
    {"seed", 0, NULL, DQ_OPT_INT, "0", "N", "seed of the random weights (>= 0)"},
    {"output", 'o', NULL, DQ_OPT_STRING, NULL, "DIR",
     "folder to create (must not exist or be empty)"},
    {"dtype", 0, NULL, DQ_OPT_STRING, "f32", "TYPE", "weight type: f32, f16 or bf16"},
    {"bpe", 0, "DIFFQ_CLIP_BPE", DQ_OPT_STRING, NULL, "FILE",
     "CLIP's BPE merge file for tokenizer/ (default: $DIFFQ_DATA_DIR/clip/, else the installed "
     "one)"},
};

static const dq_option_t s_info_options[] = {
    {"configs", 0, NULL, DQ_OPT_STRING, NULL, "DIR",
     "for a single file: take the configs from this diffusers folder instead of inferring them"},
    {"verbose", 'v', NULL, DQ_OPT_BOOL, NULL, NULL, "also log which tensors were ignored"},
};

/* The merge file: --bpe, else where the tokenizer finds its built-in vocabulary. */
static const char *s_bpe_path(const dq_config_t *cfg, char *buf, size_t len) {
    const char *bpe = dq_config_str(cfg, "bpe");
    if (bpe) return bpe;
    dq_tokenizer_builtin_path(buf, len);
    return buf;
}

static int s_init(int argc, char **argv) {
    char err[1024];
    dq_config_t *cfg =
        dq_config_new("diffq model init", "--config sd15|tiny --random [--seed N] -o DIR",
                      "Writes a diffusers-format Stable Diffusion 1.x folder (configs, tokenizer, "
                      "random weights) that diffq and diffusers both load.",
                      s_init_options, sizeof s_init_options / sizeof *s_init_options);
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "%s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
    }
    int exit_code = DQ_EXIT_USAGE;
    char bpe[4096];
    dq_model_configs_t m;
    const char *preset = dq_config_str(cfg, "config"), *out = dq_config_str(cfg, "output");
    const char *dt = dq_config_str(cfg, "dtype");
    long seed = dq_config_int(cfg, "seed");
    dq_dtype_t dtype = !strcmp(dt, "f32")   ? DQ_DTYPE_F32
                       : !strcmp(dt, "f16") ? DQ_DTYPE_F16
                                            : DQ_DTYPE_BF16;
    if (!dq_config_bool(cfg, "random")) {
        fprintf(stderr, "diffq model init: --random is required (random weights are the only kind "
                        "it writes)\n");
    } else if (!out) {
        fprintf(stderr, "diffq model init: -o DIR is required\n");
    } else if (dq_config_positional_count(cfg) > 0) {
        fprintf(stderr, "diffq model init: unexpected argument '%s'\n",
                dq_config_positional(cfg, 0));
    } else if (dq_model_preset(preset, &m) < 0) {
        fprintf(stderr, "diffq model init: --config: unknown preset '%s' (sd15 or tiny)\n", preset);
    } else if (strcmp(dt, "f32") && strcmp(dt, "f16") && strcmp(dt, "bf16")) {
        fprintf(stderr, "diffq model init: --dtype: expected f32, f16 or bf16, got '%s'\n", dt);
    } else if (seed < 0) {
        fprintf(stderr, "diffq model init: --seed: expected a non-negative integer\n");
    } else if (dq_model_init_random(out, &m, (uint64_t) seed, dtype,
                                    s_bpe_path(cfg, bpe, sizeof bpe), err, sizeof err) < 0) {
        fprintf(stderr, "diffq model init: %s\n", err);
        exit_code = DQ_EXIT_FAILED;
    } else {
        printf("wrote %s (%s, %s, seed %ld)\n", out, preset, dt, seed);
        exit_code = DQ_EXIT_OK;
    }
    dq_config_destroy(&cfg);
    return exit_code;
}

static void s_print_list(const char *label, const int *v, int n) {
    printf("  %s [", label);
    for (int i = 0; i < n; i++)
        printf(i ? ", %d" : "%d", v[i]);
    printf("]\n");
}

static void s_print_part(const dq_model_t *m, dq_model_part_t p) {
    const dq_model_component_t *c = &m->parts[p];
    printf("%s: %s\n", dq_model_part_name(p), c->file);
    printf("  parameters %lld (%.1fM) in %zu tensors, dtype %s%s", (long long) c->n_params,
           c->n_params / 1e6, c->count, dq_dtype_name(c->dtype), c->mixed_dtypes ? " (mixed)" : "");
    if (c->n_extra) printf(", %zu unused tensors", c->n_extra);
    printf("\n");
}

static void s_print_info(const dq_model_t *m) {
    const dq_model_configs_t *c = &m->cfg;
    printf("model: %s (%s layout)\n", m->path, dq_model_layout_name(m->layout));
    int64_t total = 0;
    for (int p = 0; p < DQ_PART_COUNT; p++)
        total += m->parts[p].n_params;

    s_print_part(m, DQ_PART_TEXT_ENCODER);
    printf("  CLIPTextModel: hidden_size %d, layers %d, heads %d, intermediate_size %d, vocab_size "
           "%d, "
           "max_positions %d, act %s\n",
           c->clip.hidden_size, c->clip.num_hidden_layers, c->clip.num_attention_heads,
           c->clip.intermediate_size, c->clip.vocab_size, c->clip.max_position_embeddings,
           c->clip.hidden_act);

    s_print_part(m, DQ_PART_UNET);
    printf("  UNet2DConditionModel: in/out channels %d/%d, sample_size %d, layers_per_block %d, "
           "cross_attention_dim %d, linear projection %s\n",
           c->unet.in_channels, c->unet.out_channels, c->unet.sample_size, c->unet.layers_per_block,
           c->unet.cross_attention_dim, c->unet.use_linear_projection ? "yes" : "no");
    s_print_list("block_out_channels", c->unet.block_out_channels, c->unet.n_blocks);
    s_print_list("attention heads", c->unet.num_heads, c->unet.n_blocks);
    printf("  down blocks:");
    for (int i = 0; i < c->unet.n_blocks; i++)
        printf(" %s", c->unet.down_block_types[i]);
    printf("\n  up blocks:");
    for (int i = 0; i < c->unet.n_blocks; i++)
        printf(" %s", c->unet.up_block_types[i]);
    printf("\n");

    s_print_part(m, DQ_PART_VAE);
    printf("  AutoencoderKL: latent_channels %d, layers_per_block %d, scaling_factor %g\n",
           c->vae.latent_channels, c->vae.layers_per_block, c->vae.scaling_factor);
    s_print_list("block_out_channels", c->vae.block_out_channels, c->vae.n_blocks);

    bool inferred = m->layout == DQ_MODEL_SINGLE_FILE && !m->vocab_path && !m->tokenizer_json_path;
    /* The values the model's own sampler runs with: the file's keys over its class defaults. */
    const dq_scheduler_config_t *sc = &c->scheduler;
    int kind = dq_scheduler_from_class(sc->class_name, &sc->sched);
    if (kind < 0) {
        printf("scheduler: %s%s (not implemented by the engine; requests must name a scheduler)\n",
               sc->class_name, inferred ? " (SD 1.5 default)" : "");
    } else {
        dq_sched_config_t e;
        dq_sched_config_for((dq_scheduler_t) kind, &sc->sched, &e);
        static const char *const beta[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
        printf("scheduler: %s%s: %s betas %g..%g, %d train steps, steps_offset %d, prediction %s, "
               "spacing %s\n",
               sc->class_name, inferred ? " (SD 1.5 default)" : "", beta[e.beta_schedule],
               e.beta_start, e.beta_end, e.num_train_timesteps, e.steps_offset,
               e.prediction_type == DQ_PREDICTION_EPSILON ? "epsilon" : "v_prediction",
               dq_timestep_spacing_name(e.timestep_spacing));
    }
    if (m->vocab_path)
        printf("tokenizer: %s, %s\n", m->vocab_path, m->merges_path);
    else if (m->tokenizer_json_path)
        printf("tokenizer: %s\n", m->tokenizer_json_path);
    else
        printf("tokenizer: none in a single file (use CLIP's vocabulary)\n");
    printf("total parameters: %lld (%.1fM)\n", (long long) total, total / 1e6);
}

static int s_info(int argc, char **argv) {
    char err[1024];
    dq_config_t *cfg =
        dq_config_new("diffq model info", "PATH",
                      "Describes a model: a diffusers folder or a single-file SD 1.x .safetensors "
                      "checkpoint. Checks every expected tensor.",
                      s_info_options, sizeof s_info_options / sizeof *s_info_options);
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "%s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
    }
    int exit_code = DQ_EXIT_USAGE;
    if (dq_config_positional_count(cfg) != 1) {
        fprintf(stderr, "diffq model info: expected one PATH (see --help)\n");
    } else {
        if (dq_config_bool(cfg, "verbose")) dq_log_init("diffq", DQ_LOG_DEBUG, false);
        dq_model_t *m = dq_model_load_with_configs(dq_config_positional(cfg, 0),
                                                   dq_config_str(cfg, "configs"), err, sizeof err);
        if (!m) {
            fprintf(stderr, "diffq model info: %s\n", err);
        } else {
            s_print_info(m);
            dq_model_destroy(&m);
            exit_code = DQ_EXIT_OK;
        }
    }
    dq_config_destroy(&cfg);
    return exit_code;
}

int dq_cmd_model(int argc, char **argv) {
    const char *usage = "Usage: diffq model init --config sd15|tiny --random [--seed N] [--dtype "
                        "f32|f16|bf16] -o DIR\n"
                        "       diffq model info [--configs DIR] PATH\n";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? DQ_EXIT_USAGE : DQ_EXIT_OK;
    }
    if (!strcmp(argv[1], "init")) return s_init(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return s_info(argc - 1, argv + 1);
    fprintf(stderr, "diffq model: unknown subcommand '%s'\n%s", argv[1], usage);
    return DQ_EXIT_USAGE;
}
