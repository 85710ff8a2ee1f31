/* cli/client.c: request/reply over a DEALER with timeout and retries (see cli/client.h). */
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"

struct dq_client {
    char *endpoint; /* owned */
    zsock_t *sock;  /* owned */
};

const char *dq_client_endpoint(const char *flag) {
    if (flag && *flag) return flag;
    const char *env = getenv("DIFFQ_BROKER");
    return env && *env ? env : DQ_PROTO_DEFAULT_ENDPOINT;
}

static int s_open(dq_client_t *self, char *err, size_t errlen) {
    zsock_destroy(&self->sock);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) {
        snprintf(err, errlen, "cannot create a ZeroMQ socket");
        return -1;
    }
    zsock_set_linger(self->sock, 0);
    zsock_set_maxmsgsize(self->sock, (int64_t) DQ_PROTO_MAX_PNG + 4096);
    if (zsock_connect(self->sock, "%s", self->endpoint) != 0) {
        snprintf(err, errlen, "bad broker endpoint '%s' (expected e.g. tcp://host:5555)",
                 self->endpoint);
        return -1;
    }
    return 0;
}

dq_client_t *dq_client_new(const char *endpoint, char *err, size_t errlen) {
    zsys_handler_set(NULL); /* leave SIGINT to the program */
    dq_client_t *self = calloc(1, sizeof *self);
    if (!self || !(self->endpoint = strdup(endpoint))) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (s_open(self, err, errlen) != 0) dq_client_destroy(&self);
    return self;
}

void dq_client_destroy(dq_client_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_client_t *self = *self_p;
    if (self->sock) {
        dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT, .peer = DQ_PEER_CLIENT};
        zmsg_t *zm = NULL;
        if (dq_proto_encode(&bye, &zm, NULL, 0) == 0) {
            zsock_set_sndtimeo(self->sock, 0);
            zmsg_send(&zm, self->sock);
            zmsg_destroy(&zm);
        }
    }
    zsock_destroy(&self->sock);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

int dq_client_request(dq_client_t *self, const dq_msg_t *req, dq_msg_t *reply, bool retry,
                      char *err, size_t errlen) {
    memset(reply, 0, sizeof *reply);
    int tries = retry ? DQ_CLIENT_TRIES : 1;
    for (int t = 0; t < tries; t++) {
        if (t > 0 && s_open(self, err, errlen) != 0) return -1; /* drop a lost reply's socket */
        zmsg_t *zm = NULL;
        if (dq_proto_encode(req, &zm, err, errlen) != 0) return -1;
        if (zmsg_send(&zm, self->sock) != 0) {
            zmsg_destroy(&zm);
            continue;
        }
        int64_t deadline = zclock_mono() + DQ_CLIENT_TIMEOUT_MS;
        while (zclock_mono() < deadline) {
            zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, (long) (deadline - zclock_mono())) <= 0) continue;
            zmsg_t *in = zmsg_recv(self->sock);
            if (!in) continue;
            char derr[256];
            int rc = dq_proto_decode(in, reply, derr, sizeof derr);
            zmsg_destroy(&in);
            if (rc != 0) continue; /* not for us (garbage): keep waiting */
            if (reply->cmd == DQ_CMD_ERROR ||
                dq_proto_command_dir(reply->cmd) == DQ_DIR_FROM_BROKER)
                return 0;
            dq_msg_clear(reply);
        }
    }
    snprintf(err, errlen, "no answer from %s after %d tr%s of %d s: is diffq-broker running?",
             self->endpoint, tries, tries == 1 ? "y" : "ies", DQ_CLIENT_TIMEOUT_MS / 1000);
    return -1;
}

int dq_client_parse_job(const char *text, uint64_t *job, char *err, size_t errlen) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = text && *text >= '0' && *text <= '9' ? strtoull(text, &end, 10) : 0;
    if (!end || *end || errno || v == 0) {
        snprintf(err, errlen, "'%s' is not a job id (expected a number >= 1)", text ? text : "");
        return -1;
    }
    *job = v;
    return 0;
}

void dq_client_error_text(const dq_msg_t *reply, char *err, size_t errlen) {
    if (reply->cmd == DQ_CMD_ERROR)
        snprintf(err, errlen, "broker: %s: %s", dq_proto_err_code_name((int) reply->error.code),
                 reply->error.message);
    else
        snprintf(err, errlen, "broker: unexpected reply %s", dq_proto_command_name(reply->cmd));
}
