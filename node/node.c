/* node/node.c: the diffq-node event loop: one DEALER to the broker, one socketpair per rank, the
 * signal self-pipe, and the shards in between. */
#include "config.h"

#include "node/node.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/log.h"
#include "node/flow.h"
#include "node/rankio.h"
#include "node/supervise.h"

#define TICK_MS              100  /* poll timeout: timers are checked at least this often */
#define DISCONNECT_LINGER_MS 2000 /* how long a final DISCONNECT may take to leave */
/* A RESULT not acknowledged this long is sent again: the RESULT or its RESULT_ACK was lost, and
 * without a resend the window would stay full forever. A live broker acknowledges within a
 * liveness period; a late original is harmless, the broker acknowledges repeats as duplicates. */
#define RESULT_RESEND_MS (DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS)

typedef enum {
    SH_WAITING,   /* accepted, not yet given to a rank */
    SH_RENDERING, /* on a rank */
    SH_RENDERED,  /* the rank finished; waiting until every RESULT is acknowledged */
    SH_STOPPING,  /* STOP sent to the rank; waiting for it to confirm */
    SH_ABANDONED, /* stopped, or failed and reported (self->fails); waiting only for acks in
                     flight */
} sh_state_t;

static const char *s_state_names[] = {"waiting", "rendering", "rendered", "stopping", "abandoned"};

typedef enum { RES_UNSENT, RES_SENT, RES_DONE } res_state_t;

typedef struct {
    dq_msg_t msg; /* owned RESULT; cleared once acknowledged or dropped */
    res_state_t state;
    int64_t sent_at; /* ms: last sent (RES_SENT), for the resend timeout */
} result_t;

typedef struct shard_t {
    dq_msg_t assign;              /* owned ASSIGN */
    const dq_node_model_t *model; /* borrowed from the params */
    int rank;                     /* rank index, -1 before dispatch */
    sh_state_t state;
    uint32_t step, steps; /* progress over the shard */
    int64_t progress_at;  /* ms: last PROGRESS sent */
    bool progress_due;    /* a step came that no PROGRESS has reported yet */
    result_t *res;        /* owned; res[i] is chunk i */
    size_t n_res, cap_res;
    size_t first_open; /* res[0..first_open) are done */
    uint32_t inflight; /* sent, not acknowledged */
    uint64_t inflight_bytes; /* their PNGs' bytes */
    uint32_t unsent;
    struct shard_t *next;
} shard_t;

struct dq_node_t {
    dq_node_params_t p; /* copy; strings borrowed from the caller */
    dq_rank_t *ranks;   /* owned; p.n_ranks */
    dq_rank_hello_t hello;
    shard_t *shards; /* owned list, in arrival order */
    dq_credit_t credit;
    uint32_t inflight;  /* RESULTs sent and not acknowledged, all shards */
    uint64_t inflight_bytes; /* their PNGs' bytes */
    uint64_t boot;      /* READY.boot: this process's number, the same on every connection */
    zsock_t *dealer;    /* owned; NULL while waiting to reconnect */
    int64_t heard_at;   /* ms: last message on this connection (or its start) */
    int64_t contact_at; /* ms: last message from any broker (or the node's start) */
    int64_t sent_at;    /* ms: last message sent */
    int64_t reconnect_at;
    dq_backoff_t backoff;
    dq_credit_sync_t sync; /* this connection's credit counts (flow.h) */
    dq_assign_seqs_t seqs; /* this connection's ASSIGN numbers, lost ones to report (flow.h) */
    dq_fail_reports_t fails; /* SHARD_FAILEDs with repeats to go, on any connection (flow.h) */
    int64_t synced_at;     /* ms: last HEARTBEAT sent (it carries the held shards) */
    bool draining;
    int64_t drain_deadline; /* ms; 0: none */
    bool done;
    int exit_code;
};

/* ---- Broker connection ------------------------------------------------------------------------
 */

static void s_send(dq_node_t *self, const dq_msg_t *msg) {
    if (!self->dealer) return;
    char err[256];
    zmsg_t *z = NULL;
    if (dq_proto_encode(msg, &z, err, sizeof err) != 0) {
        dq_error("cannot encode %s: %s", dq_proto_command_name(msg->cmd), err);
        return;
    }
    if (zmsg_send(&z, self->dealer) != 0) {
        /* Full queue towards an unreachable broker: PROGRESS is repeated, RESULTs are resent
         * after a reconnect, a lost SHARD_DONE ends in a lease expiry. */
        dq_debug("dropped %s: %s", dq_proto_command_name(msg->cmd), zmq_strerror(errno));
        zmsg_destroy(&z);
        return;
    }
    self->sent_at = dq_now_ms();
}

