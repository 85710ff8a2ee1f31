/* kernels/sched/lms.c: LMSDiscreteScheduler (linear multistep, order 4), after diffusers 0.42.1's
 * scheduling_lms_discrete.py: the schedule is Euler's; step keeps the last 4 derivatives. */
#include "kernels/sched/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_LMS_ORDER 4 /* step(order=4), the pipeline's default */

int dq_sched_lms_setup(dq_sampler_t *s, char *err, size_t errlen) {
    if (dq_sched_sigma_setup(s, s->cfg.use_karras_sigmas, err, errlen) != 0) return -1;
    for (int k = 0; k < S_LMS_ORDER; k++) {
        s->hist[k] = malloc(s->n * sizeof(float));
        if (!s->hist[k]) {
            dq_sched_errf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* get_lms_coefficient: the integral over [sigmas[t], sigmas[t+1]] of the Lagrange basis
 * polynomial of node t - current_order among the nodes t, t-1, ..., t-order+1. diffusers
 * integrates it with scipy's quad; it is a polynomial of degree <= 3, so 4-point Gauss-Legendre
 * is exact (up to rounding, ~1e-16 relative against quad's ~1e-7 from its f32 integrand). */
static double s_lms_coefficient(const float *sigmas, int order, int t, int current) {
    static const double gx[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                 0.8611363115940526};
    static const double gw[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                 0.3478548451374538};
    double a = sigmas[t], b = sigmas[t + 1];
    double mid = 0.5 * (a + b), half = 0.5 * (b - a), sum = 0.0;
    for (int q = 0; q < 4; q++) {
        double tau = mid + half * gx[q], prod = 1.0;
        for (int k = 0; k < order; k++) {
            if (k == current) continue;
            prod *= (tau - sigmas[t - k]) / ((double)sigmas[t - current] - sigmas[t - k]);
        }
        sum += gw[q] * prod;
    }
    return sum * half;
}

void dq_sched_lms_step(dq_sampler_t *s, int i, const float *mo, float *sample) {
    size_t n = s->n;
    float sigma = s->sigmas[i];
    float c_in = sigma * sigma + 1.0f;
    float c_out = -sigma / sqrtf(c_in);
    /* self.derivatives.append(derivative), keeping the last 4: hist[0] is the oldest. */
    if (s->hist_len == S_LMS_ORDER) {
        float *oldest = s->hist[0];
        memmove(s->hist, s->hist + 1, (S_LMS_ORDER - 1) * sizeof(float *));
        s->hist[S_LMS_ORDER - 1] = oldest;
        s->hist_len--;
    }
    float *d = s->hist[s->hist_len++];
    for (size_t k = 0; k < n; k++) {
        float x0 = s->cfg.prediction_type == DQ_PREDICTION_V_PREDICTION
                       ? mo[k] * c_out + sample[k] / c_in
                       : sample[k] - sigma * mo[k];
        d[k] = (sample[k] - x0) / sigma;
    }
    int order = i + 1 < S_LMS_ORDER ? i + 1 : S_LMS_ORDER;
    float coeff[S_LMS_ORDER];
    const float *deriv[S_LMS_ORDER]; /* zip(lms_coeffs, reversed(self.derivatives)) */
    for (int c = 0; c < order; c++) {
        coeff[c] = (float)s_lms_coefficient(s->sigmas, order, i, c);
        deriv[c] = s->hist[s->hist_len - 1 - c];
    }
    /* sample + sum(coeff * derivative ...): the sum runs left to right from the newest. */
    for (size_t k = 0; k < n; k++) {
        float acc = coeff[0] * deriv[0][k];
        for (int c = 1; c < order; c++)
            acc = acc + coeff[c] * deriv[c][k];
        sample[k] = sample[k] + acc;
    }
}
