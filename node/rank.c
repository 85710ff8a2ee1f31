/* node/rank.c: the rank process loop: take shards from the node, render them with the backend,
 * send progress, images (as PNG RESULTs) and the outcome back; stop promptly when told. */
#include "node/rank.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/job_wire.h"
#include "common/log.h"
#include "common/proto.h"
#include "node/backend.h"
#include "node/png.h"
#include "node/rankio.h"

#define MAX_QUEUE 64 /* shards the node may queue on a rank; it sends at most --batch */

typedef struct {
    char spec[DQ_PROTO_MAX_PATH + 1]; /* model spec sent with the shard */
    dq_msg_t assign;                  /* owned; an ASSIGN */
} queued_t;

typedef struct {
    int index;
    dq_rankio_t *io;              /* owned */
    dq_render_backend_t *backend; /* owned */
    char device[DQ_PROTO_MAX_NAME + 1];
    char loaded[DQ_PROTO_MAX_PATH + 1]; /* model spec loaded, "" before */
    queued_t queue[MAX_QUEUE];
    size_t n_queued;
    bool node_gone; /* the pipe closed or broke: leave */
    /* The shard being rendered. */
    const dq_msg_assign_t *cur; /* borrowed from the queued_t being rendered */
    const char *cur_model;
    dq_render_req_t *reqs; /* owned array for cur */
    uint32_t chunk;        /* next RESULT chunk number */
    bool stop;             /* a STOP for cur came */
    uint32_t stop_reason;
    char err[DQ_PROTO_MAX_MESSAGE + 1];
} rank_t;

int dq_rank_fail_class(int render_rc) {
    switch (render_rc) {
    case DQ_RENDER_EOOM:
        return DQ_FAIL_OOM;
    case DQ_RENDER_EMODEL:
        return DQ_FAIL_MODEL;
    case DQ_RENDER_EINPUT:
        return DQ_FAIL_INPUT;
    default:
        return DQ_FAIL_INTERNAL;
    }
}

/* Sends msg to the node; a failure means the node is gone. */
static void s_send(rank_t *self, const dq_msg_t *msg) {
    char err[256];
    if (self->node_gone) return;
    if (dq_rankio_queue_msg(self->io, DQ_RANKIO_DQP, NULL, 0, msg, err, sizeof err) != 0 ||
        dq_rankio_flush_all(self->io, err, sizeof err) != 0) {
        dq_error("cannot send to the node: %s rank=%d", err, self->index);
        self->node_gone = true;
    }
}

static void s_send_stopped(rank_t *self, const dq_msg_assign_t *a, uint32_t reason) {
    dq_msg_t m = {.cmd = DQ_CMD_STOP};
    m.stop = (dq_msg_stop_t){a->job, a->shard, a->attempt, reason};
    s_send(self, &m);
}

static void s_send_failed(rank_t *self, const dq_msg_assign_t *a, int fail_class, const char *msg) {
    dq_msg_t m = {.cmd = DQ_CMD_SHARD_FAILED};
    m.shard_failed =
        (dq_msg_shard_failed_t){a->job, a->shard, a->attempt, (uint32_t) fail_class, ""};
    snprintf(m.shard_failed.message, sizeof m.shard_failed.message, "%s", msg);
    s_send(self, &m);
}

static bool s_same(const dq_msg_assign_t *a, const dq_msg_stop_t *s) {
    return a->job == s->job && a->shard == s->shard && a->attempt == s->attempt;
}

/* Handles one record from the node (outside or during a render). */
static void s_handle(rank_t *self, const dq_rankio_rec_t *rec) {
    char err[512];
    dq_msg_t msg;
    if (rec->kind == DQ_RANKIO_ASSIGN && rec->n >= 1) {
        if (self->n_queued == MAX_QUEUE ||
            dq_rankio_decode_msg(rec, 1, &msg, err, sizeof err) != 0 || msg.cmd != DQ_CMD_ASSIGN) {
            dq_error("bad shard from the node rank=%d", self->index);
            if (self->n_queued < MAX_QUEUE) dq_msg_clear(&msg);
            self->node_gone = true;
            return;
        }
        queued_t *q = &self->queue[self->n_queued++];
        snprintf(q->spec, sizeof q->spec, "%.*s", (int) rec->size[0], (const char *) rec->part[0]);
        q->assign = msg;
        return;
    }
    if (rec->kind == DQ_RANKIO_DQP && dq_rankio_decode_msg(rec, 0, &msg, err, sizeof err) == 0) {
        if (msg.cmd == DQ_CMD_STOP) {
            const dq_msg_stop_t *s = &msg.stop;
            if (self->cur && s_same(self->cur, s)) {
                self->stop = true;
                self->stop_reason = s->reason;
            }
            for (size_t i = 0; i < self->n_queued; i++) {
                if (!s_same(&self->queue[i].assign.assign, s)) continue;
                s_send_stopped(self, &self->queue[i].assign.assign, s->reason);
                dq_msg_clear(&self->queue[i].assign);
                memmove(&self->queue[i], &self->queue[i + 1],
                        (self->n_queued - i - 1) * sizeof self->queue[0]);
                self->n_queued--;
                break;
            }
        }
        dq_msg_clear(&msg);
        return;
    }
    dq_error("unexpected record from the node kind=%u rank=%d", rec->kind, self->index);
    self->node_gone = true;
}

