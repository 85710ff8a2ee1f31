/* node/png.h: a rendered image to PNG bytes with its generation parameters, from the backend's
 * request form (node/backend.h); the bridge to common/job.h's request type. */
#ifndef DQ_NODE_PNG_H
#define DQ_NODE_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "node/backend.h"

/* Checks a request's scheduler name ("" and "model" mean the model's own). Returns 0, or -1 with
 * a message in err naming the request's line. */
int dq_node_png_check(const dq_render_req_t *req, char *err, size_t errlen);

/* Encodes image `index` of req (width x height RGB8) as PNG with the "parameters" and
 * "diffq-request" text chunks (common/png_out.h), naming `model`. The request id in the JSON is
 * "line-N" (the wire carries the line, not the id). Returns 0 with a malloc'd *out of *outlen
 * bytes, or -1 with a message in err. */
int dq_node_png_encode(const dq_render_req_t *req, const char *model, uint32_t index,
                       const uint8_t *rgb, int width, int height, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen);

#endif
