/* common/proto.c: DQP framing (header, command, body, raw PNG) over plain byte frames, plus the
 * name tables used in logs. Bodies are in proto_codec.c, the czmq layer in proto_zmq.c. */
#include "common/proto.h"

#include <stdlib.h>
#include <string.h>

#include "common/proto_schema.h"

static const uint8_t s_png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

const char *dq_proto_command_name(int cmd) {
    const dq_cmd_info_t *info = dq_proto_cmd_info(cmd);
    return info ? info->name : "UNKNOWN";
}

dq_peer_kind_t dq_proto_command_peer(int cmd) {
    const dq_cmd_info_t *info = dq_proto_cmd_info(cmd);
    return info ? info->peer : DQ_PEER_KIND_COUNT;
}

dq_dir_t dq_proto_command_dir(int cmd) {
    const dq_cmd_info_t *info = dq_proto_cmd_info(cmd);
    return info ? info->dir : (dq_dir_t) 0;
}

const char *dq_proto_header(dq_peer_kind_t kind) {
    switch (kind) {
    case DQ_PEER_NODE: return DQ_PROTO_HEADER_NODE;
    case DQ_PEER_CLIENT: return DQ_PROTO_HEADER_CLIENT;
    case DQ_PEER_KIND_COUNT: break;
    }
    return NULL;
}

/* A command is valid under a header when it belongs to that peer kind; DISCONNECT is valid
 * under both (a client says goodbye too). */
static bool s_cmd_allowed(int cmd, dq_peer_kind_t kind) {
    return cmd == DQ_CMD_DISCONNECT || dq_proto_command_peer(cmd) == kind;
}

static const char *s_rc_names[DQ_PROTO_RC_COUNT] = {
    [DQ_PROTO_OK] = "ok",
    [DQ_PROTO_EFRAMES] = "wrong number of frames",
    [DQ_PROTO_EHEADER] = "bad protocol header",
    [DQ_PROTO_ECOMMAND] = "unknown command",
    [DQ_PROTO_ESIZE] = "frame too large",
    [DQ_PROTO_EMSGPACK] = "truncated or invalid msgpack",
    [DQ_PROTO_ETRAILING] = "trailing bytes after body",
    [DQ_PROTO_ETYPE] = "wrong type",
    [DQ_PROTO_EMISSING] = "required field missing",
    [DQ_PROTO_EDUPLICATE] = "duplicate key",
    [DQ_PROTO_ECOUNT] = "too many entries",
    [DQ_PROTO_ELENGTH] = "string too long",
    [DQ_PROTO_ERANGE] = "number out of range",
    [DQ_PROTO_EENCODING] = "string not UTF-8",
    [DQ_PROTO_ENOMEM] = "out of memory",
};

const char *dq_proto_strerror(int rc) {
    if (rc < 0) rc = -rc;
    return rc < DQ_PROTO_RC_COUNT ? s_rc_names[rc] : "unknown error";
}

#define NAME_OF(table, v) ((v) >= 0 && (v) < (int) (sizeof(table) / sizeof(table[0])) ? table[v] : "unknown")

const char *dq_proto_fail_class_name(int v) {
    static const char *names[DQ_FAIL_CLASS_COUNT] = {"oom", "model", "input", "internal"};
    return NAME_OF(names, v);
}

const char *dq_proto_stop_reason_name(int v) {
    static const char *names[DQ_STOP_REASON_COUNT] = {"cancelled", "paused", "fenced", "shutdown"};
    return NAME_OF(names, v);
}

const char *dq_proto_job_state_name(int v) {
    static const char *names[DQ_JOB_STATE_COUNT] = {"queued", "running", "paused",
                                                    "done",   "failed",  "cancelled"};
    return NAME_OF(names, v);
}

const char *dq_proto_err_code_name(int v) {
    static const char *names[DQ_ERR_CODE_COUNT] = {
        "none",  "bad-request", "not-found", "state",   "unknown-model",
        "limit", "upload",      "version",   "internal"};
    return NAME_OF(names, v);
}