static void s_send_ready(dq_node_t *self) {
    /* A job may name a model by its name or by the path it was given here (see s_on_assign),
     * so both are announced: the broker leases a job only to nodes that serve its model. */
    char *models[DQ_PROTO_MAX_MODELS], *paths[DQ_PROTO_MAX_MODELS];
    for (uint32_t i = 0; i < self->p.n_models; i++) {
        models[i] = self->p.models[i].name;
        paths[i] = strcmp(self->p.models[i].spec, self->p.models[i].name) == 0
                       ? ""
                       : self->p.models[i].spec;
    }
    dq_msg_t m = {.cmd = DQ_CMD_READY};
    snprintf(m.ready.name, sizeof m.ready.name, "%s", self->p.name);
    snprintf(m.ready.version, sizeof m.ready.version, "diffq %s", PACKAGE_VERSION);
    m.ready.proto_minor = DQ_PROTO_MINOR;
    m.ready.ranks = self->p.n_ranks;
    m.ready.capacity = self->p.n_ranks * self->p.batch;
    m.ready.devices = self->p.devices;
    m.ready.n_devices = self->p.n_devices;
    m.ready.models = models;
    m.ready.n_models = self->p.n_models;
    m.ready.paths = paths;
    m.ready.n_paths = self->p.n_models;
    m.ready.max_batch = self->p.max_batch; /* the broker fits shards to it */
    m.ready.boot = self->boot; /* tells a reconnect from a restart */
    s_send(self, &m);
}

/* Sends every SHARD_FAILED that has repeats to go once more, word for word (flow.h): before a
 * HEARTBEAT, and right after READY on a new connection, so the broker hears of a failure before a
 * held list that leaves the shard out (which it would take for an ASSIGN lost on a connection the
 * node has left, and requeue without counting the attempt). */
static void s_repeat_failures(dq_node_t *self, const char *when) {
    if (!self->dealer || self->fails.q.n == 0) return;
    for (uint32_t i = 0; i < self->fails.q.n; i++) {
        dq_msg_t m = {.cmd = DQ_CMD_SHARD_FAILED};
        m.shard_failed = self->fails.msg[i];
        dq_debug("SHARD_FAILED again %s job=%" PRIu64 " shard=%" PRIu64 " attempt=%u left=%u", when,
                 m.shard_failed.job, m.shard_failed.shard, m.shard_failed.attempt,
                 self->fails.q.left[i] - 1u);
        s_send(self, &m);
    }
    dq_fails_sent(&self->fails);
}

/* A shard attempt failed: SHARD_FAILED now when connected, and again with the next HEARTBEATs
 * (or after the next READY), since one lost message would leave the shard to its lease. */
static void s_report_failure(dq_node_t *self, const dq_msg_shard_failed_t *f) {
    dq_msg_t m = {.cmd = DQ_CMD_SHARD_FAILED};
    m.shard_failed = *f;
    s_send(self, &m);
    if (dq_fails_add(&self->fails, f, self->dealer != NULL))
        dq_warn("more than %d SHARD_FAILEDs to repeat at once; the oldest's last repeats are "
                "dropped",
                DQ_FAIL_PENDING);
}

/* HEARTBEAT with what the node holds and the ASSIGNs it judged lost (minor 5; an older broker
 * ignores the keys): the broker requeues a lost ASSIGN's shard at once without costing it an
 * attempt, and forgets shards the node no longer holds (docs/protocol.md, "Held-shard sync"). */
static void s_heartbeat(dq_node_t *self) {
    s_repeat_failures(self, "with a HEARTBEAT");
    uint64_t held[DQ_PROTO_MAX_NODE_SHARDS], lost[DQ_PROTO_MAX_LOST_ASSIGNS];
    dq_msg_t m = {.cmd = DQ_CMD_HEARTBEAT};
    dq_msg_heartbeat_t *hb = &m.heartbeat;
    uint32_t n = 0;
    const shard_t *sh = self->shards;
    for (; sh && n < DQ_PROTO_MAX_NODE_SHARDS; sh = sh->next)
        held[n++] = sh->assign.assign.shard;
    if (!sh) { /* the list is complete: only then may the broker judge by it (minor set) */
        hb->minor = DQ_PROTO_MINOR;
        hb->held = held;
        hb->n_held = n;
    }
    hb->lost = lost;
    hb->n_lost = dq_seqs_report(&self->seqs, lost);
    s_send(self, &m); /* the arrays are the stack's: m is not cleared */
    self->synced_at = dq_now_ms();
}

/* A new DEALER (never reuse one after the broker went silent: its queue may be stale). */
static void s_connect(dq_node_t *self) {
    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->dealer) {
        dq_error("cannot create a socket: %s", zmq_strerror(errno));
        self->done = true;
        self->exit_code = DQ_NODE_EXIT_INTERNAL;
        return;
    }
    zsock_set_linger(self->dealer, 0);
    zsock_set_sndtimeo(self->dealer, 0);
    zsock_set_rcvtimeo(self->dealer, 0);
    if (zsock_connect(self->dealer, "%s", self->p.broker) != 0) {
        dq_error("cannot connect to %s: %s", self->p.broker, zmq_strerror(errno));
        zsock_destroy(&self->dealer);
        self->done = true;
        self->exit_code = DQ_NODE_EXIT_USAGE;
        return;
    }
    dq_info("connecting broker=%s", self->p.broker);
    self->heard_at = dq_now_ms();
    dq_credit_reset(&self->credit);
    self->sync = (dq_credit_sync_t){0};
    dq_seqs_reset(&self->seqs);
    self->synced_at = self->heard_at;
    /* What the old connection had in flight is sent again (the broker ignores repeats). */
    self->inflight = 0;
    self->inflight_bytes = 0;
    for (shard_t *sh = self->shards; sh; sh = sh->next) {
        /* Only shards still wanted resend; a stopped or failed shard's images are dropped. */
        bool wanted = sh->state == SH_RENDERING || sh->state == SH_RENDERED;
        for (size_t i = sh->first_open; i < sh->n_res; i++) {
            if (sh->res[i].state != RES_SENT) continue;
            if (wanted) {
                sh->res[i].state = RES_UNSENT;
                sh->unsent++;
            } else {
                dq_msg_clear(&sh->res[i].msg);
                sh->res[i].state = RES_DONE;
            }
        }
        sh->inflight = 0;
        sh->inflight_bytes = 0;
    }
    s_send_ready(self);
    s_repeat_failures(self, "after READY");
}

