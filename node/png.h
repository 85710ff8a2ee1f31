/* node/png.h: a rendered image to PNG bytes with its generation parameters (common/png_out.h). */
#ifndef DQ_NODE_PNG_H
#define DQ_NODE_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "common/job.h"

/* Encodes image `index` of req (width x height RGB8) as PNG with the "parameters" and
 * "diffq-request" text chunks (common/png_out.h), naming `model`; the request JSON carries the
 * request's id (or "line-N" when it had none). Returns 0 with a malloc'd *out of *outlen bytes,
 * or -1 with a message in err. */
int dq_node_png_encode(const dq_request_t *req, const char *model, uint32_t index,
                       const uint8_t *rgb, int width, int height, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen);

#endif