/* Reads whatever the node has sent, without blocking. */
static void s_poll_node(rank_t *self) {
    char err[256];
    struct pollfd p = {dq_rankio_fd(self->io), POLLIN, 0};
    while (!self->node_gone && poll(&p, 1, 0) > 0) {
        int rc = dq_rankio_read(self->io, err, sizeof err);
        if (rc <= 0) self->node_gone = true;
        dq_rankio_rec_t rec;
        while (!self->node_gone && (rc = dq_rankio_next(self->io, &rec, err, sizeof err)) == 1)
            s_handle(self, &rec);
        if (rc < 0) self->node_gone = true;
    }
}

static int s_on_step(void *user, uint32_t step, uint32_t steps) {
    rank_t *self = user;
    dq_msg_t m = {.cmd = DQ_CMD_PROGRESS};
    m.progress =
        (dq_msg_progress_t){self->cur->job, self->cur->shard, self->cur->attempt, step, steps};
    s_send(self, &m);
    s_poll_node(self);
    return self->stop || self->node_gone;
}

static int s_on_image(void *user, size_t req, uint32_t image_index, const uint8_t *rgb, int width,
                      int height, uint32_t elapsed_ms) {
    rank_t *self = user;
    const dq_render_req_t *r = &self->reqs[req];
    dq_msg_t m = {.cmd = DQ_CMD_RESULT};
    char size[32];
    snprintf(size, sizeof size, "%dx%d", width, height);
    dq_meta_t meta[3] = {{"backend", (char *) dq_render_backend_name(self->backend)},
                         {"device", self->device},
                         {"size", size}};
    m.result = (dq_msg_result_t){.job = self->cur->job,
                                 .shard = self->cur->shard,
                                 .attempt = self->cur->attempt,
                                 .chunk = self->chunk,
                                 .line = r->req.line,
                                 .image_index = image_index,
                                 .seed = r->req.seed,
                                 .elapsed_ms = elapsed_ms,
                                 .meta = meta,
                                 .n_meta = 3};
    if (dq_node_png_encode(&r->req, self->cur_model, image_index, rgb, width, height, &m.result.png,
                           &m.result.png_size, self->err, sizeof self->err) != 0)
        return -1;
    s_send(self, &m);
    free(m.result.png);
    self->chunk++;
    return self->node_gone ? -1 : 0;
}

/* Renders the first queued shard and reports its outcome. */
static void s_render_next(rank_t *self) {
    queued_t q = self->queue[0];
    memmove(&self->queue[0], &self->queue[1], (self->n_queued - 1) * sizeof self->queue[0]);
    self->n_queued--;
    const dq_msg_assign_t *a = &q.assign.assign;
    self->cur = a;
    self->cur_model = a->model;
    self->chunk = 0;
    self->stop = false;
    self->err[0] = '\0';
    int rc = DQ_RENDER_OK;
    if (strcmp(q.spec, self->loaded) != 0) {
        self->loaded[0] = '\0';
        rc = dq_render_backend_load(self->backend, q.spec, self->err, sizeof self->err);
        if (rc == DQ_RENDER_OK)
            snprintf(self->loaded, sizeof self->loaded, "%s", q.spec);
        else if (rc != DQ_RENDER_EOOM)
            rc = DQ_RENDER_EMODEL;
    }
    self->reqs = calloc(a->n_requests, sizeof *self->reqs);
    if (rc == DQ_RENDER_OK && !self->reqs) {
        snprintf(self->err, sizeof self->err, "out of memory");
        rc = DQ_RENDER_EOOM;
    }
    /* The job form of each request, with the job file's checks: a bad one is the input's fault. */
    char name[48];
    snprintf(name, sizeof name, "job %" PRIu64, a->job);
    dq_job_limits_t limits; /* the broker applied the job limits; the node takes what it sent */
    dq_job_limits_wire(&limits);
    for (uint32_t i = 0; rc == DQ_RENDER_OK && i < a->n_requests; i++) {
        dq_render_req_t *r = &self->reqs[i];
        if (dq_request_from_wire(name, &a->requests[i], &limits, &r->req, &r->image_first,
                                 &r->image_count, self->err, sizeof self->err) != 0)
            rc = DQ_RENDER_EINPUT;
    }
    if (rc == DQ_RENDER_OK) {
        dq_render_cb_t cb = {self, s_on_step, s_on_image};
        dq_debug("rendering job=%" PRIu64 " shard=%" PRIu64 " attempt=%u rank=%d", a->job, a->shard,
                 a->attempt, self->index);
        rc = dq_render_backend_render(self->backend, self->reqs, a->n_requests, &cb, self->err,
                                      sizeof self->err);
    }
    if (self->stop) {
        s_send_stopped(self, a, self->stop_reason);
    } else if (rc == DQ_RENDER_OK) {
        dq_msg_t m = {.cmd = DQ_CMD_SHARD_DONE};
        m.shard_done = (dq_msg_shard_done_t){a->job, a->shard, a->attempt, self->chunk};
        s_send(self, &m);
    } else if (!self->node_gone) {
        dq_warn("shard failed: %s job=%" PRIu64 " shard=%" PRIu64 " attempt=%u rank=%d class=%s",
                self->err, a->job, a->shard, a->attempt, self->index,
                dq_proto_fail_class_name(dq_rank_fail_class(rc)));
        s_send_failed(self, a, dq_rank_fail_class(rc), self->err);
    }
    for (uint32_t i = 0; self->reqs && i < a->n_requests; i++)
        dq_request_clear(&self->reqs[i].req);
    free(self->reqs);
    self->reqs = NULL;
    self->cur = NULL;
    dq_msg_clear(&q.assign);
}

