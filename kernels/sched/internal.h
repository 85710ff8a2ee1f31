/* kernels/sched/internal.h: the sampler object and the schedule arithmetic the families share. */
#ifndef DQ_SCHED_INTERNAL_H
#define DQ_SCHED_INTERNAL_H

#include <stddef.h>

#include "kernels/sched/sampler.h"

#define DQ_SCHED_MAX_HIST 5 /* PNDM: 4 past model outputs + the held sample; LMS: 4 */

struct dq_sampler {
    dq_scheduler_t kind;
    dq_sched_config_t cfg;     /* resolved for this kind (dq_sched_config_for) */
    int steps;                 /* num_inference_steps asked for */
    size_t n;                  /* floats per sample (whole batch) */
    int ncalls;                /* len(timesteps) */
    float *timesteps;          /* owned, ncalls: UNet timesteps */
    int *timesteps_int;        /* owned, ncalls: integer timesteps (PNDM, DDIM, DPM), else NULL */
    float *sigmas;             /* owned, ncalls + 1 (sigma samplers), else NULL */
    float *alphas_cumprod;     /* owned, num_train_timesteps: torch.cumprod(1 - betas), f32 */
    float final_alpha_cumprod; /* PNDM/DDIM: alphas_cumprod[0] or 1 */
    float init_noise_sigma;    /* scheduler.init_noise_sigma */
    int next_call;             /* the i the next step must have */
    float *hist[DQ_SCHED_MAX_HIST]; /* owned history buffers of n floats */
    int hist_len;                   /* how many of hist hold values (family-specific meaning) */
    int counter;                    /* PNDM's self.counter / DPM's lower_order_nums */
    float *tmp;                     /* owned scratch of n floats */
};

/* Family hooks: fill timesteps/sigmas/init_noise_sigma and allocate history (0 or -1 + err). */
int dq_sched_pndm_setup(dq_sampler_t *s, char *err, size_t errlen);
int dq_sched_ddim_setup(dq_sampler_t *s, char *err, size_t errlen);
int dq_sched_euler_setup(dq_sampler_t *s, char *err, size_t errlen);
int dq_sched_lms_setup(dq_sampler_t *s, char *err, size_t errlen);
int dq_sched_dpm_setup(dq_sampler_t *s, char *err, size_t errlen);
/* set_timesteps of Euler/LMS (sigma-based, interpolation_type "linear"): fills s->timesteps,
 * s->sigmas (ncalls + 1, the last 0) and init_noise_sigma; Karras sigmas when karras. */
int dq_sched_sigma_setup(dq_sampler_t *s, int karras, char *err, size_t errlen);
/* One step in place on sample (n floats); rngs only for Euler a. Cannot fail once set up. */
void dq_sched_pndm_step(dq_sampler_t *s, int i, const float *mo, float *sample);
void dq_sched_ddim_step(dq_sampler_t *s, int i, const float *mo, float *sample);
void dq_sched_euler_step(dq_sampler_t *s, int i, const float *mo, float *sample);
void dq_sched_euler_a_step(dq_sampler_t *s, int i, const float *mo, float *sample,
                           dq_rng_t *const *rngs, size_t n_rngs);
void dq_sched_lms_step(dq_sampler_t *s, int i, const float *mo, float *sample);
void dq_sched_dpm_step(dq_sampler_t *s, int i, const float *mo, float *sample);

/* --- schedule arithmetic (schedule.c) --- */

/* torch.linspace(start, end, num, dtype=torch.float32) on the CPU, bit for bit: the kernel
 * computes start + step*i below the middle and end - step*(num-1-i) from it, fused (fmaf). */
void dq_sched_torch_linspace_f32(double start, double end, int num, float *out);
/* alphas_cumprod as diffusers' __init__ builds it: betas in f32 (torch.linspace, ** 2),
 * alphas = 1 - betas in f32, torch.cumprod (which accumulates in double on the CPU). Returns 0,
 * or -1 with err for an unsupported beta_schedule / num_train_timesteps. */
int dq_sched_alphas_cumprod(const dq_sched_config_t *cfg, float *out, char *err, size_t errlen);
/* ((1 - ac) / ac) ** 0.5 elementwise in f32 (the sigma of each training timestep). */
void dq_sched_train_sigmas(const float *alphas_cumprod, int len, float *out);
/* np.linspace(start, stop, num) in float64 (i*step + start, the last one exactly stop). */
void dq_sched_np_linspace(double start, double stop, int num, double *out);
/* np.arange(start, stop, step) length and values for a float step, as numpy fills it
 * (start + i*delta with delta = (start + step) - start). Returns the length; out may be NULL. */
int dq_sched_np_arange(double start, double stop, double step, double *out);
/* np.interp(x, arange(len), fp) for the f32 table fp, in float64. */
double dq_sched_np_interp(double x, const float *fp, int len);
/* diffusers' _sigma_to_t: fractional timestep of sigma by interpolating log sigmas (f32 table). */
double dq_sched_sigma_to_t(double sigma, const float *log_sigmas, int len);
/* diffusers' _convert_to_karras: n sigmas from sigma_max down to sigma_min, rho = 7, float64. */
void dq_sched_karras(double sigma_min, double sigma_max, int n, double *out);
/* The inference timesteps of Euler/LMS/DDIM/PNDM set_timesteps, descending, before the cast:
 * linspace (rounded half to even when round_linspace), leading (i * (ntt // num) + steps_offset)
 * or trailing (round(np.arange(ntt, 0, -ntt/num)) - 1). out holds num + 1 values; returns the
 * count (trailing may, as numpy's arange, give one more than num). */
int dq_sched_spaced(const dq_sched_config_t *cfg, int num, int round_linspace, double *out);
/* Writes a formatted message into err (errlen may be 0). */
void dq_sched_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