static void s_lose_broker(dq_node_t *self, const char *why) {
    uint32_t delay = dq_backoff_next(&self->backoff);
    dq_warn("lost the broker (%s); reconnecting in %u ms broker=%s", why, delay, self->p.broker);
    zsock_destroy(&self->dealer);
    self->reconnect_at = dq_now_ms() + delay;
}

/* ---- Shards -----------------------------------------------------------------------------------
 */

static shard_t *s_find(dq_node_t *self, uint64_t job, uint64_t shard, uint32_t attempt) {
    for (shard_t *sh = self->shards; sh; sh = sh->next)
        if (sh->assign.assign.job == job && sh->assign.assign.shard == shard &&
            sh->assign.assign.attempt == attempt)
            return sh;
    return NULL;
}

static void s_shard_free(shard_t *sh) {
    for (size_t i = 0; i < sh->n_res; i++)
        dq_msg_clear(&sh->res[i].msg);
    free(sh->res);
    dq_msg_clear(&sh->assign);
    free(sh);
}

static void s_shard_remove(dq_node_t *self, shard_t *sh) {
    for (shard_t **pp = &self->shards; *pp; pp = &(*pp)->next)
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    self->inflight -= sh->inflight;
    self->inflight_bytes -= sh->inflight_bytes;
    dq_credit_release(&self->credit);
    s_shard_free(sh);
}

/* Results not yet sent are dropped (the shard was stopped or failed). */
static void s_drop_unsent(shard_t *sh) {
    for (size_t i = sh->first_open; i < sh->n_res; i++)
        if (sh->res[i].state == RES_UNSENT) {
            dq_msg_clear(&sh->res[i].msg);
            sh->res[i].state = RES_DONE;
        }
    sh->unsent = 0;
}

static void s_progress(dq_node_t *self, shard_t *sh) {
    const dq_msg_assign_t *a = &sh->assign.assign;
    dq_msg_t m = {.cmd = DQ_CMD_PROGRESS};
    m.progress = (dq_msg_progress_t){a->job, a->shard, a->attempt, sh->step, sh->steps};
    s_send(self, &m);
    sh->progress_at = dq_now_ms();
    sh->progress_due = false;
}

static void s_fail_now(dq_node_t *self, const dq_msg_assign_t *a, int cls, const char *msg) {
    dq_msg_shard_failed_t f = {a->job, a->shard, a->attempt, (uint32_t) cls, ""};
    snprintf(f.message, sizeof f.message, "%s", msg);
    s_report_failure(self, &f);
}

static void s_on_assign(dq_node_t *self, dq_msg_t *msg) {
    const dq_msg_assign_t *a = &msg->assign;
    /* The same attempt twice (a repeated message) is one shard: running it twice would answer
     * only one copy's RESULT_ACKs and keep the other's window full. */
    if (s_find(self, a->job, a->shard, a->attempt)) {
        dq_info("ignoring a repeated ASSIGN job=%" PRIu64 " shard=%" PRIu64 " attempt=%u",
                a->job, a->shard, a->attempt);
        return;
    }
    if (!dq_seqs_receive(&self->seqs, a->seq)) {
        /* Judged lost and reported (its shard is requeued), or a repeat of one already taken. */
        dq_info("dropping an ASSIGN judged lost or taken before job=%" PRIu64 " shard=%" PRIu64
                " attempt=%u seq=%" PRIu64,
                a->job, a->shard, a->attempt, a->seq);
        return;
    }
    self->sync.received++;
    if (dq_credit_take(&self->credit) != 0) {
        /* A broker without credit sync pushed unasked work. One that numbers its ASSIGNs
         * (minor 5) syncs credit, even before its first HEARTBEAT has arrived. */
        if (!self->sync.primed && a->seq == 0) {
            dq_error("broker assigned a shard without credit job=%" PRIu64 " shard=%" PRIu64,
                     a->job, a->shard);
            s_fail_now(self, a, DQ_FAIL_INTERNAL, "node did not ask for this shard (no credit)");
            return;
        }
        /* A credit-syncing broker counted more credit than asked (a CREDIT repeated on the way):
         * the shard is queued like any other rather than failed, which would cost it an attempt
         * and count against this node; credit sync then stops expecting it. */
        dq_warn("broker assigned a shard without credit outstanding; taking it job=%" PRIu64
                " shard=%" PRIu64,
                a->job, a->shard);
        dq_credit_take_unasked(&self->credit);
    }
    const dq_node_model_t *model = NULL;
    /* A job names a model as the node announces it, or by the same path it was given. */
    for (uint32_t i = 0; i < self->p.n_models; i++)
        if (strcmp(self->p.models[i].name, a->model) == 0 ||
            strcmp(self->p.models[i].spec, a->model) == 0)
            model = &self->p.models[i];
    shard_t *sh = model ? calloc(1, sizeof *sh) : NULL;
    if (!sh) {
        char why[DQ_PROTO_MAX_MESSAGE];
        snprintf(why, sizeof why, model ? "node out of memory" : "model '%s' is not served here",
                 a->model);
        s_fail_now(self, a, model ? DQ_FAIL_OOM : DQ_FAIL_MODEL, why);
        dq_credit_release(&self->credit);
        return;
    }
    sh->assign = *msg; /* takes ownership */
    memset(msg, 0, sizeof *msg);
    sh->model = model;
    sh->rank = -1;
    sh->state = SH_WAITING;
    for (uint32_t i = 0; i < sh->assign.assign.n_requests; i++)
        sh->steps += sh->assign.assign.requests[i].steps;
    sh->progress_at = dq_now_ms();
    shard_t **pp = &self->shards;
    while (*pp)
        pp = &(*pp)->next;
    *pp = sh;
    dq_info("assigned job=%" PRIu64 " shard=%" PRIu64 " attempt=%u requests=%u",
            sh->assign.assign.job, sh->assign.assign.shard, sh->assign.assign.attempt,
            sh->assign.assign.n_requests);
}