/* Reads HELLO, creates the backend and loads the first model; tells the node how it went. */
static int s_start(rank_t *self) {
    char err[DQ_PROTO_MAX_MESSAGE + 1] = "";
    dq_rankio_rec_t rec;
    if (dq_rankio_recv(self->io, &rec, err, sizeof err) != 1 || rec.kind != DQ_RANKIO_HELLO ||
        rec.n != DQ_RANKIO_HELLO_PARTS)
        return DQ_RANK_EXIT_PIPE;
    char parts[DQ_RANKIO_HELLO_PARTS][DQ_PROTO_MAX_PATH + 1];
    for (size_t i = 0; i < DQ_RANKIO_HELLO_PARTS; i++)
        snprintf(parts[i], sizeof parts[i], "%.*s", (int) rec.size[i], (const char *) rec.part[i]);
    self->index = atoi(parts[0]);
    char component[32];
    snprintf(component, sizeof component, "rank%d", self->index);
    dq_log_init(component, dq_log_active_level, false);
    snprintf(self->device, sizeof self->device, "%.*s", (int) sizeof self->device - 1, parts[2]);
    dq_render_params_t params = {self->device, (uint32_t) strtoul(parts[3], NULL, 10), parts[4],
                                 (uint32_t) strtoul(parts[6], NULL, 10)};
    int rc = DQ_RENDER_EINTERNAL;
    self->backend = dq_render_backend_new(parts[1], &params, err, sizeof err);
    if (self->backend) {
        rc = dq_render_backend_load(self->backend, parts[5], err, sizeof err);
        if (rc == DQ_RENDER_OK) snprintf(self->loaded, sizeof self->loaded, "%s", parts[5]);
    }
    char cls[16];
    snprintf(cls, sizeof cls, "%d", rc);
    const uint8_t *p[2] = {(const uint8_t *) cls, (const uint8_t *) err};
    size_t sz[2] = {strlen(cls), strlen(err)};
    if (dq_rankio_queue(self->io, DQ_RANKIO_UP, p, sz, rc == DQ_RENDER_OK ? 0 : 2, err,
                        sizeof err) != 0 ||
        dq_rankio_flush_all(self->io, err, sizeof err) != 0)
        return DQ_RANK_EXIT_PIPE;
    if (rc != DQ_RENDER_OK) return DQ_RANK_EXIT_START;
    const char *threads = getenv("OMP_NUM_THREADS");
    dq_info("rank up backend=%s device=%s model=%s rank=%d max_batch=%s threads=%s", parts[1],
            self->device, self->loaded, self->index, parts[6], threads ? threads : "all");
    return 0;
}

int dq_rank_main(int fd) {
    rank_t *self = calloc(1, sizeof *self);
    if (!self) return DQ_RANK_EXIT_PIPE;
    self->io = dq_rankio_new(fd, DQ_RANKIO_MAX_RECORD);
    int code = self->io ? s_start(self) : DQ_RANK_EXIT_PIPE;
    char err[256];
    while (code == 0 && !self->node_gone) {
        if (self->n_queued > 0) {
            s_render_next(self);
            s_poll_node(self);
            continue;
        }
        dq_rankio_rec_t rec;
        int rc = dq_rankio_recv(self->io, &rec, err, sizeof err);
        if (rc < 0) code = DQ_RANK_EXIT_PIPE;
        if (rc <= 0) break;
        s_handle(self, &rec);
    }
    for (size_t i = 0; i < self->n_queued; i++)
        dq_msg_clear(&self->queue[i].assign);
    dq_render_backend_destroy(&self->backend);
    dq_rankio_destroy(&self->io);
    free(self);
    return code;
}
