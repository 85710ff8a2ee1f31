/* kernels/sched/schedule.c: noise schedules as diffusers computes them (betas, alphas_cumprod,
 * sigmas, numpy's linspace/arange/interp, Karras sigmas), to the bit where the reference allows.
 * Compiled with -ffp-contract=off: only the fmaf() calls below are fused, as in the reference. */
#include "kernels/sched/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

void dq_sched_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ATen's linspace kernel (native/cpu/RangeFactoriesKernel.cpp): step = (end - start) / (num - 1)
 * in f32, then per element start + step*i below num/2 and end - step*(num-1-i) from there. The
 * PyTorch binary fuses each into one FMA (checked against torch.linspace for many ranges and
 * lengths, see tests/reference/gen_samplers.py). */
void dq_sched_torch_linspace_f32(double start, double end, int num, float *out) {
    float s = (float)start, e = (float)end;
    if (num == 1) {
        out[0] = s;
        return;
    }
    float step = (e - s) / (float)(num - 1);
    int half = num / 2;
    for (int i = 0; i < num; i++)
        out[i] = i < half ? fmaf(step, (float)i, s) : fmaf(-step, (float)(num - 1 - i), e);
}

/* diffusers' betas_for_alpha_bar(cosine), in float64 then f32 (torch.tensor(betas, f32)). */
static void s_betas_cosine(int num, float *out) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < num; i++) {
        double t1 = (double)i / num, t2 = (double)(i + 1) / num;
        double a1 = cos((t1 + 0.008) / 1.008 * pi / 2);
        double a2 = cos((t2 + 0.008) / 1.008 * pi / 2);
        double b = 1 - (a2 * a2) / (a1 * a1);
        out[i] = (float)(b < 0.999 ? b : 0.999);
    }
}

int dq_sched_alphas_cumprod(const dq_sched_config_t *cfg, float *out, char *err, size_t errlen) {
    int num = cfg->num_train_timesteps;
    if (num < 2 || num > 100000) {
        dq_sched_errf(err, errlen, "num_train_timesteps %d out of range (2..100000)", num);
        return -1;
    }
    switch (cfg->beta_schedule) {
    case DQ_BETA_LINEAR:
        dq_sched_torch_linspace_f32(cfg->beta_start, cfg->beta_end, num, out);
        break;
    case DQ_BETA_SCALED_LINEAR:
        /* torch.linspace(beta_start**0.5, beta_end**0.5, ...) ** 2: Python's float pow, then the
         * f32 square (torch's pow(x, 2) is x*x). */
        dq_sched_torch_linspace_f32(pow(cfg->beta_start, 0.5), pow(cfg->beta_end, 0.5), num, out);
        for (int i = 0; i < num; i++)
            out[i] = out[i] * out[i];
        break;
    case DQ_BETA_SQUAREDCOS_CAP_V2:
        s_betas_cosine(num, out);
        break;
    default:
        dq_sched_errf(err, errlen, "beta_schedule %d is not supported", (int)cfg->beta_schedule);
        return -1;
    }
    /* alphas = 1.0 - betas (f32); torch.cumprod on the CPU accumulates in double (acc_type) and
     * stores each prefix product rounded to f32. */
    double acc = 1.0;
    for (int i = 0; i < num; i++) {
        float alpha = 1.0f - out[i];
        acc *= (double)alpha;
        out[i] = (float)acc;
    }
    return 0;
}

void dq_sched_train_sigmas(const float *alphas_cumprod, int len, float *out) {
    for (int i = 0; i < len; i++) {
        float ac = alphas_cumprod[i];
        out[i] = sqrtf((1.0f - ac) / ac);
    }
}

void dq_sched_np_linspace(double start, double stop, int num, double *out) {
    if (num <= 0) return;
    if (num == 1) {
        out[0] = start;
        return;
    }
    double step = (stop - start) / (num - 1);
    for (int i = 0; i < num; i++)
        out[i] = (double)i * step + start;
    out[num - 1] = stop;
}

