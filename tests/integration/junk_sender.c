/* tests/integration/junk_sender.c: sends the broker what a broken or hostile peer might: empty,
 * truncated, oversized and garbage frames, wrong headers, commands under the wrong header, then
 * checks that the broker still answers a well-formed STATUS. Usage: junk_sender EP. Exit 0 when
 * the broker answered after all the junk. With --half-upload it plays a client that vanishes in the
 * middle of a submit instead (--half-upload-disconnect: saying DISCONNECT as it goes). */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

static void s_send_frames(zsock_t *sock, int n, const void *const *data, const size_t *sizes) {
    zmsg_t *m = zmsg_new();
    for (int i = 0; i < n; i++)
        zmsg_addmem(m, data[i], sizes[i]);
    if (zmsg_send(&m, sock) != 0) zmsg_destroy(&m);
}

/* Sends msg and waits (5 s at most) for one decodable reply, which it returns (0) in *reply. */
static int s_request(zsock_t *sock, const dq_msg_t *msg, dq_msg_t *reply) {
    zmsg_t *zm = NULL;
    if (dq_proto_encode(msg, &zm, NULL, 0) != 0 || zmsg_send(&zm, sock) != 0) {
        zmsg_destroy(&zm);
        return -1;
    }
    zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 5000) <= 0) return -1;
    zmsg_t *in = zmsg_recv(sock);
    int rc = in ? dq_proto_decode(in, reply, NULL, 0) : -1;
    zmsg_destroy(&in);
    return rc;
}

/* A client that begins an upload, sends one chunk of its two and vanishes (with DISCONNECT when
 * asked). Returns 0 when the broker accepted the begin and the chunk. */
static int s_half_upload(zsock_t *sock, bool disconnect) {
    dq_msg_t m = {.cmd = DQ_CMD_SUBMIT_BEGIN}, reply;
    snprintf(m.submit_begin.name, sizeof m.submit_begin.name, "half");
    snprintf(m.submit_begin.model, sizeof m.submit_begin.model, "tiny");
    m.submit_begin.requests = 2;
    if (s_request(sock, &m, &reply) != 0 || reply.cmd != DQ_CMD_SUBMIT_READY) return 1;
    dq_wire_request_t req = {.line = 1,
                        .image_count = 1,
                        .prompt = "p",
                        .negative_prompt = "",
                        .seed = 1,
                        .steps = 1,
                        .guidance = 7.5,
                        .width = 64,
                        .height = 64,
                        .scheduler = "model",
                        .num_images = 1};
    dq_msg_t c = {.cmd = DQ_CMD_SUBMIT_CHUNK};
    c.submit_chunk = (dq_msg_submit_chunk_t){reply.submit_ready.upload, 0, &req, 1};
    dq_msg_clear(&reply);
    if (s_request(sock, &c, &reply) != 0 || reply.cmd != DQ_CMD_SUBMIT_CHUNK_OK) return 1;
    dq_msg_clear(&reply);
    if (disconnect) {
        dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT, .peer = DQ_PEER_CLIENT};
        zmsg_t *zm = NULL;
        if (dq_proto_encode(&bye, &zm, NULL, 0) != 0 || zmsg_send(&zm, sock) != 0)
            zmsg_destroy(&zm);
    }
    printf("upload half sent\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 &&
        (!strcmp(argv[2], "--half-upload") || !strcmp(argv[2], "--half-upload-disconnect"))) {
        zsys_handler_set(NULL);
        zsock_t *sock = zsock_new(ZMQ_DEALER);
        zsock_set_linger(sock, 1000);
        zsock_connect(sock, "%s", argv[1]);
        int rc = s_half_upload(sock, strcmp(argv[2], "--half-upload-disconnect") == 0);
        zsock_destroy(&sock);
        return rc;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: junk_sender EP [--half-upload[-disconnect]]\n");
        return 2;
    }
    zsys_handler_set(NULL);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    zsock_set_linger(sock, 1000);
    zsock_connect(sock, "%s", argv[1]);
    uint8_t cmd_status = DQ_CMD_STATUS, cmd_ready = DQ_CMD_READY, cmd_bad = 200;
    static const uint8_t map0[] = {0x80};                         /* {} */
    static const uint8_t trunc[] = {0x82, 0xa3, 'j', 'o'};        /* map of 2, cut short */
    static const uint8_t liar[] = {0xdd, 0xff, 0xff, 0xff, 0xff}; /* array of 4G items, no data */
    size_t big = DQ_PROTO_MAX_BODY + 100;
    uint8_t *huge = calloc(1, big);
    const void *d[5];
    size_t s[5];
    /* 1. a single garbage frame */
    d[0] = "garbage!";
    s[0] = 8;
    s_send_frames(sock, 1, d, s);
    /* 2. wrong header */
    d[0] = "DQPX99", s[0] = 6, d[1] = &cmd_status, s[1] = 1, d[2] = map0, s[2] = 1;
    s_send_frames(sock, 3, d, s);
    /* 3. a client header of another version */
    d[0] = "DQPC02";
    s_send_frames(sock, 3, d, s);
    /* 4. truncated msgpack body */
    d[0] = DQ_PROTO_HEADER_CLIENT, d[2] = trunc, s[2] = sizeof trunc;
    s_send_frames(sock, 3, d, s);
    /* 5. a body that claims 4G elements */
    d[2] = liar, s[2] = sizeof liar;
    s_send_frames(sock, 3, d, s);
    /* 6. an oversized body */
    d[2] = huge, s[2] = big;
    s_send_frames(sock, 3, d, s);
    /* 7. an unknown command byte, and a node command under the client header */
    d[1] = &cmd_bad, d[2] = map0, s[2] = 1;
    s_send_frames(sock, 3, d, s);
    d[1] = &cmd_ready;
    s_send_frames(sock, 3, d, s);
    /* 8. too many frames */
    d[1] = &cmd_status, d[3] = map0, s[3] = 1, d[4] = map0, s[4] = 1;
    s_send_frames(sock, 5, d, s);
    /* 9. a node message without READY first (answered with DISCONNECT) */
    d[0] = DQ_PROTO_HEADER_NODE, d[1] = &cmd_status;
    uint8_t hb = DQ_CMD_HEARTBEAT;
    d[1] = &hb;
    s_send_frames(sock, 3, d, s);
    free(huge);
    /* Then a good STATUS: the broker must still serve. */
    dq_msg_t req = {.cmd = DQ_CMD_STATUS};
    zmsg_t *zm = NULL;
    if (dq_proto_encode(&req, &zm, NULL, 0) != 0 || zmsg_send(&zm, sock) != 0) {
        zmsg_destroy(&zm);
        return 1;
    }
    int64_t deadline = zclock_mono() + 10000;
    int rc = 1;
    while (rc != 0 && zclock_mono() < deadline) {
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 500) <= 0) continue;
        zmsg_t *in = zmsg_recv(sock);
        dq_msg_t reply;
        char err[256];
        if (in && dq_proto_decode(in, &reply, err, sizeof err) == 0) {
            printf("reply %s\n", dq_proto_command_name(reply.cmd));
            if (reply.cmd == DQ_CMD_STATUS_REPLY) rc = 0;
            dq_msg_clear(&reply);
        }
        zmsg_destroy(&in);
    }
    zsock_destroy(&sock);
    if (rc) fprintf(stderr, "junk_sender: no STATUS_REPLY after the junk\n");
    return rc;
}
