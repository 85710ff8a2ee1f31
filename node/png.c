/* node/png.c: encodes a rank's image with common/png_out.h. */
#include "node/png.h"

#include <stdio.h>
#include <string.h>

#include "common/png_out.h"

static int s_scheduler(const char *name) {
    if (!name || !*name || strcmp(name, "model") == 0) return DQ_SCHED_MODEL;
    return dq_scheduler_parse(name);
}

int dq_node_png_check(const dq_render_req_t *req, char *err, size_t errlen) {
    if (s_scheduler(req->scheduler) < 0) {
        snprintf(err, errlen, "line %llu: unknown scheduler '%s'", (unsigned long long) req->line,
                 req->scheduler);
        return -1;
    }
    return 0;
}

int dq_node_png_encode(const dq_render_req_t *req, const char *model, uint32_t index,
                       const uint8_t *rgb, int width, int height, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    int sched = s_scheduler(req->scheduler);
    if (sched < 0) return dq_node_png_check(req, err, errlen);
    char id[32];
    snprintf(id, sizeof id, "line-%llu", (unsigned long long) req->line);
    /* Borrowed strings only: the job form is not cleared, so the casts never lead to a free. */
    dq_request_t job = {
        .id = id,
        .id_assigned = true,
        .prompt = (char *) req->prompt,
        .negative_prompt = (char *) req->negative_prompt,
        .seed = req->seed,
        .num_inference_steps = (int) req->steps,
        .guidance_scale = req->guidance,
        .width = (int) req->width,
        .height = (int) req->height,
        .num_images_per_prompt = (int) req->num_images,
        .scheduler = (dq_scheduler_t) sched,
        .line = (size_t) req->line,
    };
    return dq_png_encode_request(rgb, width, height, &job, DQ_SCHED_MODEL, model, (int) index, out,
                                 outlen, err, errlen);
}
