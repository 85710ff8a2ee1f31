/* kernels/sched/pndm.c: PNDMScheduler with skip_prk_steps (PLMS), after diffusers 0.42.1's
 * scheduling_pndm.py: set_timesteps, step_plms and _get_prev_sample. Scalars are 0-dim f32
 * tensors there, so every coefficient below is computed in f32, in the same order. */
#include "kernels/sched/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int dq_sched_pndm_setup(dq_sampler_t *s, char *err, size_t errlen) {
    if (!s->cfg.skip_prk_steps) {
        dq_sched_errf(err, errlen,
                      "pndm: skip_prk_steps false (Runge-Kutta warm-up) is not "
                      "supported; SD checkpoints set it true");
        return -1;
    }
    int num = s->steps;
    double *asc = malloc((size_t)(num + 1) * sizeof(double));
    s->timesteps = malloc((size_t)(num + 2) * sizeof(float));
    s->timesteps_int = malloc((size_t)(num + 2) * sizeof(int));
    for (int k = 0; k < 5; k++)
        s->hist[k] = malloc(s->n * sizeof(float));
    int ok = asc && s->timesteps && s->timesteps_int;
    for (int k = 0; k < 5; k++)
        ok = ok && s->hist[k];
    if (!ok) {
        free(asc);
        dq_sched_errf(err, errlen, "out of memory");
        return -1;
    }
    /* self._timesteps, ascending (dq_sched_spaced gives them descending). */
    int len = dq_sched_spaced(&s->cfg, num, 1, asc);
    for (int i = 0; i < len / 2; i++) {
        double t = asc[i];
        asc[i] = asc[len - 1 - i];
        asc[len - 1 - i] = t;
    }
    /* plms_timesteps = concat(_timesteps[:-1], _timesteps[-2:-1], _timesteps[-1:])[::-1]: the
     * second-largest timestep runs twice (the PLMS warm-up), so len + 1 UNet calls. */
    int m = 0;
    int *plms = malloc((size_t)(len + 1) * sizeof(int));
    if (!plms) {
        free(asc);
        dq_sched_errf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < len - 1; i++)
        plms[m++] = (int)asc[i];
    if (len >= 2) plms[m++] = (int)asc[len - 2];
    plms[m++] = (int)asc[len - 1];
    for (int i = 0; i < m; i++) {
        s->timesteps_int[i] = plms[m - 1 - i];
        s->timesteps[i] = (float)s->timesteps_int[i];
    }
    s->ncalls = m;
    free(plms);
    free(asc);
    return 0;
}

/* alphas_cumprod[t] with the final value for t < 0; out-of-table t (bad configs) clamps. */
static float s_alpha(const dq_sampler_t *s, int t) {
    if (t < 0) return s->final_alpha_cumprod;
    if (t >= s->cfg.num_train_timesteps) t = s->cfg.num_train_timesteps - 1;
    return s->alphas_cumprod[t];
}

/* _get_prev_sample: formula (9) of the PNDM paper. out may alias x. */
static void s_prev_sample(const dq_sampler_t *s, const float *x, int t, int prev_t, float *eps,
                          float *out) {
    size_t n = s->n;
    float a = s_alpha(s, t), ap = s_alpha(s, prev_t);
    float b = 1.0f - a, bp = 1.0f - ap;
    if (s->cfg.prediction_type == DQ_PREDICTION_V_PREDICTION) {
        float ca = sqrtf(a), cb = sqrtf(b);
        for (size_t k = 0; k < n; k++)
            eps[k] = ca * eps[k] + cb * x[k];
    }
    float sample_coeff = sqrtf(ap / a);
    float denom = a * sqrtf(bp) + sqrtf(a * b * ap);
    float diff = ap - a;
    for (size_t k = 0; k < n; k++)
        out[k] = sample_coeff * x[k] - diff * eps[k] / denom;
}

void dq_sched_pndm_step(dq_sampler_t *s, int i, const float *mo, float *sample) {
    size_t n = s->n;
    int ratio = s->cfg.num_train_timesteps / s->steps;
    int t = s->timesteps_int[i];
    int prev_t = t - ratio;
    float **ets = s->hist; /* hist[0..3]: ets oldest first; hist[4]: cur_sample */
    float *e = s->tmp;
    if (s->counter != 1) { /* self.ets = self.ets[-3:] + [model_output] */
        if (s->hist_len == 4) {
            float *oldest = ets[0];
            memmove(ets, ets + 1, 3 * sizeof(float *));
            ets[3] = oldest;
            s->hist_len = 3;
        }
        memcpy(ets[s->hist_len++], mo, n * sizeof(float));
    } else {
        prev_t = t;
        t = t + ratio;
    }
    int len = s->hist_len;
    const float *x = sample;
    if (len == 1 && s->counter == 0) {
        memcpy(e, mo, n * sizeof(float));
        memcpy(s->hist[4], sample, n * sizeof(float)); /* self.cur_sample = sample */
    } else if (len == 1 && s->counter == 1) {
        const float *e1 = ets[0];
        for (size_t k = 0; k < n; k++)
            e[k] = (mo[k] + e1[k]) / 2.0f;
        x = s->hist[4]; /* sample = self.cur_sample */
    } else if (len == 2) {
        const float *e1 = ets[1], *e2 = ets[0];
        for (size_t k = 0; k < n; k++)
            e[k] = (3.0f * e1[k] - e2[k]) / 2.0f;
    } else if (len == 3) {
        const float *e1 = ets[2], *e2 = ets[1], *e3 = ets[0];
        for (size_t k = 0; k < n; k++)
            e[k] = (23.0f * e1[k] - 16.0f * e2[k] + 5.0f * e3[k]) / 12.0f;
    } else {
        const float *e1 = ets[3], *e2 = ets[2], *e3 = ets[1], *e4 = ets[0];
        const float c = (float)(1.0 / 24.0); /* (1 / 24) * (...): the Python float in f32 */
        for (size_t k = 0; k < n; k++)
            e[k] = c * (55.0f * e1[k] - 59.0f * e2[k] + 37.0f * e3[k] - 9.0f * e4[k]);
    }
    s_prev_sample(s, x, t, prev_t, e, sample);
    s->counter++;
}
