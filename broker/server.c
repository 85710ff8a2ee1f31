/* broker/server.c: the broker's socket, lock, startup recovery and its one event loop: receive
 * and dispatch messages, commit the RESULT batch, run the timers. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/file_batch.h"
#include "broker/server_int.h"
#include "common/log.h"

#define DQ_BROKER_EXPIRE_EVERY_MS 1000 /* lease expiry and serving check period */
#define DQ_BROKER_RECV_BURST      512  /* messages handled before the batch is committed */

void dq_server_params_init(dq_server_params_t *p) {
    memset(p, 0, sizeof *p);
    p->bind = "tcp://*:5555"; /* port DQ_PROTO_DEFAULT_PORT */
    p->state_dir = NULL;
    p->grace_ms = 15000; /* > liveness (3 s) + the node's first reconnect delays */
    p->lease_ms = DQ_PROTO_LEASE_DEFAULT_MS;
    p->upload_timeout_ms = DQ_PROTO_UPLOAD_TIMEOUT_MS;
    p->shard_size = DQ_BROKER_SHARD_SIZE_DEFAULT;
    p->max_attempts = 3;
    p->unserved_ms = DQ_BROKER_UNSERVED_DEFAULT_MS;
}

int64_t dq_server_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Takes state/lock with flock: released by the kernel if we die, so SIGKILL needs no cleanup. */
static int s_lock(dq_server_t *self, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", self->state_dir);
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lock_fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s: %s", path,
                 errno == EWOULDBLOCK ? "another diffq-broker uses this state directory"
                                      : strerror(errno));
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long) getpid());
    if (ftruncate(self->lock_fd, 0) == 0 && pwrite(self->lock_fd, pid, (size_t) n, 0) < 0)
        dq_warn("could not write pid into %s: %s", path, strerror(errno));
    return 0;
}

dq_server_t *dq_server_new(const dq_server_params_t *params, char *err, size_t errlen,
                           int *exit_code) {
    *exit_code = DQ_BROKER_EXIT_STATE;
    dq_server_t *self = zmalloc(sizeof *self);
    self->lock_fd = -1;
    self->params = *params;
    self->bind = strdup(params->bind);
    self->state_dir = strdup(params->state_dir);
    char path[4200];
    if (mkdir(self->state_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state directory %s: %s", self->state_dir, strerror(errno));
        goto fail;
    }
    /* Absolute, so every job's default output folder is too. */
    char *abs = realpath(self->state_dir, NULL);
    if (abs) {
        free(self->state_dir);
        self->state_dir = abs;
    }
    snprintf(path, sizeof path, "%s/out", self->state_dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (s_lock(self, err, errlen) != 0) goto fail;
    dq_store_params_t sp;
    dq_store_params_init(&sp);
    sp.max_attempts = params->max_attempts;
    snprintf(path, sizeof path, "%s/queue.db", self->state_dir);
    self->store = dq_store_open(path, &sp, err, errlen);
    if (!self->store) goto fail;
    int64_t now = dq_server_now();
    self->grace_end_ms = now + params->grace_ms;
    int orphans = 0;
    if (dq_store_recover(self->store, now, self->grace_end_ms, &orphans) != DQ_STORE_OK) {
        snprintf(err, errlen, "recovery: %s", dq_store_errmsg(self->store));
        goto fail;
    }
    if (orphans)
        dq_info("recovered: %d shards stay leased for %lld ms so their nodes can reclaim them",
                orphans, (long long) params->grace_ms);
    self->next_upload = (uint64_t) now; /* grows across restarts: ids are never reused */
    self->files = dq_file_batch_new(DQ_BROKER_FILE_THREADS);
    if (!self->files) {
        snprintf(err, errlen, "cannot start the file writer threads");
        *exit_code = DQ_BROKER_EXIT_FAILED;
        goto fail;
    }
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->router) {
        snprintf(err, errlen, "cannot create a ZeroMQ socket");
        *exit_code = DQ_BROKER_EXIT_FAILED;
        goto fail;
    }
    zsock_set_router_mandatory(self->router, 1);
    zsock_set_maxmsgsize(self->router, (int64_t) DQ_PROTO_MAX_PNG + 4096);
    zsock_set_sndhwm(self->router, 10000);
    zsock_set_sndtimeo(self->router, 0); /* a peer that does not read must not block the loop:
                                            its message is dropped (EAGAIN) instead */
    zsock_set_linger(self->router, 500);
    if (zsock_bind(self->router, "%s", self->bind) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", self->bind, zmq_strerror(zmq_errno()));
        *exit_code = DQ_BROKER_EXIT_BIND;
        goto fail;
    }
    self->dispatch_due = true;
    *exit_code = DQ_BROKER_EXIT_OK;
    return self;
fail:
    dq_server_destroy(&self);
    return NULL;
}

void dq_server_destroy(dq_server_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_server_t *self = *self_p;
    self->closing = true;
    for (int i = 0; i < self->n_nodes; i++) {
        dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT};
        snprintf(bye.disconnect.reason, sizeof bye.disconnect.reason, "broker shutting down");
        dq_server_send(self, self->nodes[i]->identity, &bye);
    }
    while (self->n_nodes > 0)
        dq_server_node_drop(self, self->nodes[0], false, NULL);
    for (int i = 0; i < self->n_pending; i++) {
        zframe_destroy(&self->pending[i].identity);
        dq_msg_clear(&self->pending[i].msg);
    }
    zsock_destroy(&self->router);
    dq_file_batch_destroy(&self->files);
    dq_store_destroy(&self->store);
    if (self->lock_fd >= 0) close(self->lock_fd);
    free(self->bind);
    free(self->state_dir);
    free(self);
    *self_p = NULL;
}

