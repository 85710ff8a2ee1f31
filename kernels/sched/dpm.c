/* kernels/sched/dpm.c: DPMSolverMultistepScheduler, algorithm_type "dpmsolver++", solver_type
 * "midpoint", solver_order 1 or 2 (DPM++ 2M, with or without Karras sigmas), after diffusers
 * 0.42.1's scheduling_dpmsolver_multistep.py: set_timesteps, convert_model_output,
 * dpm_solver_first_order_update, multistep_dpm_solver_second_order_update and step. Scalars are
 * 0-dim f32 tensors there (torch.log/exp of one element use the C library's logf/expf). */
#include "kernels/sched/internal.h"

#include <math.h>
#include <stdlib.h>

int dq_sched_dpm_setup(dq_sampler_t *s, char *err, size_t errlen) {
    int num = s->steps, ntt = s->cfg.num_train_timesteps;
    if (s->cfg.solver_order != 1 && s->cfg.solver_order != 2) {
        dq_sched_errf(err, errlen, "%s: solver_order %d is not supported (1 or 2)",
                      dq_scheduler_name(s->kind), s->cfg.solver_order);
        return -1;
    }
    double *ts = malloc((size_t)(num + 2) * sizeof(double));
    double *sg = malloc((size_t)(num + 2) * sizeof(double));
    float *table = malloc((size_t)ntt * sizeof(float));
    s->timesteps = malloc((size_t)(num + 1) * sizeof(float));
    s->timesteps_int = malloc((size_t)(num + 1) * sizeof(int));
    s->sigmas = malloc((size_t)(num + 2) * sizeof(float));
    for (int k = 0; k < 2; k++)
        s->hist[k] = malloc(s->n * sizeof(float));
    if (!ts || !sg || !table || !s->timesteps || !s->timesteps_int || !s->sigmas || !s->hist[0] ||
        !s->hist[1]) {
        free(ts);
        free(sg);
        free(table);
        dq_sched_errf(err, errlen, "out of memory");
        return -1;
    }
    /* lambda_min_clipped = -inf, so last_timestep = num_train_timesteps. */
    int last = ntt, len = 0;
    switch (s->cfg.timestep_spacing) {
    case DQ_SPACING_LINSPACE: /* linspace(0, last - 1, num + 1).round()[::-1][:-1] */
        dq_sched_np_linspace(0, last - 1, num + 1, sg);
        for (int i = 0; i < num; i++)
            ts[i] = rint(sg[num - i]);
        len = num;
        break;
    case DQ_SPACING_LEADING: { /* (arange(num + 1) * (last // (num + 1)))[::-1][:-1] + offset */
        int ratio = last / (num + 1);
        for (int i = 0; i < num; i++)
            ts[i] = (double)(num - i) * ratio + s->cfg.steps_offset;
        len = num;
        break;
    }
    default: { /* trailing: arange(last, 0, -ntt / num).round() - 1 */
        double ratio = (double)ntt / num;
        len = dq_sched_np_arange(last, 0, -ratio, NULL);
        if (len > num + 1) len = num + 1;
        dq_sched_np_arange(last, 0, -ratio, ts);
        for (int i = 0; i < len; i++)
            ts[i] = rint(ts[i]) - 1;
        break;
    }
    }
    dq_sched_train_sigmas(s->alphas_cumprod, ntt, table);
    if (s->cfg.use_karras_sigmas) {
        /* Karras from the flipped table (sigma_max = table[-1], sigma_min = table[0]), then
         * timesteps = round(_sigma_to_t) (np.round: half to even), beta_schedule permitting. */
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
        dq_sched_karras(table[0], table[ntt - 1], num, sg);
        len = num;
        for (int i = 0; i < len; i++) {
            ts[i] = dq_sched_sigma_to_t(sg[i], log_table, ntt);
            if (s->cfg.beta_schedule != DQ_BETA_SQUAREDCOS_CAP_V2) ts[i] = rint(ts[i]);
        }
        free(log_table);
    } else {
        for (int i = 0; i < len; i++)
            sg[i] = dq_sched_np_interp(ts[i], table, ntt);
    }
    s->ncalls = len;
    for (int i = 0; i < len; i++) {
        s->timesteps_int[i] = (int)ts[i]; /* .to(torch.int64): truncation */
        s->timesteps[i] = (float)s->timesteps_int[i];
        s->sigmas[i] = (float)sg[i];
    }
    s->sigmas[len] = 0.0f; /* final_sigmas_type "zero" */
    s->init_noise_sigma = 1.0f;
    free(ts);
    free(sg);
    free(table);
    return 0;
}

/* _sigma_to_alpha_sigma_t: alpha = 1 / (sigma ** 2 + 1) ** 0.5, sigma_t = sigma * alpha. */
static void s_alpha_sigma(float sigma, float *alpha, float *sigma_t) {
    *alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha;
}

static float s_lambda(float alpha, float sigma_t) {
    return logf(alpha) - logf(sigma_t);
}

void dq_sched_dpm_step(dq_sampler_t *s, int i, const float *mo, float *sample) {
    size_t n = s->n;
    int last_i = s->ncalls - 1;
    /* final_sigmas_type "zero" makes the last step first order whatever the other flags. */
    int lower_order_final = i == last_i;
    int lower_order_second = i == last_i - 1 && s->cfg.lower_order_final && s->ncalls < 15;
    (void)lower_order_second; /* with solver_order <= 2 it picks second order anyway */
    /* convert_model_output -> x0_pred; model_outputs shift: hist[0] older, hist[1] newest. */
    float alpha_s0, sigma_s0;
    s_alpha_sigma(s->sigmas[i], &alpha_s0, &sigma_s0);
    float *older = s->hist[0];
    s->hist[0] = s->hist[1];
    s->hist[1] = older;
    float *x0 = s->hist[1];
    for (size_t k = 0; k < n; k++) {
        if (s->cfg.prediction_type == DQ_PREDICTION_V_PREDICTION)
            x0[k] = alpha_s0 * sample[k] - sigma_s0 * mo[k];
        else
            x0[k] = (sample[k] - sigma_s0 * mo[k]) / alpha_s0;
    }
    float alpha_t, sigma_t;
    s_alpha_sigma(s->sigmas[i + 1], &alpha_t, &sigma_t);
    float lambda_t = s_lambda(alpha_t, sigma_t);
    float lambda_s0 = s_lambda(alpha_s0, sigma_s0);
    float h = lambda_t - lambda_s0;
    float c_x = sigma_t / sigma_s0;
    float c_d = alpha_t * (expf(-h) - 1.0f);
    if (s->cfg.solver_order == 1 || s->counter < 1 || lower_order_final) {
        for (size_t k = 0; k < n; k++)
            sample[k] = c_x * sample[k] - c_d * x0[k];
    } else {
        float alpha_s1, sigma_s1;
        s_alpha_sigma(s->sigmas[i - 1], &alpha_s1, &sigma_s1);
        float lambda_s1 = s_lambda(alpha_s1, sigma_s1);
        float h_0 = lambda_s0 - lambda_s1;
        float r0 = h_0 / h;
        float inv_r0 = 1.0f / r0;
        float c_d1 = 0.5f * c_d;
        const float *m1 = s->hist[0];
        for (size_t k = 0; k < n; k++) {
            float d1 = inv_r0 * (x0[k] - m1[k]);
            sample[k] = c_x * sample[k] - c_d * x0[k] - c_d1 * d1;
        }
    }
    if (s->counter < s->cfg.solver_order) s->counter++;
}