/* A sent RESULT leaves the window: acknowledged, or given up. */
static void s_result_done(dq_node_t *self, shard_t *sh, result_t *r) {
    sh->inflight--;
    self->inflight--;
    sh->inflight_bytes -= r->msg.result.png_size;
    self->inflight_bytes -= r->msg.result.png_size;
    dq_msg_clear(&r->msg);
    r->state = RES_DONE;
}

static void s_on_ack(dq_node_t *self, const dq_msg_result_ack_t *ack) {
    shard_t *sh = s_find(self, ack->job, ack->shard, ack->attempt);
    if (!sh || ack->chunk >= sh->n_res || sh->res[ack->chunk].state != RES_SENT) {
        dq_debug("ignoring RESULT_ACK job=%" PRIu64 " shard=%" PRIu64 " attempt=%u chunk=%u",
                 ack->job, ack->shard, ack->attempt, ack->chunk);
        return;
    }
    s_result_done(self, sh, &sh->res[ack->chunk]);
    while (sh->first_open < sh->n_res && sh->res[sh->first_open].state == RES_DONE)
        sh->first_open++;
    if (!ack->stored)
        dq_info("broker dropped a result job=%" PRIu64 " shard=%" PRIu64 " attempt=%u chunk=%u",
                ack->job, ack->shard, ack->attempt, ack->chunk);
}

static void s_on_stop(dq_node_t *self, const dq_msg_stop_t *stop) {
    shard_t *sh = s_find(self, stop->job, stop->shard, stop->attempt);
    if (!sh) return;
    dq_info("stopping job=%" PRIu64 " shard=%" PRIu64 " attempt=%u reason=%s state=%s", stop->job,
            stop->shard, stop->attempt, dq_proto_stop_reason_name((int) stop->reason),
            s_state_names[sh->state]);
    s_drop_unsent(sh);
    switch (sh->state) {
    case SH_WAITING:
        s_shard_remove(self, sh);
        break;
    case SH_RENDERING: {
        dq_msg_t m = {.cmd = DQ_CMD_STOP};
        m.stop = *stop;
        char err[256];
        dq_rank_t *r = &self->ranks[sh->rank];
        if (r->io && dq_rankio_queue_msg(r->io, DQ_RANKIO_DQP, NULL, 0, &m, err, sizeof err) != 0)
            dq_error("cannot tell rank %d to stop: %s", sh->rank, err);
        sh->state = SH_STOPPING;
        break;
    }
    case SH_RENDERED:
        sh->state = SH_ABANDONED;
        break;
    default:
        break;
    }
}

/* A broker HEARTBEAT with its credit counts: repairs a lost CREDIT or ASSIGN (flow.h). */
static void s_on_credit_sync(dq_node_t *self, const dq_msg_heartbeat_t *hb) {
    uint32_t resend, lost;
    self->sync.numbered = hb->minor >= 5;
    dq_credit_sync(&self->credit, &self->sync, hb->credit_total, hb->assigned_total, &resend,
                   &lost);
    /* A broker of minor 5 numbers its ASSIGNs: name the lost ones, so it requeues them now. */
    uint32_t named = hb->minor >= 5 ? dq_seqs_heartbeat(&self->seqs, hb->assigned_total,
                                                        dq_now_ms())
                                    : 0;
    if (lost)
        dq_warn("%u ASSIGN(s) the broker sent never arrived; asking for that credit again",
                lost); /* from an older broker, their leases expire and requeue the shards */
    if (named) {
        dq_warn("%u ASSIGN(s) the broker sent never arrived; naming them to it (it requeues their "
                "shards) and asking for that credit again",
                named);
        dq_credit_lost(&self->credit, named);
        s_heartbeat(self);
    }
    if (resend) {
        dq_warn("the broker never counted %u credit; asking again", resend);
        dq_msg_t m = {.cmd = DQ_CMD_CREDIT};
        m.credit.credit = resend; /* already counted as asked: not new credit */
        s_send(self, &m);
    }
}