int dq_server_send(dq_server_t *self, zframe_t *identity, const dq_msg_t *msg) {
    dq_bnode_t *node = dq_server_node_find(self, identity);
    if (node && node->unreachable) return -1;
    char err[256];
    zmsg_t *zm = NULL;
    if (dq_proto_encode(msg, &zm, err, sizeof err) != 0) {
        dq_error("cannot encode %s: %s", dq_proto_command_name(msg->cmd), err);
        return -1;
    }
    zframe_t *id = zframe_dup(identity);
    zmsg_prepend(zm, &id);
    if (zmsg_send(&zm, self->router) != 0) {
        int e = zmq_errno();
        zmsg_destroy(&zm);
        dq_debug("send %s failed: %s", dq_proto_command_name(msg->cmd), zmq_strerror(e));
        if (node && e == EHOSTUNREACH && !self->closing) {
            /* Its connection is closed: the node died, or it is reconnecting (a READY on a new
             * connection will take its shards over). Which one, silence will tell: only then
             * are its shards requeued. */
            dq_info("node unreachable node=%s: its connection closed; forgotten unless it "
                    "comes back within %d ms",
                    node->ready.name,
                    DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS);
            node->unreachable = true;
            node->credit = 0;
        }
        return -1;
    }
    if (node) node->last_send_ms = dq_server_now();
    return 0;
}

void dq_server_error(dq_server_t *self, zframe_t *identity, dq_err_code_t code, const char *fmt,
                     ...) {
    dq_msg_t m = {.cmd = DQ_CMD_ERROR, .peer = DQ_PEER_CLIENT};
    m.error.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.error.message, sizeof m.error.message, fmt, ap);
    va_end(ap);
    dq_debug("client error: %s", m.error.message);
    dq_server_send(self, identity, &m);
}

/* Hex of a routing id, for logs. */
static const char *s_peer(zframe_t *id, char *buf, size_t size) {
    size_t n = zframe_size(id), k = 0;
    const uint8_t *d = zframe_data(id);
    for (size_t i = 0; i < n && k + 3 < size; i++)
        k += (size_t) snprintf(buf + k, size - k, "%02x", d[i]);
    buf[k] = '\0';
    return buf;
}

