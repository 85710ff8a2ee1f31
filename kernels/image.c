/* kernels/image.c: decoded images -> [0, 1] floats and RGB8, as diffusers' VaeImageProcessor.
 *
 * diffusers 0.42 image_processor.py: denormalize is (images / 2 + 0.5).clamp(0, 1) on the float32
 * tensor, pt_to_numpy permutes to NHWC, numpy_to_pil does (images * 255).round().astype("uint8")
 * on the float32 array. x / 2 equals x * 0.5f exactly, and the default rounding mode of rintf is
 * numpy's round half to even. */
#include "kernels/image.h"

#include <math.h>

/* One value through denormalize. x * 0.5f is exact, so even a contracted multiply-add rounds the
 * sum exactly as torch does. */
static float s_denorm(float x) {
    float v = x * 0.5f;
    v = v + 0.5f;
    if (v < 0.0f) v = 0.0f;
    if (v > 1.0f) v = 1.0f;
    return v;
}

void dq_image_postprocess(const float *decoded, int n, int c, int h, int w, float *out) {
    const size_t plane = (size_t) h * (size_t) w;
    for (int b = 0; b < n; b++)
        for (size_t p = 0; p < plane; p++)
            for (int ch = 0; ch < c; ch++)
                out[((size_t) b * plane + p) * (size_t) c + (size_t) ch] =
                    s_denorm(decoded[((size_t) b * (size_t) c + (size_t) ch) * plane + p]);
}

void dq_image_to_rgb8(const float *decoded, int n, int c, int h, int w, uint8_t *rgb) {
    const size_t plane = (size_t) h * (size_t) w;
    for (int b = 0; b < n; b++)
        for (size_t p = 0; p < plane; p++)
            for (int ch = 0; ch < c; ch++) {
                float v = s_denorm(decoded[((size_t) b * (size_t) c + (size_t) ch) * plane + p]);
                float s = v * 255.0f;
                /* v in [0, 1] gives s in [0, 255]; a NaN fails both tests and maps to 0 */
                rgb[((size_t) b * plane + p) * (size_t) c + (size_t) ch] =
                    s >= 0.0f && s <= 255.0f ? (uint8_t) rintf(s) : 0;
            }
}
