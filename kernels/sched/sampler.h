/* kernels/sched/sampler.h: the samplers (diffusers' schedulers) as plain math on flat f32 arrays.
 *
 * A sampler is built from the model's scheduler configuration (scheduler_config.json, parsed by
 * the caller into dq_sched_config_t) and a step count. The denoising loop is then:
 *
 *   for (i = 0; i < dq_sampler_num_calls(s); i++) {
 *       t = dq_sampler_timestep(s, i);                  // what the UNet gets
 *       dq_sampler_scale_model_input(s, i, x, x_in, n);  // UNet input (CFG doubles it)
 *       eps = unet(x_in, t) ... classifier-free guidance ...
 *       dq_sampler_step(s, i, eps, x, n, rngs, n_rngs);  // x becomes the previous sample
 *   }
 *
 * with x = randn(seed) * dq_sampler_init_noise_sigma(s) at the start. Every number follows
 * diffusers 0.42.1 (StableDiffusionPipeline + the scheduler named by the job), including where it
 * computes in float32 and where in float64; the C files cite the diffusers function they follow.
 *
 * How exact: timesteps are bit-identical to diffusers'. Sigmas and latents agree to about 1e-7
 * relative (tests/unit/test_samplers.c: worst 6e-8 for schedules, 6e-7 over 10-step
 * trajectories; the requirement is 1e-4 per step). What keeps them from the bit: torch.sqrt and
 * ** 0.5 on f32 tensors are not correctly rounded in the reference PyTorch build (1 ulp off on
 * 17% of inputs, whatever ATEN_CPU_CAPABILITY says, so apparently MKL's VML, which picks its own
 * code by CPU); we use the IEEE square root. Likewise torch.log/exp of one element (DPM-Solver's
 * lambdas) and scipy's quad of an f32 integrand (LMS coefficients) round differently from ours at
 * the last bit. */
#ifndef DQ_SCHED_SAMPLER_H
#define DQ_SCHED_SAMPLER_H

#include <stddef.h>

#include "common/job.h"
#include "kernels/rng.h"

/* Which sampler: dq_scheduler_t from the job format (common/job.h), whose names ("euler_a")
 * and diffusers classes are defined there. DQ_SCHED_MODEL must be resolved to a concrete
 * scheduler first (dq_scheduler_from_class). */

typedef enum {
    DQ_BETA_LINEAR,            /* "linear" */
    DQ_BETA_SCALED_LINEAR,     /* "scaled_linear" */
    DQ_BETA_SQUAREDCOS_CAP_V2, /* "squaredcos_cap_v2" */
    DQ_BETA_COUNT
} dq_beta_schedule_t;

typedef enum {
    DQ_PREDICTION_EPSILON,      /* "epsilon" */
    DQ_PREDICTION_V_PREDICTION, /* "v_prediction" (SD 2.x 768) */
    DQ_PREDICTION_COUNT
} dq_prediction_type_t;

typedef enum {
    DQ_SPACING_LINSPACE, /* "linspace" */
    DQ_SPACING_LEADING,  /* "leading" */
    DQ_SPACING_TRAILING, /* "trailing" */
    DQ_SPACING_COUNT
} dq_timestep_spacing_t;

/* Bits of dq_sched_config_t.has: which keys the JSON file held. diffusers' from_config carries
 * only those to another scheduler class; a key the file lacked takes the target class's own
 * default (ConfigMixin.extract_init_dict drops "_use_default_values"). */
enum {
    DQ_SCHED_HAS_NUM_TRAIN_TIMESTEPS = 1u << 0,
    DQ_SCHED_HAS_BETA_START = 1u << 1,
    DQ_SCHED_HAS_BETA_END = 1u << 2,
    DQ_SCHED_HAS_BETA_SCHEDULE = 1u << 3,
    DQ_SCHED_HAS_PREDICTION_TYPE = 1u << 4,
    DQ_SCHED_HAS_TIMESTEP_SPACING = 1u << 5,
    DQ_SCHED_HAS_STEPS_OFFSET = 1u << 6,
    DQ_SCHED_HAS_SKIP_PRK_STEPS = 1u << 7,
    DQ_SCHED_HAS_SET_ALPHA_TO_ONE = 1u << 8,
    DQ_SCHED_HAS_CLIP_SAMPLE = 1u << 9,
    DQ_SCHED_HAS_CLIP_SAMPLE_RANGE = 1u << 10,
    DQ_SCHED_HAS_USE_KARRAS_SIGMAS = 1u << 11,
    DQ_SCHED_HAS_SOLVER_ORDER = 1u << 12,
    DQ_SCHED_HAS_LOWER_ORDER_FINAL = 1u << 13,
    DQ_SCHED_HAS_EULER_AT_FINAL = 1u << 14,
};