void dq_msg_clear(dq_msg_t *msg) {
    if (!msg) return;
    const dq_cmd_info_t *info = dq_proto_cmd_info(msg->cmd);
    if (info) {
        dq_proto_body_free(info->body, DQ_MSG_BODY(msg));
        if (info->has_png) free(*(uint8_t **) (void *) ((char *) DQ_MSG_BODY(msg) + info->png_off));
    }
    memset(msg, 0, sizeof *msg);
}

void dq_proto_frames_free(dq_proto_frames_t *frames) {
    if (!frames) return;
    free(frames->body);
    memset(frames, 0, sizeof *frames);
}

/* The PNG of a message that carries one: pointer and size. */
static void s_png_of(const dq_cmd_info_t *info, const dq_msg_t *msg, const uint8_t **png,
                     size_t *size) {
    const char *body = DQ_MSG_CBODY(msg);
    *png = *(const uint8_t *const *) (const void *) (body + info->png_off);
    *size = *(const size_t *) (const void *) (body + info->png_size_off);
}

static int s_check_png(dq_proto_ctx_t *ctx, const uint8_t *png, size_t size) {
    if (size == 0 || !png) return dq_proto_fail(ctx, "png", DQ_PROTO_EFRAMES, "empty PNG frame");
    if (size > DQ_PROTO_MAX_PNG)
        return dq_proto_fail(ctx, "png", DQ_PROTO_ESIZE, "%zu bytes, limit %u", size,
                             DQ_PROTO_MAX_PNG);
    if (size < sizeof s_png_signature || memcmp(png, s_png_signature, sizeof s_png_signature) != 0)
        return dq_proto_fail(ctx, "png", DQ_PROTO_ETYPE, "raw frame is not a PNG (bad signature)");
    return 0;
}

