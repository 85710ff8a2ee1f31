/* kernels/image.h: decoded images -> [0, 1] floats and RGB8, as diffusers' VaeImageProcessor. */
#ifndef DQ_IMAGE_H
#define DQ_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* VaeImageProcessor.postprocess(output_type="np"): decoded[n, c, h, w] (NCHW, about [-1, 1]) ->
 * out[n, h, w, c] (NHWC) = clamp(x / 2 + 0.5, 0, 1) in f32. NaN stays NaN (torch's clamp). */
void dq_image_postprocess(const float *decoded, int n, int c, int h, int w, float *out);

/* The same, then numpy_to_pil: (x * 255).round().astype(uint8) in f32 with round half to even;
 * rgb[n, h, w, c] (c is 3 for RGB). A NaN becomes 0 (where numpy's cast is undefined; the
 * reference never produces one). */
void dq_image_to_rgb8(const float *decoded, int n, int c, int h, int w, uint8_t *rgb);

#endif