/* A scheduler configuration. Field names are scheduler_config.json's keys. */
typedef struct {
    unsigned has;                           /* DQ_SCHED_HAS_* bits: keys present in the file */
    int num_train_timesteps;                /* training steps, 1000 for SD */
    double beta_start;                      /* first beta (0.00085 for SD 1.x) */
    double beta_end;                        /* last beta (0.012 for SD 1.x) */
    dq_beta_schedule_t beta_schedule;       /* how betas go from start to end */
    dq_prediction_type_t prediction_type;   /* what the UNet predicts */
    dq_timestep_spacing_t timestep_spacing; /* how inference timesteps are picked */
    int steps_offset;                       /* added to "leading" timesteps (1 for SD 1.x) */
    int skip_prk_steps;                     /* PNDM: PLMS only, no Runge-Kutta warm-up */
    int set_alpha_to_one;                   /* PNDM/DDIM: final alpha_cumprod is 1 */
    int clip_sample;                        /* DDIM: clamp the predicted x0 */
    double clip_sample_range;               /* DDIM: the clamp bound */
    int use_karras_sigmas;                  /* Euler/LMS/DPM: Karras et al. sigma spacing */
    int solver_order;                       /* DPM-Solver: 1 or 2 */
    int lower_order_final;                  /* DPM-Solver: lower order in the last steps */
    int euler_at_final;                     /* DPM-Solver: first order at the last step */
} dq_sched_config_t;

/* SD 1.x's scheduler_config.json (PNDMScheduler, scaled_linear 0.00085..0.012, skip_prk_steps,
 * steps_offset 1, set_alpha_to_one false, clip_sample false, epsilon, leading), with `has`
 * covering those keys. A convenience for tests and the default model; cannot fail. */
void dq_sched_config_sd15(dq_sched_config_t *cfg);
/* Empties *cfg (has = 0): every field then takes the class default. */
void dq_sched_config_init(dq_sched_config_t *cfg);

/* JSON value names to enums and back. Parsers return -1 on an unknown name. */
int dq_beta_schedule_parse(const char *name);
int dq_prediction_type_parse(const char *name);
int dq_timestep_spacing_parse(const char *name);
const char *dq_timestep_spacing_name(dq_timestep_spacing_t spacing);

/* The scheduler a model's scheduler_config.json names ("_class_name"): PNDMScheduler, DDIMScheduler,
 * EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, LMSDiscreteScheduler, or
 * DPMSolverMultistepScheduler (DQ_SCHED_DPMPP_2M_KARRAS when cfg has use_karras_sigmas set).
 * Returns -1 for a class the engine does not implement. */
int dq_scheduler_from_class(const char *class_name, const dq_sched_config_t *cfg);

/* The configuration diffusers builds for `kind` from the model's: the keys the target class
 * accepts and the file held are carried (X.from_config(model_config)); all others are the target
 * class's defaults; dpmpp_2m_karras adds use_karras_sigmas=True. Cannot fail. */
void dq_sched_config_for(dq_scheduler_t kind, const dq_sched_config_t *model,
                         dq_sched_config_t *out);

typedef struct dq_sampler dq_sampler_t;

/* A sampler of `kind` for `num_inference_steps` steps on samples of `n` floats (the whole batch,
 * flat), configured from the model's scheduler configuration via dq_sched_config_for. On error
 * (unsupported configuration, bad step count, out of memory) returns NULL and writes a message to
 * err (errlen bytes, may be 0). */
dq_sampler_t *dq_sampler_new(dq_scheduler_t kind, const dq_sched_config_t *model_cfg,
                             int num_inference_steps, size_t n, char *err, size_t errlen);
/* Frees *self_p and sets it to NULL; NULL-safe and idempotent. */
void dq_sampler_destroy(dq_sampler_t **self_p);

/* UNet calls in the loop: len(scheduler.timesteps). PNDM with skip_prk_steps makes N+1 calls
 * (its second timestep repeats). */
int dq_sampler_num_calls(const dq_sampler_t *self);
/* The timestep passed to the UNet at call i (0 <= i < num_calls), as a float. */
float dq_sampler_timestep(const dq_sampler_t *self, int i);
/* The schedule's sigmas (num_calls + 1 values, the last 0) for the sigma-based samplers, NULL for
 * PNDM and DDIM; *count receives the length (0 for NULL). */
const float *dq_sampler_sigmas(const dq_sampler_t *self, int *count);
/* scheduler.init_noise_sigma: the initial latents are randn * this (in f32). */
float dq_sampler_init_noise_sigma(const dq_sampler_t *self);

/* scheduler.scale_model_input(x, t_i): out[k] = x[k] / sqrt(sigma_i^2 + 1) for Euler, Euler a and
 * LMS, a copy for the others. out may be x. n may be any multiple of the sample (CFG batches). */
void dq_sampler_scale_model_input(const dq_sampler_t *self, int i, const float *x, float *out,
                                  size_t n);

/* scheduler.step(model_output, t_i, sample): replaces sample[0..n) with the previous sample.
 * Calls must come in order i = 0, 1, ..., num_calls-1 (multistep samplers keep history). The
 * ancestral sampler draws its noise from rngs: rngs[k] draws for sample[k*n/n_rngs ...) so each
 * batch item uses its own request's generator, continuing the stream its initial latents came
 * from (n_rngs = 1 for one generator over the whole batch, as diffusers with one generator).
 * Returns 0, or -1 with a message in err when called out of order, with the wrong n, or without
 * generators where noise is needed (n_rngs must divide n). */
int dq_sampler_step(dq_sampler_t *self, int i, const float *model_output, float *sample, size_t n,
                    dq_rng_t *const *rngs, size_t n_rngs, char *err, size_t errlen);

/* Classifier-free guidance: out[k] = uncond[k] + guidance * (cond[k] - uncond[k]), rounded in f32
 * step by step as PyTorch does. out may be uncond or cond. */
void dq_guidance_combine(const float *uncond, const float *cond, float guidance, float *out,
                         size_t n);

#endif
