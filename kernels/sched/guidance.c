/* kernels/sched/guidance.c: classifier-free guidance, in f32 as diffusers computes it. */
#include "kernels/sched/sampler.h"

void dq_guidance_combine(const float *uncond, const float *cond, float guidance, float *out,
                         size_t n) {
    /* StableDiffusionPipeline: noise_pred_uncond + guidance_scale * (noise_pred_text -
     * noise_pred_uncond): three f32 roundings (this library is built without FMA contraction). */
    for (size_t k = 0; k < n; k++) {
        float d = cond[k] - uncond[k];
        out[k] = uncond[k] + guidance * d;
    }
}
