/* common/job_wire.h: the bridge between a job file's request (common/job.h, dq_request_t) and
 * its wire form (common/proto.h, dq_wire_request_t). The job form is the one that is checked
 * and stored; the wire form only carries it. */
#ifndef DQ_JOB_WIRE_H
#define DQ_JOB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/job.h"
#include "common/proto.h"

/* The wire form of r, to render images [image_first, image_first + image_count). Strings are
 * borrowed from r: w must not outlive r and must not be cleared with dq_msg_clear. The id
 * travels only when the line gave one (id_assigned false); the scheduler as its job-file name,
 * "model" for the model's own. */
void dq_request_to_wire(const dq_request_t *r, uint32_t image_first, uint32_t image_count,
                        dq_wire_request_t *w);

/* Limits as wide as the wire carries (sizes 8..DQ_PROTO_MAX_SIDE, guidance up to
 * DQ_PROTO_MAX_GUIDANCE, DQ_PROTO_MAX_IMAGES_PER_PROMPT images): a node renders what its broker
 * accepted, whatever limits that broker applied. */
void dq_job_limits_wire(dq_job_limits_t *limits);

/* The job form of a wire request, checked with every rule a job file's line gets against
 * `limits` (NULL: the job format's defaults, dq_job_limits_init, as diffq submit checks a file),
 * messages naming `name` and the request's line
 * ("job 7:12: field \"width\": ..."). A request without an id is named "line-N" with
 * id_assigned set, as the file parser does. Also checks that the image range lies within
 * num_images_per_prompt and writes it to *image_first and *image_count (either may be NULL).
 * Returns 0 with *out owned by the caller (dq_request_clear), or -1 with *out zeroed and a
 * message in err. */
int dq_request_from_wire(const char *name, const dq_wire_request_t *w,
                         const dq_job_limits_t *limits, dq_request_t *out, uint32_t *image_first,
                         uint32_t *image_count, char *err, size_t errlen);

#endif
