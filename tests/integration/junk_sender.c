/* tests/integration/junk_sender.c: sends the broker what a broken or hostile peer might: empty,
 * truncated, oversized and garbage frames, wrong headers, commands under the wrong header, then
 * checks that the broker still answers a well-formed STATUS. Usage: junk_sender EP. Exit 0 when
 * the broker answered after all the junk. */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

static void s_send_frames(zsock_t *sock, int n, const void *const *data, const size_t *sizes) {
    zmsg_t *m = zmsg_new();
    for (int i = 0; i < n; i++) zmsg_addmem(m, data[i], sizes[i]);
    if (zmsg_send(&m, sock) != 0) zmsg_destroy(&m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: junk_sender EP\n");
        return 2;
    }
    zsys_handler_set(NULL);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    zsock_set_linger(sock, 1000);
    zsock_connect(sock, "%s", argv[1]);
    uint8_t cmd_status = DQ_CMD_STATUS, cmd_ready = DQ_CMD_READY, cmd_bad = 200;
    static const uint8_t map0[] = {0x80};                    /* {} */
    static const uint8_t trunc[] = {0x82, 0xa3, 'j', 'o'};   /* map of 2, cut short */
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
