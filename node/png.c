/* node/png.c: encodes a rank's image with common/png_out.h. */
#include "node/png.h"

#include "common/png_out.h"

int dq_node_png_encode(const dq_request_t *req, const char *model, uint32_t index,
                       const uint8_t *rgb, int width, int height, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    return dq_png_encode_request(rgb, width, height, req, DQ_SCHED_MODEL, model, (int) index, out,
                                 outlen, err, errlen);
}
