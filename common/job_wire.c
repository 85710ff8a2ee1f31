/* common/job_wire.c: job requests to and from their wire form (see common/job_wire.h). */
#include "common/job_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dq_request_to_wire(const dq_request_t *r, uint32_t image_first, uint32_t image_count,
                        dq_wire_request_t *w) {
    memset(w, 0, sizeof *w);
    w->line = r->line;
    w->image_first = image_first;
    w->image_count = image_count;
    w->prompt = r->prompt;
    w->negative_prompt = r->negative_prompt;
    w->seed = r->seed;
    w->steps = (uint32_t) r->num_inference_steps;
    w->guidance = r->guidance_scale;
    w->width = (uint32_t) r->width;
    w->height = (uint32_t) r->height;
    const char *sched = dq_scheduler_name(r->scheduler);
    snprintf(w->scheduler, sizeof w->scheduler, "%s", sched ? sched : "model");
    w->num_images = (uint32_t) r->num_images_per_prompt;
    if (!r->id_assigned && r->id) snprintf(w->id, sizeof w->id, "%s", r->id);
}

int dq_request_from_wire(const char *name, const dq_wire_request_t *w, dq_request_t *out,
                         uint32_t *image_first, uint32_t *image_count, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    unsigned long long line = (unsigned long long) w->line;
    /* "" and "model" mean the model's own scheduler (the job file leaves the field out). */
    int sched = DQ_SCHED_MODEL;
    if (w->scheduler[0] && strcmp(w->scheduler, "model") != 0) sched = dq_scheduler_parse(w->scheduler);
    if (sched < 0) {
        snprintf(err, errlen, "%s:%llu: field \"scheduler\": unknown scheduler \"%.64s\"", name, line,
                 w->scheduler);
        return -1;
    }
    char assigned[32];
    snprintf(assigned, sizeof assigned, "line-%llu", line);
    /* Through the canonical JSON and the job parser, so the wire gets exactly the job file's
     * checks (sizes a multiple of 8, limits, id syntax); strings are borrowed, never freed. */
    dq_request_t tmp = {
        .id = w->id[0] ? (char *) w->id : assigned,
        .prompt = w->prompt ? w->prompt : (char *) "",
        .negative_prompt = w->negative_prompt ? w->negative_prompt : (char *) "",
        .seed = w->seed,
        .num_inference_steps = (int) w->steps,
        .guidance_scale = w->guidance,
        .width = (int) w->width,
        .height = (int) w->height,
        .num_images_per_prompt = (int) w->num_images,
        .scheduler = (dq_scheduler_t) sched,
        .line = (size_t) w->line,
    };
    char *json = dq_request_to_json(&tmp);
    if (!json) {
        snprintf(err, errlen, "%s:%llu: out of memory", name, line);
        return -1;
    }
    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    int rc = dq_request_from_json(name, (size_t) w->line, json, &limits, out, err, errlen);
    free(json);
    if (rc != 0) return -1;
    out->id_assigned = w->id[0] == '\0';
    if (w->image_count < 1 || w->image_first >= w->num_images ||
        w->image_count > w->num_images - w->image_first) {
        snprintf(err, errlen, "%s:%llu: images %u..%u are outside the request's %u", name, line,
                 w->image_first, w->image_first + w->image_count, w->num_images);
        dq_request_clear(out);
        return -1;
    }
    if (image_first) *image_first = w->image_first;
    if (image_count) *image_count = w->image_count;
    return 0;
}