int dq_sched_np_arange(double start, double stop, double step, double *out) {
    double len_d = ceil((stop - start) / step);
    int len = len_d > 0 ? (int)len_d : 0;
    if (!out) return len;
    if (len > 0) out[0] = start;
    double delta = (start + step) - start;
    for (int i = 1; i < len; i++)
        out[i] = start + (double)i * delta;
    return len;
}

/* numpy's interp (compiled_base.c) on the grid 0, 1, ..., len-1: exact table values at grid
 * points, slope*(x - j) + fp[j] between them, the end values outside. */
double dq_sched_np_interp(double x, const float *fp, int len) {
    if (x <= 0.0) return fp[0];
    if (x >= (double)(len - 1)) return fp[len - 1];
    int j = (int)floor(x);
    if (x == (double)j) return fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    return slope * (x - (double)j) + (double)fp[j];
}

/* diffusers' _sigma_to_t: low_idx is the last index whose log sigma is <= log(sigma) (0 when
 * none), clipped to len-2; numpy computes low - high of the f32 table in f32. */
double dq_sched_sigma_to_t(double sigma, const float *log_sigmas, int len) {
    double log_sigma = log(sigma > 1e-10 ? sigma : 1e-10);
    int count = 0, best = 0, low_idx = 0;
    for (int i = 0; i < len; i++) { /* argmax of cumsum(dists >= 0): first maximum */
        if (log_sigma - (double)log_sigmas[i] >= 0) count++;
        if (count > best) {
            best = count;
            low_idx = i;
        }
    }
    if (low_idx > len - 2) low_idx = len - 2;
    float low = log_sigmas[low_idx], high = log_sigmas[low_idx + 1];
    double w = ((double)low - log_sigma) / (double)(low - high);
    if (w < 0) w = 0;
    if (w > 1) w = 1;
    return (1 - w) * low_idx + w * (low_idx + 1);
}

void dq_sched_karras(double sigma_min, double sigma_max, int n, double *out) {
    const double rho = 7.0;
    double min_inv_rho = pow(sigma_min, 1 / rho);
    double max_inv_rho = pow(sigma_max, 1 / rho);
    dq_sched_np_linspace(0, 1, n, out); /* the ramp */
    for (int i = 0; i < n; i++)
        out[i] = pow(max_inv_rho + out[i] * (min_inv_rho - max_inv_rho), rho);
}

int dq_sched_spaced(const dq_sched_config_t *cfg, int num, int round_linspace, double *out) {
    int ntt = cfg->num_train_timesteps;
    int len = 0;
    switch (cfg->timestep_spacing) {
    case DQ_SPACING_LINSPACE:
        dq_sched_np_linspace(0, ntt - 1, num, out);
        len = num;
        if (round_linspace)
            for (int i = 0; i < len; i++)
                out[i] = rint(out[i]); /* np.round: half to even */
        break;
    case DQ_SPACING_LEADING: {
        int ratio = ntt / num; /* num_train_timesteps // num_inference_steps */
        for (int i = 0; i < num; i++)
            out[i] = (double)i * ratio + cfg->steps_offset;
        len = num;
        break;
    }
    case DQ_SPACING_TRAILING: {
        double ratio = (double)ntt / num;
        len = dq_sched_np_arange(ntt, 0, -ratio, NULL);
        if (len > num + 1) len = num + 1; /* cannot happen: ceil(ntt/ratio) <= num + 1 */
        dq_sched_np_arange(ntt, 0, -ratio, out);
        for (int i = 0; i < len; i++)
            out[i] = rint(out[i]) - 1;
        /* already descending */
        return len;
    }
    default:
        return 0;
    }
    for (int i = 0; i < len / 2; i++) { /* [::-1] */
        double t = out[i];
        out[i] = out[len - 1 - i];
        out[len - 1 - i] = t;
    }
    return len;
}
