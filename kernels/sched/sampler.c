/* kernels/sched/sampler.c: the sampler object: construction, accessors, and step dispatch. */
#include "kernels/sched/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

dq_sampler_t *dq_sampler_new(dq_scheduler_t kind, const dq_sched_config_t *model_cfg,
                             int num_inference_steps, size_t n, char *err, size_t errlen) {
    if (kind <= DQ_SCHED_MODEL || kind >= DQ_SCHED_COUNT) {
        dq_sched_errf(err, errlen, "sampler kind %d is not a concrete scheduler", (int)kind);
        return NULL;
    }
    if (!model_cfg || n == 0) {
        dq_sched_errf(err, errlen, "sampler needs a scheduler configuration and a sample size");
        return NULL;
    }
    dq_sampler_t *s = calloc(1, sizeof(*s));
    if (!s) {
        dq_sched_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->kind = kind;
    dq_sched_config_for(kind, model_cfg, &s->cfg);
    s->steps = num_inference_steps;
    s->n = n;
    if (num_inference_steps < 1 || num_inference_steps > s->cfg.num_train_timesteps) {
        dq_sched_errf(err, errlen, "%s: steps %d out of range (1..%d)", dq_scheduler_name(kind),
                      num_inference_steps, s->cfg.num_train_timesteps);
        goto fail;
    }
    if (s->cfg.num_train_timesteps < 2 || s->cfg.num_train_timesteps > 100000) {
        dq_sched_errf(err, errlen, "num_train_timesteps %d out of range (2..100000)",
                      s->cfg.num_train_timesteps);
        goto fail;
    }
    /* diffusers takes any numbers; we refuse ones that make NaN schedules. */
    if (!(s->cfg.beta_start > 0 && s->cfg.beta_start <= s->cfg.beta_end && s->cfg.beta_end < 1)) {
        dq_sched_errf(err, errlen, "beta_start %g / beta_end %g: need 0 < start <= end < 1",
                      s->cfg.beta_start, s->cfg.beta_end);
        goto fail;
    }
    if (s->cfg.clip_sample && !(s->cfg.clip_sample_range > 0)) {
        dq_sched_errf(err, errlen, "clip_sample_range %g must be positive",
                      s->cfg.clip_sample_range);
        goto fail;
    }
    if ((unsigned)s->cfg.prediction_type >= DQ_PREDICTION_COUNT ||
        (unsigned)s->cfg.timestep_spacing >= DQ_SPACING_COUNT) {
        dq_sched_errf(err, errlen, "prediction_type or timestep_spacing out of range");
        goto fail;
    }
    s->alphas_cumprod = malloc((size_t)s->cfg.num_train_timesteps * sizeof(float));
    s->tmp = malloc(n * sizeof(float));
    if (!s->alphas_cumprod || !s->tmp) {
        dq_sched_errf(err, errlen, "out of memory");
        goto fail;
    }
    if (dq_sched_alphas_cumprod(&s->cfg, s->alphas_cumprod, err, errlen) != 0) goto fail;
    /* self.final_alpha_cumprod = torch.tensor(1.0) if set_alpha_to_one else alphas_cumprod[0] */
    s->final_alpha_cumprod = s->cfg.set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    s->init_noise_sigma = 1.0f;
    int rc;
    switch (kind) {
    case DQ_SCHED_PNDM:
        rc = dq_sched_pndm_setup(s, err, errlen);
        break;
    case DQ_SCHED_DDIM:
        rc = dq_sched_ddim_setup(s, err, errlen);
        break;
    case DQ_SCHED_EULER:
    case DQ_SCHED_EULER_A:
        rc = dq_sched_euler_setup(s, err, errlen);
        break;
    case DQ_SCHED_LMS:
        rc = dq_sched_lms_setup(s, err, errlen);
        break;
    default:
        rc = dq_sched_dpm_setup(s, err, errlen);
        break;
    }
    if (rc != 0) goto fail;
    return s;
fail:
    dq_sampler_destroy(&s);
    return NULL;
}

void dq_sampler_destroy(dq_sampler_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_sampler_t *s = *self_p;
    free(s->timesteps);
    free(s->timesteps_int);
    free(s->sigmas);
    free(s->alphas_cumprod);
    for (int k = 0; k < DQ_SCHED_MAX_HIST; k++)
        free(s->hist[k]);
    free(s->tmp);
    free(s);
    *self_p = NULL;
}

int dq_sampler_num_calls(const dq_sampler_t *self) {
    return self->ncalls;
}

float dq_sampler_timestep(const dq_sampler_t *self, int i) {
    return i >= 0 && i < self->ncalls ? self->timesteps[i] : 0.0f;
}

const float *dq_sampler_sigmas(const dq_sampler_t *self, int *count) {
    *count = self->sigmas ? self->ncalls + 1 : 0;
    return self->sigmas;
}

float dq_sampler_init_noise_sigma(const dq_sampler_t *self) {
    return self->init_noise_sigma;
}

void dq_sampler_scale_model_input(const dq_sampler_t *self, int i, const float *x, float *out,
                                  size_t n) {
    int scaled = self->kind == DQ_SCHED_EULER || self->kind == DQ_SCHED_EULER_A ||
                 self->kind == DQ_SCHED_LMS;
    if (!scaled || i < 0 || i >= self->ncalls) {
        if (out != x) memmove(out, x, n * sizeof(float));
        return;
    }
    /* sample / (sigma ** 2 + 1) ** 0.5, all f32 (EulerDiscreteScheduler.scale_model_input). */
    float sigma = self->sigmas[i];
    float d = sqrtf(sigma * sigma + 1.0f);
    for (size_t k = 0; k < n; k++)
        out[k] = x[k] / d;
}

int dq_sampler_step(dq_sampler_t *self, int i, const float *model_output, float *sample, size_t n,
                    dq_rng_t *const *rngs, size_t n_rngs, char *err, size_t errlen) {
    if (i != self->next_call || i >= self->ncalls) {
        dq_sched_errf(err, errlen, "%s: step %d out of order (expected %d of %d)",
                      dq_scheduler_name(self->kind), i, self->next_call, self->ncalls);
        return -1;
    }
    if (n != self->n) {
        dq_sched_errf(err, errlen, "%s: sample has %zu floats, sampler was built for %zu",
                      dq_scheduler_name(self->kind), n, self->n);
        return -1;
    }
    switch (self->kind) {
    case DQ_SCHED_PNDM:
        dq_sched_pndm_step(self, i, model_output, sample);
        break;
    case DQ_SCHED_DDIM:
        dq_sched_ddim_step(self, i, model_output, sample);
        break;
    case DQ_SCHED_EULER:
        dq_sched_euler_step(self, i, model_output, sample);
        break;
    case DQ_SCHED_EULER_A:
        if (!rngs || n_rngs == 0 || n % n_rngs != 0) {
            dq_sched_errf(err, errlen, "euler_a: needs generators, one per equal slice of %zu", n);
            return -1;
        }
        for (size_t k = 0; k < n_rngs; k++)
            if (!rngs[k]) {
                dq_sched_errf(err, errlen, "euler_a: generator %zu is NULL", k);
                return -1;
            }
        dq_sched_euler_a_step(self, i, model_output, sample, rngs, n_rngs);
        break;
    case DQ_SCHED_LMS:
        dq_sched_lms_step(self, i, model_output, sample);
        break;
    default:
        dq_sched_dpm_step(self, i, model_output, sample);
        break;
    }
    self->next_call++;
    return 0;
}