static void s_on_broker(dq_node_t *self) {
    for (int budget = 0; budget < 256 && self->dealer; budget++) {
        zmsg_t *z = zmsg_recv(self->dealer);
        if (!z) return;
        int64_t now = dq_now_ms();
        self->heard_at = self->contact_at = now;
        dq_backoff_reset(&self->backoff);
        dq_msg_t msg;
        char err[512];
        int rc = dq_proto_decode(z, &msg, err, sizeof err);
        zmsg_destroy(&z);
        if (rc != 0) {
            dq_warn("bad message from the broker: %s", err);
            continue;
        }
        if (!(dq_proto_command_dir(msg.cmd) & DQ_DIR_FROM_BROKER)) {
            dq_warn("broker sent %s, which only nodes send", dq_proto_command_name(msg.cmd));
        } else if (msg.cmd == DQ_CMD_ASSIGN) {
            s_on_assign(self, &msg);
        } else if (msg.cmd == DQ_CMD_RESULT_ACK) {
            s_on_ack(self, &msg.result_ack);
        } else if (msg.cmd == DQ_CMD_STOP) {
            s_on_stop(self, &msg.stop);
        } else if (msg.cmd == DQ_CMD_HEARTBEAT && msg.heartbeat.minor >= 3) {
            s_on_credit_sync(self, &msg.heartbeat);
        } else if (msg.cmd == DQ_CMD_DISCONNECT) {
            s_lose_broker(self, msg.disconnect.reason[0] ? msg.disconnect.reason
                                                         : "broker sent DISCONNECT");
        }
        dq_msg_clear(&msg);
    }
}

/* ---- Ranks ------------------------------------------------------------------------------------
 */

static void s_update_capacity(dq_node_t *self) {
    uint32_t cap = 0;
    for (uint32_t i = 0; i < self->p.n_ranks; i++)
        if (self->ranks[i].state == DQ_RANK_UP) cap += self->p.batch;
    dq_credit_set_capacity(&self->credit, cap);
}

static void s_fatal(dq_node_t *self, int code) {
    self->done = true;
    self->exit_code = code;
}

static void s_rank_died(dq_node_t *self, dq_rank_t *r) {
    char desc[128];
    bool was_up = r->state == DQ_RANK_UP;
    dq_rank_reap(r, desc, sizeof desc);
    for (shard_t *sh = self->shards; sh; sh = sh->next) {
        if (sh->rank != r->index) continue;
        if (sh->state == SH_RENDERING) {
            const dq_msg_assign_t *a = &sh->assign.assign;
            dq_msg_shard_failed_t f = {a->job, a->shard, a->attempt, DQ_FAIL_INTERNAL, ""};
            snprintf(f.message, sizeof f.message, "rank %d crashed: %s", r->index, desc);
            s_report_failure(self, &f);
            s_drop_unsent(sh);
            sh->state = SH_ABANDONED;
        } else if (sh->state == SH_STOPPING) {
            sh->state = SH_ABANDONED;
        }
    }
    if (!was_up && ++r->failed_starts >= DQ_NODE_RANK_START_TRIES) {
        dq_error("rank %d died %d times before it was up (%s); giving up", r->index,
                 r->failed_starts, desc);
        s_fatal(self, DQ_NODE_EXIT_RANK);
    }
    uint32_t delay = dq_backoff_next(&r->backoff);
    r->restart_at = dq_now_ms() + delay;
    dq_error("rank %s; restarting in %u ms rank=%d", desc, delay, r->index);
    s_update_capacity(self);
}

static void s_on_rank_msg(dq_node_t *self, dq_rank_t *r, dq_msg_t *msg) {
    uint64_t job, shard;
    uint32_t att;
    switch (msg->cmd) {
    case DQ_CMD_RESULT:
        job = msg->result.job, shard = msg->result.shard, att = msg->result.attempt;
        break;
    case DQ_CMD_SHARD_DONE:
        job = msg->shard_done.job, shard = msg->shard_done.shard, att = msg->shard_done.attempt;
        break;
    case DQ_CMD_SHARD_FAILED:
        job = msg->shard_failed.job, shard = msg->shard_failed.shard,
        att = msg->shard_failed.attempt;
        break;
    case DQ_CMD_STOP:
        job = msg->stop.job, shard = msg->stop.shard, att = msg->stop.attempt;
        break;
    case DQ_CMD_PROGRESS:
        job = msg->progress.job, shard = msg->progress.shard, att = msg->progress.attempt;
        break;
    default:
        dq_error("rank %d sent %s", r->index, dq_proto_command_name(msg->cmd));
        return;
    }
    shard_t *sh = s_find(self, job, shard, att);
    if (!sh || sh->rank != r->index) return;
    bool rendering = sh->state == SH_RENDERING;
    switch (msg->cmd) {
    case DQ_CMD_PROGRESS:
        if (!rendering) return;
        sh->step = msg->progress.step;
        sh->steps = msg->progress.steps;
        sh->progress_due = true;
        if (sh->step >= sh->steps || dq_now_ms() - sh->progress_at >= DQ_PROTO_PROGRESS_MIN_MS)
            s_progress(self, sh);
        return;
    case DQ_CMD_RESULT:
        if (!rendering) return;
        if (sh->n_res == sh->cap_res) {
            size_t cap = sh->cap_res ? sh->cap_res * 2 : 16;
            result_t *res = realloc(sh->res, cap * sizeof *res);
            if (!res) {
                dq_error("out of memory for a result; dropping it");
                return;
            }
            sh->res = res;
            sh->cap_res = cap;
        }
        msg->result.chunk = (uint32_t) sh->n_res;
        sh->res[sh->n_res++] = (result_t){*msg, RES_UNSENT, 0};
        memset(msg, 0, sizeof *msg);
        sh->unsent++;
        return;
    case DQ_CMD_SHARD_DONE:
        if (!rendering) return;
        sh->state = SH_RENDERED;
        break;
    case DQ_CMD_SHARD_FAILED:
        if (rendering) {
            s_report_failure(self, &msg->shard_failed);
            s_drop_unsent(sh);
        }
        sh->state = SH_ABANDONED;
        break;
    default: /* STOP: the rank has stopped it */
        sh->state = SH_ABANDONED;
        break;
    }
    if (r->held > 0) r->held--;
}