int dq_proto_encode_frames(const dq_msg_t *msg, dq_proto_frames_t *frames, char *err,
                           size_t errlen) {
    memset(frames, 0, sizeof *frames);
    dq_proto_ctx_t ctx = {err, errlen, "encode"};
    const dq_cmd_info_t *info = dq_proto_cmd_info(msg->cmd);
    if (!info) return dq_proto_fail(&ctx, "", DQ_PROTO_ECOMMAND, "command %d", (int) msg->cmd);
    ctx.what = info->name;
    const uint8_t *png = NULL;
    size_t png_size = 0;
    int rc;
    if (info->has_png) {
        s_png_of(info, msg, &png, &png_size);
        if ((rc = s_check_png(&ctx, png, png_size)) != 0) return rc;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    rc = dq_proto_body_encode(&ctx, info->body, DQ_MSG_CBODY(msg), &sb);
    if (rc == 0 && sb.size > DQ_PROTO_MAX_BODY)
        rc = dq_proto_fail(&ctx, "", DQ_PROTO_ESIZE, "body of %zu bytes, limit %u", sb.size,
                           DQ_PROTO_MAX_BODY);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    frames->body = sb.data; /* msgpack's sbuffer allocates with malloc/realloc */
    frames->cmd = (uint8_t) msg->cmd;
    dq_peer_kind_t peer = info->peer;
    if (msg->cmd == DQ_CMD_DISCONNECT) {
        if (msg->peer != DQ_PEER_NODE && msg->peer != DQ_PEER_CLIENT) {
            msgpack_sbuffer_destroy(&sb);
            return dq_proto_fail(&ctx, "peer", DQ_PROTO_ERANGE, "peer kind %d", (int) msg->peer);
        }
        peer = msg->peer;
    }
    const char *header = dq_proto_header(peer);
    frames->data[0] = (const uint8_t *) header;
    frames->size[0] = DQ_PROTO_HEADER_LEN;
    frames->data[1] = &frames->cmd;
    frames->size[1] = 1;
    frames->data[2] = (const uint8_t *) frames->body;
    frames->size[2] = sb.size;
    frames->n = 3;
    if (info->has_png) {
        frames->data[3] = png;
        frames->size[3] = png_size;
        frames->n = 4;
    }
    return 0;
}

/* Frame 0: which peer kind, or an error naming what arrived. */
static int s_decode_header(dq_proto_ctx_t *ctx, const uint8_t *h, size_t n, dq_peer_kind_t *kind) {
    for (int k = 0; k < DQ_PEER_KIND_COUNT; k++) {
        const char *want = dq_proto_header((dq_peer_kind_t) k);
        if (n == DQ_PROTO_HEADER_LEN && memcmp(h, want, n) == 0) {
            *kind = (dq_peer_kind_t) k;
            return 0;
        }
    }
    if (n == DQ_PROTO_HEADER_LEN && memcmp(h, "DQP", 3) == 0 && (h[3] == 'N' || h[3] == 'C'))
        return dq_proto_fail(ctx, "header", DQ_PROTO_EHEADER,
                             "protocol version %.2s, this build speaks %02d (header \"%.6s\")",
                             (const char *) h + 4, DQ_PROTO_VERSION, (const char *) h);
    return dq_proto_fail(ctx, "header", DQ_PROTO_EHEADER,
                         "frame 0 (%zu bytes) is not \"" DQ_PROTO_HEADER_NODE
                         "\" or \"" DQ_PROTO_HEADER_CLIENT "\"",
                         n);
}

int dq_proto_decode_frames(const uint8_t *const *frames, const size_t *sizes, size_t n,
                           dq_msg_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    dq_proto_ctx_t ctx = {err, errlen, "frames"};
    if (n < 3)
        return dq_proto_fail(&ctx, "", DQ_PROTO_EFRAMES,
                             "%zu frames, need header, command and body", n);
    dq_peer_kind_t kind = DQ_PEER_KIND_COUNT;
    int rc = s_decode_header(&ctx, frames[0], sizes[0], &kind);
    if (rc != 0) return rc;
    if (sizes[1] != 1)
        return dq_proto_fail(&ctx, "command", DQ_PROTO_ECOMMAND, "frame 1 has %zu bytes, need 1",
                             sizes[1]);
    int cmd = frames[1][0];
    const dq_cmd_info_t *info = dq_proto_cmd_info(cmd);
    if (!info) return dq_proto_fail(&ctx, "command", DQ_PROTO_ECOMMAND, "unknown command %d", cmd);
    ctx.what = info->name;
    if (!s_cmd_allowed(cmd, kind))
        return dq_proto_fail(&ctx, "command", DQ_PROTO_ECOMMAND, "not a command of header %s",
                             dq_proto_header(kind));
    size_t want = info->has_png ? 4 : 3;
    if (n != want)
        return dq_proto_fail(&ctx, "", DQ_PROTO_EFRAMES, "%zu frames, expected %zu", n, want);
    if (sizes[2] > DQ_PROTO_MAX_BODY)
        return dq_proto_fail(&ctx, "", DQ_PROTO_ESIZE, "body of %zu bytes, limit %u", sizes[2],
                             DQ_PROTO_MAX_BODY);
    if (info->has_png && (rc = s_check_png(&ctx, frames[3], sizes[3])) != 0) return rc;
    out->cmd = (dq_cmd_t) cmd;
    out->peer = kind;
    rc = dq_proto_body_decode(&ctx, info->body, DQ_MSG_BODY(out), frames[2], sizes[2]);
    if (rc == 0 && info->has_png) {
        char *body = DQ_MSG_BODY(out);
        uint8_t *copy = malloc(sizes[3]);
        if (!copy) {
            rc = dq_proto_fail(&ctx, "png", DQ_PROTO_ENOMEM, "out of memory");
        } else {
            memcpy(copy, frames[3], sizes[3]);
            *(uint8_t **) (void *) (body + info->png_off) = copy;
            *(size_t *) (void *) (body + info->png_size_off) = sizes[3];
        }
    }
    if (rc != 0) dq_msg_clear(out);
    return rc;
}
