/* kernels/sched/euler.c: EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (and the
 * sigma schedule LMS shares), after diffusers 0.42.1's scheduling_euler_discrete.py and
 * scheduling_euler_ancestral_discrete.py. set_timesteps works in numpy float64 on the f32 sigma
 * table and casts the result to f32; step works on 0-dim f32 tensors. */
#include "kernels/sched/internal.h"

#include <math.h>
#include <stdlib.h>

int dq_sched_sigma_setup(dq_sampler_t *s, int karras, char *err, size_t errlen) {
    int num = s->steps, ntt = s->cfg.num_train_timesteps;
    double *ts = malloc((size_t)(num + 1) * sizeof(double));
    double *sg = malloc((size_t)(num + 1) * sizeof(double));
    float *table = malloc((size_t)ntt * sizeof(float));
    s->timesteps = malloc((size_t)(num + 1) * sizeof(float));
    s->sigmas = malloc((size_t)(num + 2) * sizeof(float));
    if (!ts || !sg || !table || !s->timesteps || !s->sigmas) {
        free(ts);
        free(sg);
        free(table);
        dq_sched_errf(err, errlen, "out of memory");
        return -1;
    }
    /* Timesteps are f32 before interpolation: linspace(..., dtype=np.float32) is not rounded;
     * leading and trailing are rounded, cast, then offset in f32. */
    int len = dq_sched_spaced(&s->cfg, num, 0, ts);
    for (int i = 0; i < len; i++)
        ts[i] = (double)(float)ts[i];
    dq_sched_train_sigmas(s->alphas_cumprod, ntt, table);
    for (int i = 0; i < len; i++)
        sg[i] = dq_sched_np_interp(ts[i], table, ntt);
    if (karras) {
        /* _convert_to_karras(in_sigmas=sigmas): from sigmas[0] down to sigmas[-1]; timesteps
         * become _sigma_to_t of each against np.log of the f32 table (an f32 array). */
        float *log_table = malloc((size_t)ntt * sizeof(float));
        if (!log_table) {
            free(ts);
            free(sg);
            free(table);
            dq_sched_errf(err, errlen, "out of memory");
            return -1;
        }
        for (int i = 0; i < ntt; i++)
            log_table[i] = logf(table[i]);
        dq_sched_karras(sg[len - 1], sg[0], num, sg);
        len = num;
        for (int i = 0; i < len; i++)
            ts[i] = dq_sched_sigma_to_t(sg[i], log_table, ntt);
        free(log_table);
    }
    s->ncalls = len;
    float max = 0.0f;
    for (int i = 0; i < len; i++) {
        s->timesteps[i] = (float)ts[i];
        s->sigmas[i] = (float)sg[i];
        if (s->sigmas[i] > max) max = s->sigmas[i];
    }
    s->sigmas[len] = 0.0f; /* final_sigmas_type "zero" */
    /* init_noise_sigma: sigmas.max() for linspace/trailing, (max ** 2 + 1) ** 0.5 for leading. */
    s->init_noise_sigma =
        s->cfg.timestep_spacing == DQ_SPACING_LEADING ? sqrtf(max * max + 1.0f) : max;
    free(ts);
    free(sg);
    free(table);
    return 0;
}

int dq_sched_euler_setup(dq_sampler_t *s, char *err, size_t errlen) {
    int karras = s->kind == DQ_SCHED_EULER && s->cfg.use_karras_sigmas;
    return dq_sched_sigma_setup(s, karras, err, errlen);
}

/* pred_original_sample for epsilon and v_prediction (f32 scalars as diffusers orders them). */
static float s_x0(const dq_sampler_t *s, float sigma, float x, float mo, float c_out, float c_in) {
    if (s->cfg.prediction_type == DQ_PREDICTION_V_PREDICTION) return mo * c_out + x / c_in;
    return x - sigma * mo;
}

void dq_sched_euler_step(dq_sampler_t *s, int i, const float *mo, float *sample) {
    float sigma = s->sigmas[i];
    /* s_churn = 0: gamma = 0, sigma_hat = sigma * (gamma + 1) = sigma, no noise drawn. */
    float sigma_hat = sigma * (0.0f + 1.0f);
    float c_in = sigma * sigma + 1.0f;
    float c_out = -sigma / sqrtf(c_in);
    float dt = s->sigmas[i + 1] - sigma_hat;
    for (size_t k = 0; k < s->n; k++) {
        float x0 = s_x0(s, sigma_hat, sample[k], mo[k], c_out, c_in);
        float derivative = (sample[k] - x0) / sigma_hat;
        sample[k] = sample[k] + derivative * dt;
    }
}

void dq_sched_euler_a_step(dq_sampler_t *s, int i, const float *mo, float *sample,
                           dq_rng_t *const *rngs, size_t n_rngs) {
    size_t n = s->n, per = n / n_rngs;
    float sigma = s->sigmas[i];
    float sigma_from = sigma, sigma_to = s->sigmas[i + 1];
    float from2 = sigma_from * sigma_from, to2 = sigma_to * sigma_to;
    float sigma_up = sqrtf(to2 * (from2 - to2) / from2);
    float sigma_down = sqrtf(to2 - sigma_up * sigma_up);
    float c_in = sigma * sigma + 1.0f;
    float c_out = -sigma / sqrtf(c_in);
    float dt = sigma_down - sigma;
    /* randn_tensor(model_output.shape, generator=...): drawn at every step, even the last where
     * sigma_up is 0, so the generators advance exactly as diffusers' do. */
    float *noise = s->tmp;
    for (size_t r = 0; r < n_rngs; r++)
        dq_rng_randn(rngs[r], noise + r * per, per);
    for (size_t k = 0; k < n; k++) {
        float x0 = s_x0(s, sigma, sample[k], mo[k], c_out, c_in);
        float derivative = (sample[k] - x0) / sigma;
        float prev = sample[k] + derivative * dt;
        sample[k] = prev + noise[k] * sigma_up;
    }
}
