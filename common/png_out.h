/* common/png_out.h: RGB8 images to PNG bytes or files, with the text chunks image tools read
 * (AUTOMATIC1111-style "parameters", and the request itself as JSON). */
#ifndef DQ_PNG_OUT_H
#define DQ_PNG_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/job.h"

/* Largest width or height accepted, in pixels (libpng's default user limit is 1,000,000; ours
 * keeps w*h*3 far from overflow and is well above any SD 1.x size). */
#define DQ_PNG_MAX_SIDE 65536

/* How a text chunk is stored. */
typedef enum {
    /* tEXt (Latin-1) when every character fits Latin-1, else iTXt (UTF-8). This is what Pillow's
     * PngInfo.add_text does, so it is what AUTOMATIC1111 writes for "parameters". */
    DQ_PNG_TEXT_AUTO,
    /* Always iTXt, UTF-8, uncompressed, no language tag. */
    DQ_PNG_TEXT_ITXT,
    DQ_PNG_TEXT_MODE_COUNT
} dq_png_text_mode_t;

/* One text chunk to write. */
typedef struct {
    const char *key;  /* borrowed; 1..79 printable ASCII, no leading/trailing/double space */
    const char *text; /* borrowed; UTF-8 */
    dq_png_text_mode_t mode;
} dq_png_text_t;

/* The keywords diffq writes. */
#define DQ_PNG_KEY_PARAMETERS "parameters"
#define DQ_PNG_KEY_REQUEST    "diffq-request"

/* Encodes a width x height RGB8 image (rows top to bottom, 3 bytes a pixel, no padding) with
 * the given text chunks (placed before the image data) into a new malloc'd buffer *out of *outlen
 * bytes, which the caller frees. Returns 0, or -1 with a message in err (bad size, bad keyword,
 * text that is not UTF-8, a libpng error, out of memory); then *out is NULL. */
int dq_png_encode(const uint8_t *rgb, int width, int height, const dq_png_text_t *texts,
                  size_t ntexts, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Writes len bytes to path so that path never holds a partial file: they go to a temporary file
 * beside it, are flushed to disk, then renamed over path. The file gets mode 0666 less the
 * umask. Returns 0, or -1 with a message naming the path in err (the temporary is removed). */
int dq_png_save_bytes(const char *path, const uint8_t *bytes, size_t len, char *err, size_t errlen);

/* dq_png_encode, then dq_png_save_bytes. Returns 0, or -1 with a message in err. */
int dq_png_write_file(const char *path, const uint8_t *rgb, int width, int height,
                      const dq_png_text_t *texts, size_t ntexts, char *err, size_t errlen);

/* The AUTOMATIC1111 webui "parameters" text for image `index` (0-based) of a request:
 *   <prompt>
 *   Negative prompt: <negative>                    (only when the negative prompt is not empty)
 *   Steps: N, Sampler: S, CFG scale: G, Seed: N, Size: WxH, Model: M[, Batch size: B, Batch pos: I]
 * The sampler is req->scheduler, or model_scheduler when the request left it to the model; the
 * "Sampler" entry is left out when both are DQ_SCHED_MODEL, "Model" when model is NULL, and the
 * batch entries when num_images_per_prompt is 1. A value holding ',' ':' or a newline is written
 * as a JSON string, as the webui does. Seed is the request's seed for every image of a batch:
 * one generator draws the whole batch's latents, as in diffusers. Returns a malloc'd string, or
 * NULL when out of memory. */
char *dq_png_parameters_text(const dq_request_t *req, dq_scheduler_t model_scheduler,
                             const char *model, int index);

/* Encodes image `index` of req with two text chunks: "parameters" (dq_png_parameters_text,
 * DQ_PNG_TEXT_AUTO) and "diffq-request" (dq_request_to_json, iTXt). Returns as dq_png_encode. */
int dq_png_encode_request(const uint8_t *rgb, int width, int height, const dq_request_t *req,
                          dq_scheduler_t model_scheduler, const char *model, int index,
                          uint8_t **out, size_t *outlen, char *err, size_t errlen);

#endif