/* One message from the socket. Anything malformed is logged and dropped; the loop goes on. */
static void s_receive(dq_server_t *self, zmsg_t *zm) {
    zframe_t *identity = zmsg_pop(zm);
    char peer[80], err[512];
    if (!identity || zmsg_size(zm) == 0) {
        dq_warn("dropped an empty message");
        zframe_destroy(&identity);
        return;
    }
    dq_msg_t msg;
    int rc = dq_proto_decode(zm, &msg, err, sizeof err);
    if (rc != 0) {
        dq_warn("dropped a bad message: %s peer=%s", err, s_peer(identity, peer, sizeof peer));
        zframe_t *h = zmsg_first(zm);
        /* A client speaking another version learns why (docs/protocol.md, Versions). */
        if (rc == -DQ_PROTO_EHEADER && h && zframe_size(h) == DQ_PROTO_HEADER_LEN &&
            memcmp(zframe_data(h), "DQPC", 4) == 0)
            dq_server_error(self, identity, DQ_ERR_VERSION, "this broker speaks %s",
                            DQ_PROTO_HEADER_CLIENT);
        zframe_destroy(&identity);
        return;
    }
    if (msg.peer == DQ_PEER_CLIENT && !(dq_proto_command_dir(msg.cmd) & DQ_DIR_TO_BROKER)) {
        dq_warn("dropped %s: not a command for the broker peer=%s", dq_proto_command_name(msg.cmd),
                s_peer(identity, peer, sizeof peer));
        dq_server_error(self, identity, DQ_ERR_BAD_REQUEST, "%s is not a request",
                        dq_proto_command_name(msg.cmd));
    } else if (msg.peer == DQ_PEER_NODE) {
        /* A node command the broker does not expect (ASSIGN, STOP...) gets DISCONNECT there. */
        if (msg.cmd == DQ_CMD_RESULT && self->n_pending < DQ_BROKER_BATCH) {
            dq_bnode_t *node = dq_server_node_find(self, identity);
            if (node) {
                node->last_recv_ms = dq_server_now();
                self->pending[self->n_pending].identity = identity;
                self->pending[self->n_pending].msg = msg;
                self->n_pending++;
                return;
            }
        }
        dq_server_node_message(self, identity, &msg);
    } else {
        dq_server_client_message(self, identity, &msg);
    }
    dq_msg_clear(&msg);
    zframe_destroy(&identity);
}

int dq_server_run(dq_server_t *self, volatile int *stop) {
    char *ep = zsock_last_endpoint(self->router); /* the real port when bound to ":*" */
    dq_info("serving bind=%s state=%s", ep ? ep : self->bind, self->state_dir);
    zstr_free(&ep);
    void *sock = zsock_resolve(self->router);
    while (!*stop) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, self->dispatch_due ? 0 : 200);
        if (n < 0 && zmq_errno() != EINTR) {
            dq_error("poll failed: %s", zmq_strerror(zmq_errno()));
            return DQ_BROKER_EXIT_FAILED;
        }
        bool drained = true; /* every message that had arrived is read */
        for (int i = 0; n > 0 && !*stop; i++) {
            if (i == DQ_BROKER_RECV_BURST) {
                drained = false;
                break;
            }
            zmsg_t *zm = zmsg_recv_nowait(self->router);
            if (!zm) break;
            s_receive(self, zm);
            zmsg_destroy(&zm);
            if (self->n_pending == DQ_BROKER_BATCH) dq_server_results_flush(self);
        }
        dq_server_results_flush(self);
        int64_t now = dq_server_now();
        if (now >= self->next_expire_ms) {
            int expired = 0;
            if (dq_store_expire(self->store, now, &expired) != DQ_STORE_OK)
                dq_error("lease expiry: %s", dq_store_errmsg(self->store));
            else if (expired > 0) {
                dq_info("requeued %d shards whose lease ran out", expired);
                self->dispatch_due = true;
            }
            dq_server_check_serving(self, now);
            self->next_expire_ms = now + DQ_BROKER_EXPIRE_EVERY_MS;
        }
        dq_server_nodes_tick(self, now, drained);
        dq_server_uploads_tick(self, now);
        if (self->dispatch_due) dq_server_dispatch(self);
    }
    dq_info("stopping");
    return DQ_BROKER_EXIT_OK;
}