static void s_on_rank_up(dq_node_t *self, dq_rank_t *r, const dq_rankio_rec_t *rec) {
    if (rec->n == 0) {
        r->state = DQ_RANK_UP;
        r->failed_starts = 0;
        dq_backoff_reset(&r->backoff);
        dq_info("rank up rank=%d pid=%d device=%s", r->index, (int) r->pid, r->device);
        s_update_capacity(self);
        return;
    }
    int cls = rec->n >= 1 ? atoi((const char *) rec->part[0]) : 0;
    dq_error("rank %d could not start: %.*s", r->index, rec->n >= 2 ? (int) rec->size[1] : 0,
             rec->n >= 2 ? (const char *) rec->part[1] : "");
    s_fatal(self, cls == 3 /* DQ_RENDER_EMODEL */ ? DQ_NODE_EXIT_MODEL : DQ_NODE_EXIT_RANK);
}

static void s_on_rank(dq_node_t *self, dq_rank_t *r) {
    char err[512];
    int rc = dq_rankio_read(r->io, err, sizeof err);
    dq_rankio_rec_t rec;
    int got;
    while (rc > 0 && (got = dq_rankio_next(r->io, &rec, err, sizeof err)) != 0) {
        if (got < 0) {
            dq_error("rank %d: %s", r->index, err);
            rc = -1;
            break;
        }
        if (rec.kind == DQ_RANKIO_UP) {
            s_on_rank_up(self, r, &rec);
            continue;
        }
        dq_msg_t msg;
        if (rec.kind != DQ_RANKIO_DQP || dq_rankio_decode_msg(&rec, 0, &msg, err, sizeof err)) {
            dq_error("rank %d sent a bad record: %s", r->index, err);
            rc = -1;
            break;
        }
        s_on_rank_msg(self, r, &msg);
        dq_msg_clear(&msg);
    }
    if (rc <= 0) s_rank_died(self, r);
}

/* A rank is read only while its shards have room for more unsent images (back-pressure). */
static bool s_rank_readable(const dq_node_t *self, const dq_rank_t *r) {
    uint32_t unsent = 0;
    for (const shard_t *sh = self->shards; sh; sh = sh->next)
        if (sh->rank == r->index && sh->state == SH_RENDERING) unsent += sh->unsent;
    return unsent < DQ_NODE_UNSENT_LIMIT;
}

static void s_dispatch(dq_node_t *self) {
    for (shard_t *sh = self->shards; sh; sh = sh->next) {
        if (sh->state != SH_WAITING) continue;
        dq_rank_t *best = NULL;
        for (uint32_t i = 0; i < self->p.n_ranks; i++) {
            dq_rank_t *r = &self->ranks[i];
            if (r->state == DQ_RANK_UP && r->held < self->p.batch &&
                (!best || r->held < best->held))
                best = r;
        }
        if (!best) return;
        const char *spec = sh->model->spec;
        char err[256];
        if (dq_rankio_queue_msg(best->io, DQ_RANKIO_ASSIGN, &spec, 1, &sh->assign, err,
                                sizeof err) != 0) {
            dq_error("cannot hand a shard to rank %d: %s", best->index, err);
            return;
        }
        best->held++;
        sh->rank = best->index;
        sh->state = SH_RENDERING;
    }
}

/* ---- The loop ---------------------------------------------------------------------------------
 */

/* Sends what may be sent, finishes shards, hands out waiting ones, asks for credit. */
static void s_pump(dq_node_t *self) {
    shard_t *next;
    for (shard_t *sh = self->shards; sh; sh = next) {
        next = sh->next;
        for (size_t i = sh->first_open; self->dealer && sh->unsent && i < sh->n_res; i++) {
            if (sh->res[i].state != RES_UNSENT) continue;
            size_t bytes = sh->res[i].msg.result.png_size;
            if (!dq_result_window_open(self->inflight, self->inflight_bytes, bytes)) break;
            s_send(self, &sh->res[i].msg);
            sh->res[i].state = RES_SENT;
            sh->res[i].sent_at = dq_now_ms();
            sh->unsent--;
            sh->inflight++;
            self->inflight++;
            sh->inflight_bytes += bytes;
            self->inflight_bytes += bytes;
        }
        const dq_msg_assign_t *a = &sh->assign.assign;
        if (sh->state == SH_RENDERED && self->dealer && !sh->unsent && !sh->inflight) {
            dq_msg_t m = {.cmd = DQ_CMD_SHARD_DONE};
            m.shard_done =
                (dq_msg_shard_done_t){a->job, a->shard, a->attempt, (uint32_t) sh->n_res};
            s_send(self, &m);
            dq_info("shard done job=%" PRIu64 " shard=%" PRIu64 " attempt=%u images=%zu", a->job,
                    a->shard, a->attempt, sh->n_res);
            s_shard_remove(self, sh);
        } else if (sh->state == SH_ABANDONED && !sh->inflight) {
            s_shard_remove(self, sh);
        }
    }
    if (!self->draining) s_dispatch(self);
    uint32_t want = self->dealer && !self->draining ? dq_credit_wanted(&self->credit) : 0;
    if (want) {
        dq_msg_t m = {.cmd = DQ_CMD_CREDIT};
        m.credit.credit = want;
        s_send(self, &m);
        dq_credit_asked(&self->credit, want);
        self->sync.sent += want;
    }
}

