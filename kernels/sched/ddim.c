/* kernels/sched/ddim.c: DDIMScheduler with eta = 0 (the pipeline's default), after diffusers
 * 0.42.1's scheduling_ddim.py: set_timesteps and step. Scalars are 0-dim f32 tensors there. */
#include "kernels/sched/internal.h"

#include <math.h>
#include <stdlib.h>

int dq_sched_ddim_setup(dq_sampler_t *s, char *err, size_t errlen) {
    int num = s->steps;
    double *desc = malloc((size_t)(num + 1) * sizeof(double));
    s->timesteps = malloc((size_t)(num + 1) * sizeof(float));
    s->timesteps_int = malloc((size_t)(num + 1) * sizeof(int));
    if (!desc || !s->timesteps || !s->timesteps_int) {
        free(desc);
        dq_sched_errf(err, errlen, "out of memory");
        return -1;
    }
    s->ncalls = dq_sched_spaced(&s->cfg, num, 1, desc);
    for (int i = 0; i < s->ncalls; i++) {
        s->timesteps_int[i] = (int)desc[i];
        s->timesteps[i] = (float)s->timesteps_int[i];
    }
    free(desc);
    return 0;
}

static float s_alpha(const dq_sampler_t *s, int t) {
    if (t < 0) return s->final_alpha_cumprod;
    if (t >= s->cfg.num_train_timesteps) t = s->cfg.num_train_timesteps - 1;
    return s->alphas_cumprod[t];
}

void dq_sched_ddim_step(dq_sampler_t *s, int i, const float *mo, float *sample) {
    size_t n = s->n;
    int t = s->timesteps_int[i];
    int prev_t = t - s->cfg.num_train_timesteps / s->steps;
    float a = s_alpha(s, t), ap = s_alpha(s, prev_t);
    float b = 1.0f - a;
    float sa = sqrtf(a), sb = sqrtf(b);
    /* std_dev_t = eta * variance ** 0.5 = 0, so the direction is (1 - ap - 0) ** 0.5. */
    float bp = 1.0f - ap;
    float variance = bp / b * (1.0f - a / ap);
    float std_dev_t = 0.0f * sqrtf(variance);
    float dir = sqrtf(1.0f - ap - std_dev_t * std_dev_t);
    float sap = sqrtf(ap);
    int clip = s->cfg.clip_sample;
    float lim = (float)s->cfg.clip_sample_range;
    for (size_t k = 0; k < n; k++) {
        float x0, eps;
        if (s->cfg.prediction_type == DQ_PREDICTION_V_PREDICTION) {
            x0 = sa * sample[k] - sb * mo[k];
            eps = sa * mo[k] + sb * sample[k];
        } else {
            x0 = (sample[k] - sb * mo[k]) / sa;
            eps = mo[k];
        }
        if (clip) x0 = x0 < -lim ? -lim : (x0 > lim ? lim : x0);
        sample[k] = sap * x0 + dir * eps;
    }
}
