/* broker/server_req.c: a request as the store keeps it (JSON with the job file's field names,
 * built from the wire's SUBMIT_CHUNK request) and back into the wire form for ASSIGN. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "broker/server_int.h"

char *dq_server_req_to_json(const dq_wire_request_t *req) {
    json_t *o = json_object();
    if (!o) return NULL;
    /* The seed is kept as its signed 64-bit pattern: JSON integers in jansson are signed. */
    int bad = json_object_set_new(o, "prompt", json_string(req->prompt ? req->prompt : "")) |
              json_object_set_new(o, "negative_prompt",
                                  json_string(req->negative_prompt ? req->negative_prompt : "")) |
              json_object_set_new(o, "seed", json_integer((json_int_t) req->seed)) |
              json_object_set_new(o, "num_inference_steps", json_integer(req->steps)) |
              json_object_set_new(o, "guidance_scale", json_real(req->guidance)) |
              json_object_set_new(o, "width", json_integer(req->width)) |
              json_object_set_new(o, "height", json_integer(req->height)) |
              json_object_set_new(o, "num_images_per_prompt", json_integer(req->num_images)) |
              json_object_set_new(o, "scheduler", json_string(req->scheduler));
    char *text = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

static int s_uint(json_t *o, const char *key, uint32_t *out) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return -1;
    *out = (uint32_t) json_integer_value(v);
    return 0;
}

int dq_server_req_from_json(const char *json, uint64_t line, dq_wire_request_t *out) {
    memset(out, 0, sizeof *out);
    json_t *o = json_loads(json, 0, NULL);
    if (!o) return -1;
    int rc = -1;
    const char *prompt = json_string_value(json_object_get(o, "prompt"));
    const char *neg = json_string_value(json_object_get(o, "negative_prompt"));
    const char *sched = json_string_value(json_object_get(o, "scheduler"));
    json_t *seed = json_object_get(o, "seed");
    json_t *cfg = json_object_get(o, "guidance_scale");
    if (!prompt || !neg || !sched || !json_is_integer(seed) || !json_is_number(cfg) ||
        strlen(sched) > DQ_PROTO_MAX_NAME)
        goto done;
    if (s_uint(o, "num_inference_steps", &out->steps) || s_uint(o, "width", &out->width) ||
        s_uint(o, "height", &out->height) || s_uint(o, "num_images_per_prompt", &out->num_images))
        goto done;
    out->line = line;
    out->seed = (uint64_t) json_integer_value(seed);
    out->guidance = json_number_value(cfg);
    out->image_first = 0;
    out->image_count = out->num_images;
    strcpy(out->scheduler, sched);
    out->prompt = strdup(prompt);
    out->negative_prompt = strdup(neg);
    if (out->prompt && out->negative_prompt) rc = 0;
done:
    json_decref(o);
    if (rc != 0) {
        free(out->prompt);
        free(out->negative_prompt);
        memset(out, 0, sizeof *out);
    }
    return rc;
}