static void s_finish_drain(dq_node_t *self, const char *why) {
    dq_info("draining done (%s); disconnecting", why);
    if (self->dealer) {
        dq_msg_t m = {.cmd = DQ_CMD_DISCONNECT};
        snprintf(m.disconnect.reason, sizeof m.disconnect.reason, "node %s: %s", self->p.name, why);
        zsock_set_sndtimeo(self->dealer, DISCONNECT_LINGER_MS);
        s_send(self, &m);
        zsock_set_linger(self->dealer, DISCONNECT_LINGER_MS);
    }
    s_fatal(self, DQ_NODE_EXIT_OK);
}

static void s_on_signal(dq_node_t *self) {
    unsigned char sigs[16];
    ssize_t n = read(self->p.signal_fd, sigs, sizeof sigs);
    for (ssize_t i = 0; i < n; i++) {
        if (!self->draining) {
            dq_info("signal %d: draining (no new shards; finishing the running ones)", sigs[i]);
            self->draining = true;
            if (self->p.drain_timeout_ms)
                self->drain_deadline = dq_now_ms() + self->p.drain_timeout_ms;
        } else {
            dq_info("signal %d again: handing the shards back now", sigs[i]);
            s_finish_drain(self, "second signal");
            return;
        }
    }
}

/* RESULTs not acknowledged within RESULT_RESEND_MS: sent again while their shard is wanted;
 * a stopped or failed shard's are given up (as on a reconnect), so the shard can end. */
static void s_resend_results(dq_node_t *self, int64_t now) {
    if (!self->dealer) return; /* the reconnect resends them */
    for (shard_t *sh = self->shards; sh; sh = sh->next) {
        bool wanted = sh->state == SH_RENDERING || sh->state == SH_RENDERED;
        for (size_t i = sh->first_open; i < sh->n_res && sh->inflight; i++) {
            result_t *r = &sh->res[i];
            if (r->state != RES_SENT || now - r->sent_at < RESULT_RESEND_MS) continue;
            if (wanted) {
                dq_info("no RESULT_ACK for %lld ms; sending again job=%" PRIu64 " shard=%" PRIu64
                        " attempt=%u chunk=%zu",
                        (long long) (now - r->sent_at), sh->assign.assign.job,
                        sh->assign.assign.shard, sh->assign.assign.attempt, i);
                s_send(self, &r->msg);
                r->sent_at = now;
            } else {
                s_result_done(self, sh, r);
            }
        }
    }
}

static void s_timers(dq_node_t *self) {
    int64_t now = dq_now_ms();
    for (uint32_t i = 0; i < self->p.n_ranks && !self->done; i++) {
        dq_rank_t *r = &self->ranks[i];
        if (r->state != DQ_RANK_DOWN || now < r->restart_at) continue;
        char err[256];
        if (dq_rank_spawn(r, &self->hello, err, sizeof err) != 0) {
            dq_error("cannot start rank %d: %s", r->index, err);
            if (++r->failed_starts >= DQ_NODE_RANK_START_TRIES) s_fatal(self, DQ_NODE_EXIT_RANK);
            r->restart_at = now + dq_backoff_next(&r->backoff);
        } else {
            dq_info("rank started rank=%d pid=%d device=%s", r->index, (int) r->pid, r->device);
        }
    }
    if (now - self->contact_at > (int64_t) self->p.death_timeout_ms) {
        dq_error("no word from the broker for %u ms; exiting broker=%s", self->p.death_timeout_ms,
                 self->p.broker);
        s_fatal(self, DQ_NODE_EXIT_BROKER_LOST);
        return;
    }
    if (self->dealer &&
        now - self->heard_at > DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS)
        s_lose_broker(self, "silent past liveness");
    if (!self->dealer && now >= self->reconnect_at) s_connect(self);
    /* Also while other traffic flows: the broker compares the held list with its own. */
    if (self->dealer && (now - self->sent_at >= DQ_PROTO_HEARTBEAT_INTERVAL_MS ||
                         now - self->synced_at >= 2 * DQ_PROTO_HEARTBEAT_INTERVAL_MS))
        s_heartbeat(self);
    for (shard_t *sh = self->shards; sh; sh = sh->next)
        if ((sh->state == SH_WAITING || sh->state == SH_RENDERING || sh->state == SH_RENDERED) &&
            now - sh->progress_at >=
                (sh->progress_due ? DQ_PROTO_PROGRESS_MIN_MS : DQ_PROTO_PROGRESS_INTERVAL_MS))
            s_progress(self, sh);
    s_resend_results(self, now);
    if (self->draining && !self->done) {
        bool busy = false;
        for (shard_t *sh = self->shards; sh; sh = sh->next)
            busy |= sh->state != SH_WAITING;
        if (!busy)
            s_finish_drain(self, "no shard running");
        else if (self->drain_deadline && now >= self->drain_deadline)
            s_finish_drain(self, "drain timeout");
    }
}

