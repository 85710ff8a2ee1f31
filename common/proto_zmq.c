/* common/proto_zmq.c: DQP over czmq: zmsg_t <-> dq_msg_t through the pure-bytes layer. Kept apart
 * so the fuzz target builds without ZeroMQ. */
#include <czmq.h>
#include <string.h>

#include "common/proto.h"
#include "common/proto_schema.h"

int dq_proto_encode(const dq_msg_t *msg, zmsg_t **out, char *err, size_t errlen) {
    *out = NULL;
    dq_proto_frames_t frames;
    int rc = dq_proto_encode_frames(msg, &frames, err, errlen);
    if (rc != 0) return rc;
    zmsg_t *zm = zmsg_new();
    for (size_t i = 0; zm && i < frames.n; i++)
        if (zmsg_addmem(zm, frames.data[i], frames.size[i]) != 0) zmsg_destroy(&zm);
    dq_proto_frames_free(&frames);
    if (!zm) {
        dq_proto_ctx_t ctx = {err, errlen, dq_proto_command_name(msg->cmd)};
        return dq_proto_fail(&ctx, "", DQ_PROTO_ENOMEM, "out of memory building zmsg");
    }
    *out = zm;
    return 0;
}

int dq_proto_decode(zmsg_t *msg, dq_msg_t *out, char *err, size_t errlen) {
    const uint8_t *data[DQ_PROTO_MAX_FRAMES];
    size_t sizes[DQ_PROTO_MAX_FRAMES];
    size_t n = zmsg_size(msg);
    if (n > DQ_PROTO_MAX_FRAMES) {
        memset(out, 0, sizeof *out);
        dq_proto_ctx_t ctx = {err, errlen, "frames"};
        return dq_proto_fail(&ctx, "", DQ_PROTO_EFRAMES, "%zu frames, at most %d", n,
                             DQ_PROTO_MAX_FRAMES);
    }
    size_t i = 0;
    for (zframe_t *f = zmsg_first(msg); f && i < n; f = zmsg_next(msg), i++) {
        data[i] = zframe_data(f);
        sizes[i] = zframe_size(f);
    }
    return dq_proto_decode_frames(data, sizes, i, out, err, errlen);
}