int dq_node_run(dq_node_t *self) {
    int64_t now = dq_now_ms();
    self->contact_at = now;
    for (uint32_t i = 0; i < self->p.n_ranks; i++)
        self->ranks[i].restart_at = now;
    s_timers(self); /* starts the ranks and connects */
    zmq_pollitem_t *items = calloc(2 + self->p.n_ranks, sizeof *items);
    dq_rank_t **owner = calloc(2 + self->p.n_ranks, sizeof *owner);
    if (!items || !owner) s_fatal(self, DQ_NODE_EXIT_INTERNAL);
    while (!self->done) {
        int n = 0;
        items[n++] = (zmq_pollitem_t){NULL, self->p.signal_fd, ZMQ_POLLIN, 0};
        if (self->dealer)
            items[n++] = (zmq_pollitem_t){zsock_resolve(self->dealer), 0, ZMQ_POLLIN, 0};
        int first_rank = n;
        for (uint32_t i = 0; i < self->p.n_ranks; i++) {
            dq_rank_t *r = &self->ranks[i];
            if (!r->io) continue;
            short ev = (short) ((s_rank_readable(self, r) ? ZMQ_POLLIN : 0) |
                                (dq_rankio_pending(r->io) ? ZMQ_POLLOUT : 0));
            owner[n] = r;
            items[n++] = (zmq_pollitem_t){NULL, dq_rankio_fd(r->io), ev, 0};
        }
        if (zmq_poll(items, n, TICK_MS) < 0 && errno != EINTR) {
            dq_error("poll: %s", zmq_strerror(errno));
            s_fatal(self, DQ_NODE_EXIT_INTERNAL);
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) s_on_signal(self);
        if (first_rank == 2 && (items[1].revents & ZMQ_POLLIN)) s_on_broker(self);
        for (int k = first_rank; k < n && !self->done; k++) {
            dq_rank_t *r = owner[k];
            char err[256];
            if ((items[k].revents & ZMQ_POLLOUT) && r->io &&
                dq_rankio_flush(r->io, err, sizeof err) < 0)
                items[k].revents |= ZMQ_POLLERR;
            if ((items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) && r->io) s_on_rank(self, r);
        }
        if (self->done) break;
        s_pump(self);
        s_timers(self);
    }
    free(items);
    free(owner);
    dq_rank_stop_all(self->ranks, self->p.n_ranks, 2000);
    return self->exit_code;
}

/* ---- Life -------------------------------------------------------------------------------------
 */

dq_node_t *dq_node_new(const dq_node_params_t *params, char *err, size_t errlen) {
    if (params->n_ranks < 1 || params->n_ranks > DQ_PROTO_MAX_RANKS || params->batch < 1 ||
        (uint64_t) params->n_ranks * params->batch > DQ_PROTO_MAX_CREDIT || params->n_models < 1 ||
        params->n_devices < 1) {
        snprintf(err, errlen, "ranks x batch must be 1..%d, with at least one model and device",
                 DQ_PROTO_MAX_CREDIT);
        return NULL;
    }
    dq_node_t *self = calloc(1, sizeof *self);
    if (!self || !(self->ranks = calloc(params->n_ranks, sizeof *self->ranks))) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->p = *params;
    for (uint32_t i = 0; i < params->n_ranks; i++) {
        dq_rank_t *r = &self->ranks[i];
        r->index = (int) i;
        snprintf(r->device, sizeof r->device, "%s", params->rank_devices[i]);
        dq_backoff_init(&r->backoff, DQ_PROTO_RECONNECT_INITIAL_MS, DQ_PROTO_RECONNECT_MAX_MS);
    }
    /* CPU ranks share the machine's cores instead of each starting a thread per core. */
    uint32_t cpu_ranks = 0;
    for (uint32_t i = 0; i < params->n_ranks; i++)
        cpu_ranks += strcmp(params->rank_devices[i], "cpu") == 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int per_rank = cpu_ranks && cores > 0 ? (int) (cores / cpu_ranks) : 0;
    self->hello = (dq_rank_hello_t){params->exe, params->backend, params->null_step_ms,
                                    params->null_fail, params->models[0].spec,
                                    cpu_ranks ? (per_rank > 0 ? per_rank : 1) : 0,
                                    params->max_batch};
    dq_credit_init(&self->credit, 0);
    dq_backoff_init(&self->backoff, DQ_PROTO_RECONNECT_INITIAL_MS, DQ_PROTO_RECONNECT_MAX_MS);
    /* Random, so that a restarted process (same name) never repeats its predecessor's number. */
    while (!self->boot)
        if (getrandom(&self->boot, sizeof self->boot, 0) != (ssize_t) sizeof self->boot)
            self->boot = (uint64_t) dq_now_ms() ^ ((uint64_t) getpid() << 40);
    return self;
}

void dq_node_destroy(dq_node_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_node_t *self = *self_p;
    dq_rank_stop_all(self->ranks, self->p.n_ranks, 0);
    while (self->shards) {
        shard_t *sh = self->shards;
        self->shards = sh->next;
        s_shard_free(sh);
    }
    zsock_destroy(&self->dealer);
    free(self->ranks);
    free(self);
    *self_p = NULL;
}
