/* broker/server_node.c: the node side of the broker: READY, credit and ASSIGN, lease renewal,
 * shard outcomes, heartbeats and liveness. RESULTs go through server_result.c. */
#include <stdlib.h>
#include <string.h>

#include "broker/server_int.h"
#include "common/job_wire.h"
#include "common/log.h"

dq_bnode_t *dq_server_node_find(dq_server_t *self, zframe_t *identity) {
    for (int i = 0; i < self->n_nodes; i++)
        if (zframe_eq(self->nodes[i]->identity, identity)) return self->nodes[i];
    return NULL;
}

static dq_bnode_t *s_find_name(dq_server_t *self, const char *name) {
    for (int i = 0; i < self->n_nodes; i++)
        if (strcmp(self->nodes[i]->ready.name, name) == 0) return self->nodes[i];
    return NULL;
}

void dq_server_node_free(dq_bnode_t **node_p) {
    if (!node_p || !*node_p) return;
    dq_bnode_t *node = *node_p;
    zframe_destroy(&node->identity);
    dq_msg_t m = {.cmd = DQ_CMD_READY};
    m.ready = node->ready; /* dq_msg_clear frees READY's owned members */
    dq_msg_clear(&m);
    free(node);
    *node_p = NULL;
}

void dq_server_node_drop(dq_server_t *self, dq_bnode_t *node, bool requeue, const char *why) {
    int i = 0;
    while (i < self->n_nodes && self->nodes[i] != node)
        i++;
    if (i == self->n_nodes) return;
    self->nodes[i] = self->nodes[--self->n_nodes];
    if (requeue && !self->closing) {
        int n = 0;
        if (dq_store_node_forget(self->store, node->ready.name, dq_server_now(), &n) != DQ_STORE_OK)
            dq_error("forgetting node %s: %s", node->ready.name, dq_store_errmsg(self->store));
        dq_info("node gone node=%s why=\"%s\" requeued=%d", node->ready.name, why ? why : "", n);
        if (n > 0) self->dispatch_due = true;
    }
    dq_server_node_free(&node);
}

int dq_server_node_holds(const dq_bnode_t *node, int64_t shard, int attempt) {
    for (int i = 0; i < node->n_held; i++)
        if (node->held[i].shard == shard && node->held[i].attempt == attempt) return i;
    return -1;
}

void dq_server_node_release(dq_bnode_t *node, int64_t shard) {
    for (int i = 0; i < node->n_held; i++)
        if (node->held[i].shard == shard) {
            node->held[i] = node->held[--node->n_held];
            return;
        }
}

static void s_hold(dq_bnode_t *node, int64_t job, int64_t shard, int attempt, uint64_t seq) {
    dq_server_node_release(node, shard);
    if (node->n_held < DQ_PROTO_MAX_NODE_SHARDS)
        node->held[node->n_held++] = (dq_held_t){.shard = shard,
                                                 .job = job,
                                                 .attempt = attempt,
                                                 .renewed_ms = dq_server_now(),
                                                 .seq = seq};
}

static void s_stop(dq_server_t *self, zframe_t *identity, uint64_t job, uint64_t shard,
                   uint32_t attempt, dq_stop_reason_t reason) {
    dq_msg_t m = {.cmd = DQ_CMD_STOP};
    m.stop = (dq_msg_stop_t){.job = job, .shard = shard, .attempt = attempt, .reason = reason};
    dq_server_send(self, identity, &m);
}

void dq_server_nodes_stop_job(dq_server_t *self, int64_t job, dq_stop_reason_t reason) {
    for (int i = 0; i < self->n_nodes; i++) {
        dq_bnode_t *node = self->nodes[i];
        for (int k = node->n_held - 1; k >= 0; k--) {
            dq_held_t h = node->held[k];
            if (h.job != job) continue;
            node->held[k] = node->held[--node->n_held];
            s_stop(self, node->identity, (uint64_t) h.job, (uint64_t) h.shard, (uint32_t) h.attempt,
                   reason);
        }
    }
}

/* Collects a shard's requests into an ASSIGN. */
typedef struct {
    dq_msg_assign_t *a;
    int failed;
} s_assign_ctx_t;

/* The stored canonical JSON, read back with the job format's own parser, into the wire form;
 * the id travels when the request had one. */
static int s_add_request(void *arg, const dq_store_request_t *req) {
    s_assign_ctx_t *ctx = arg;
    if (ctx->a->n_requests >= DQ_PROTO_MAX_REQUESTS) return 1;
    dq_wire_request_t *out = &ctx->a->requests[ctx->a->n_requests];
    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    dq_request_t q;
    char err[DQ_PROTO_MAX_MESSAGE];
    if (dq_request_from_json("stored request", (size_t) req->line, req->json, &limits, &q, err,
                             sizeof err) != 0) {
        dq_error("%s", err);
        return 1;
    }
    q.id_assigned = req->id == NULL; /* the JSON says "line-N" for a request without one */
    dq_request_to_wire(&q, 0, (uint32_t) q.num_images_per_prompt, out);
    /* The message owns its strings (dq_msg_clear frees them); q's are cleared below. */
    out->prompt = strdup(q.prompt);
    out->negative_prompt = strdup(q.negative_prompt);
    int bad = !out->prompt || !out->negative_prompt;
    dq_request_clear(&q);
    ctx->a->n_requests++; /* counted even when bad, so dq_msg_clear frees what was made */
    return bad;
}

/* Sends one leased shard. On failure the lease stays and expires (the shard is then requeued). */
static void s_assign(dq_server_t *self, dq_bnode_t *node, const dq_lease_t *lease) {
    dq_msg_t m = {.cmd = DQ_CMD_ASSIGN};
    dq_msg_assign_t *a = &m.assign;
    a->job = (uint64_t) lease->job;
    a->shard = (uint64_t) lease->shard;
    a->attempt = (uint32_t) lease->attempt;
    a->lease_ms = (uint32_t) self->params.lease_ms;
    snprintf(a->model, sizeof a->model, "%s", lease->model);
    a->requests = calloc(DQ_PROTO_MAX_REQUESTS, sizeof *a->requests);
    s_assign_ctx_t ctx = {a, 0};
    if (!a->requests ||
        dq_store_shard_requests(self->store, lease->shard, s_add_request, &ctx) != DQ_STORE_OK ||
        a->n_requests == 0) {
        dq_error("cannot build ASSIGN job=%lld shard=%lld: %s", (long long) lease->job,
                 (long long) lease->shard, dq_store_errmsg(self->store));
        dq_msg_clear(&m);
        node->credit++; /* nothing was sent: the node still waits for this one (the lease
                           expires and requeues the shard) */
        return;
    }
    a->seq = ++node->assigned_total; /* numbered for the node's held-shard sync (minor 5) */
    s_hold(node, lease->job, lease->shard, lease->attempt, a->seq);
    dq_info("assign job=%lld shard=%lld attempt=%d node=%s requests=%u images=%d split_from=%lld"
            " seq=%llu",
            (long long) lease->job, (long long) lease->shard, lease->attempt, node->ready.name,
            a->n_requests, lease->n_images, (long long) lease->split_shard,
            (unsigned long long) a->seq);
    dq_server_send(self, node->identity, &m); /* unreachable: held until it is forgotten or
                                                 comes back */
    dq_msg_clear(&m);
}

/* The store's view of a node: borrows the READY's model names and paths. */
static dq_store_node_t s_store_node(const dq_bnode_t *node) {
    return (dq_store_node_t){
        .name = node->ready.name,
        .models = (const char *const *) node->ready.models,
        .paths = node->ready.n_paths ? (const char *const *) node->ready.paths : NULL,
        .n_models = (int) node->ready.n_models,
        .max_images = (int) node->ready.max_batch,
    };
}

static void s_on_unserved(void *arg, int64_t job, const char *message) {
    dq_server_t *self = arg;
    dq_warn("job's queued shards failed job=%lld: %s", (long long) job, message);
    dq_server_job_maybe_finished(self, job);
}

void dq_server_check_serving(dq_server_t *self, int64_t now) {
    dq_store_node_t nodes[DQ_BROKER_MAX_NODES];
    for (int i = 0; i < self->n_nodes; i++)
        nodes[i] = s_store_node(self->nodes[i]);
    if (dq_store_check_serving(self->store, nodes, self->n_nodes, now, self->params.unserved_ms,
                               s_on_unserved, self, NULL) != DQ_STORE_OK)
        dq_error("serving check: %s", dq_store_errmsg(self->store));
}

void dq_server_dispatch(dq_server_t *self) {
    self->dispatch_due = false;
    int64_t now = dq_server_now();
    /* Nodes may vanish while we send, so walk by name snapshot. */
    for (int i = 0; i < self->n_nodes; i++) {
        dq_bnode_t *node = self->nodes[i];
        if (node->credit == 0) continue;
        int want = node->credit < DQ_BROKER_LEASE_PER_CREDIT ? (int) node->credit
                                                             : DQ_BROKER_LEASE_PER_CREDIT;
        dq_lease_t leases[DQ_BROKER_LEASE_PER_CREDIT];
        int got = 0;
        dq_store_node_t served = s_store_node(node);
        if (dq_store_lease_node(self->store, &served, want, now, self->params.lease_ms, leases,
                                &got) != DQ_STORE_OK) {
            dq_error("lease for node %s: %s", node->ready.name, dq_store_errmsg(self->store));
            return;
        }
        node->credit -= (uint32_t) got;
        if (got == want && node->credit > 0) self->dispatch_due = true; /* more next round */
        char name[DQ_PROTO_MAX_NAME + 1];
        snprintf(name, sizeof name, "%s", node->ready.name);
        for (int k = 0; k < got; k++) {
            dq_bnode_t *n = s_find_name(self, name);
            if (!n) break; /* dropped while sending: the leases expire or were forgotten */
            s_assign(self, n, &leases[k]);
        }
        if (i < self->n_nodes && self->nodes[i] != node) i--; /* the array changed under us */
    }
}

/* Paths name the models by position; a list of another length means nothing. */
static void s_check_paths(dq_msg_ready_t *ready) {
    if (ready->n_paths == 0 || ready->n_paths == ready->n_models) return;
    dq_warn("node %s: READY has %u paths for %u models: paths ignored", ready->name, ready->n_paths,
            ready->n_models);
    for (uint32_t i = 0; i < ready->n_paths; i++)
        free(ready->paths[i]);
    free(ready->paths);
    ready->paths = NULL;
    ready->n_paths = 0;
}

static void s_ready(dq_server_t *self, zframe_t *identity, dq_msg_t *msg) {
    dq_bnode_t *node = dq_server_node_find(self, identity);
    dq_bnode_t *same = s_find_name(self, msg->ready.name);
    s_check_paths(&msg->ready);
    if (node && node == same) {
        /* The same READY again on this connection: a node sends READY once per connection (a
         * restarted or reconnected node has a new socket, so a new identity), so this is a
         * repeat from the network. The node still holds its shards and its credit counts go on:
         * keep them, and take the announcement as it is now. */
        dq_msg_t old = {.cmd = DQ_CMD_READY};
        old.ready = node->ready;
        node->ready = msg->ready;
        memset(&msg->ready, 0, sizeof msg->ready); /* ownership moved */
        dq_msg_clear(&old);
        node->last_recv_ms = dq_server_now();
        dq_info("node re-announced node=%s (READY repeated): keeping its %d shard(s)",
                node->ready.name, node->n_held);
        return;
    }
    if (node) {
        /* READY under another name on a live connection: whatever it held is not its own. */
        dq_server_node_drop(self, node, true, "sent READY again");
        same = s_find_name(self, msg->ready.name);
    }
    dq_held_t carried[DQ_PROTO_MAX_NODE_SHARDS];
    int n_carried = 0;
    if (same && msg->ready.boot && msg->ready.boot != same->ready.boot) {
        /* The node's process restarted (minor 6: another boot number): it holds nothing of what
         * its predecessor held. Requeue that now, counting the attempts as a lease expiry
         * would, minutes later (a shard that crashes its node must run out of attempts). */
        dq_server_node_drop(self, same, true, "node restarted");
    } else if (same) {
        /* The same node on a new connection: keep its leases, which it may still renew. A node
         * that tells restarts apart (boot) lists what it holds in its HEARTBEATs: the shards
         * come along, so those it never got are requeued once it has listed them (carried). */
        if (msg->ready.boot)
            for (int k = 0; k < same->n_held; k++) {
                carried[n_carried] = same->held[k];
                carried[n_carried].seq = 0; /* numbers start again on this connection */
                carried[n_carried++].carried = true;
            }
        dq_server_node_drop(self, same, false, NULL);
    } else if (self->n_nodes == DQ_BROKER_MAX_NODES) {
        dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT};
        snprintf(bye.disconnect.reason, sizeof bye.disconnect.reason, "too many nodes (%d)",
                 DQ_BROKER_MAX_NODES);
        dq_server_send(self, identity, &bye);
        return;
    }
    node = calloc(1, sizeof *node);
    if (!node) return;
    node->identity = zframe_dup(identity);
    node->ready = msg->ready;
    memset(&msg->ready, 0, sizeof msg->ready); /* ownership moved */
    node->last_recv_ms = node->last_send_ms = dq_server_now();
    memcpy(node->held, carried, n_carried * sizeof *carried);
    node->n_held = n_carried;
    self->nodes[self->n_nodes++] = node;
    dq_info("node ready node=%s ranks=%u cap=%u models=%u bimg=%u carried=%d", node->ready.name,
            node->ready.ranks, node->ready.capacity, node->ready.n_models, node->ready.max_batch,
            n_carried);
}

/* A node's message about a shard attempt it does not hold here: after a broker restart it may
 * reclaim it (store.renew also reclaims an orphan lease); otherwise it is stale. */
bool dq_server_node_check(dq_server_t *self, dq_bnode_t *node, uint64_t job, uint64_t shard,
                          uint32_t attempt) {
    if (dq_server_node_holds(node, (int64_t) shard, (int) attempt) >= 0) return true;
    dq_store_rc_t rc = dq_store_reclaim(self->store, node->ready.name, (int64_t) shard,
                                        (int) attempt, dq_server_now(), self->params.lease_ms);
    if (rc == DQ_STORE_OK) {
        s_hold(node, (int64_t) job, (int64_t) shard, (int) attempt, 0);
        dq_info("reclaimed job=%llu shard=%llu attempt=%u node=%s", (unsigned long long) job,
                (unsigned long long) shard, attempt, node->ready.name);
        return true;
    }
    return false;
}

static int s_find_seq(const dq_bnode_t *node, uint64_t seq) {
    for (int i = 0; seq && i < node->n_held; i++)
        if (node->held[i].seq == seq) return i;
    return -1;
}

/* Requeues shard attempt h of node, whose ASSIGN never reached it, without counting the attempt
 * (the store's assign_lost); forgets it unless the store failed (then its lease expires). */
static void s_requeue_lost(dq_server_t *self, dq_bnode_t *node, dq_held_t h, const char *where,
                           int64_t now) {
    dq_store_rc_t rc = dq_store_assign_lost(self->store, h.shard, h.attempt, node->ready.name, now);
    if (rc == DQ_STORE_OK) {
        dq_info("ASSIGN lost job=%lld shard=%lld attempt=%d node=%s seq=%llu (%s): requeued, "
                "attempt not counted",
                (long long) h.job, (long long) h.shard, h.attempt, node->ready.name,
                (unsigned long long) h.seq, where);
        self->dispatch_due = true;
    } else if (rc != DQ_STORE_STALE && rc != DQ_STORE_NOT_FOUND) {
        dq_error("lost ASSIGN: %s", dq_store_errmsg(self->store));
        return;
    }
    dq_server_node_release(node, h.shard);
    if (rc == DQ_STORE_OK) dq_server_job_maybe_finished(self, h.job);
}

static bool s_listed(const dq_msg_heartbeat_t *hb, int64_t shard) {
    for (uint32_t i = 0; i < hb->n_held; i++)
        if (hb->held[i] == (uint64_t) shard) return true;
    return false;
}

/* A node's HEARTBEAT of minor 5 (docs/protocol.md, "Held-shard sync"): the ASSIGNs it judged lost
 * are requeued now, not counted as attempts; shards it no longer holds and whose lease the store
 * says has ended (done: a SHARD_DONE was lost) leave its list; so do shards assigned on a
 * connection it has left that it does not list (never received: requeued, not counted). */
static void s_held_sync(dq_server_t *self, dq_bnode_t *node, const dq_msg_heartbeat_t *hb,
                        int64_t now) {
    for (uint32_t i = 0; i < hb->n_lost; i++) {
        int k = s_find_seq(node, hb->lost[i]); /* -1: reported before, or it has ended since */
        if (k >= 0) s_requeue_lost(self, node, node->held[k], "on the way", now);
    }
    if (hb->minor < 5) return; /* an older node, or one holding more than it can list */
    for (int k = node->n_held - 1; k >= 0; k--) {
        dq_held_t h = node->held[k];
        if (s_listed(hb, h.shard)) {
            node->held[k].carried = false; /* it has it: from now on, as any other */
            continue;
        }
        /* Not held there: an ASSIGN still on its way (its lease is ours), or one that ended
         * without our hearing of it (a lost SHARD_DONE): only the latter leaves the list. */
        dq_store_rc_t rc = dq_store_lease_held(self->store, h.shard, h.attempt, node->ready.name);
        if (rc == DQ_STORE_STALE || rc == DQ_STORE_NOT_FOUND) {
            dq_info("node no longer holds job=%lld shard=%lld attempt=%d node=%s: forgotten",
                    (long long) h.job, (long long) h.shard, h.attempt, node->ready.name);
            node->held[k] = node->held[--node->n_held];
        } else if (rc == DQ_STORE_OK && h.carried) {
            /* Sent on a connection the node has left, and not among what it took along: lost
             * on the way (or failed with a SHARD_FAILED that was lost too: rare enough to
             * spend a retry on rather than an attempt on every ASSIGN a reconnect cuts off). */
            s_requeue_lost(self, node, h, "on a connection it has left", now);
        } else if (rc != DQ_STORE_OK) {
            dq_error("held-shard sync: %s", dq_store_errmsg(self->store));
        }
    }
}

void dq_server_node_message(dq_server_t *self, zframe_t *identity, dq_msg_t *msg) {
    dq_bnode_t *node = dq_server_node_find(self, identity);
    int64_t now = dq_server_now();
    if (msg->cmd == DQ_CMD_READY) {
        s_ready(self, identity, msg);
        return;
    }
    if (!node) {
        /* Unknown peer (e.g. the broker restarted): tell it to start over with READY. */
        if (msg->cmd == DQ_CMD_DISCONNECT) return;
        dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT};
        snprintf(bye.disconnect.reason, sizeof bye.disconnect.reason,
                 "%s before READY: send READY first", dq_proto_command_name(msg->cmd));
        dq_debug("%s", bye.disconnect.reason);
        dq_server_send(self, identity, &bye);
        return;
    }
    node->last_recv_ms = now;
    switch (msg->cmd) {
    case DQ_CMD_HEARTBEAT:
        s_held_sync(self, node, &msg->heartbeat, now);
        break;
    case DQ_CMD_CREDIT: {
        node->credit_total += msg->credit.credit;
        uint64_t c = (uint64_t) node->credit + msg->credit.credit;
        node->credit = c > DQ_PROTO_MAX_CREDIT ? DQ_PROTO_MAX_CREDIT : (uint32_t) c;
        self->dispatch_due = true;
        break;
    }
    case DQ_CMD_PROGRESS: {
        dq_msg_progress_t *p = &msg->progress;
        /* The store's lease is written again only once a quarter of it has passed: a renewal
         * is a durable transaction, and a node reports every denoising step. Until then the
         * stored lease cannot run out, and a cancel stops held shards by itself. */
        int h = dq_server_node_holds(node, (int64_t) p->shard, (int) p->attempt);
        if (h >= 0 && now - node->held[h].renewed_ms < self->params.lease_ms / 4) break;
        dq_store_rc_t rc = dq_store_renew(self->store, (int64_t) p->shard, (int) p->attempt,
                                          node->ready.name, now, self->params.lease_ms);
        if (rc == DQ_STORE_OK) {
            if (dq_server_node_holds(node, (int64_t) p->shard, (int) p->attempt) < 0)
                dq_info("reclaimed job=%llu shard=%llu attempt=%u node=%s",
                        (unsigned long long) p->job, (unsigned long long) p->shard, p->attempt,
                        node->ready.name); /* after a restart, or on a new connection */
            s_hold(node, (int64_t) p->job, (int64_t) p->shard, (int) p->attempt,
                   h >= 0 ? node->held[h].seq : 0);
        } else if (rc == DQ_STORE_STALE || rc == DQ_STORE_NOT_FOUND) {
            dq_info("stale progress job=%llu shard=%llu attempt=%u node=%s: stop",
                    (unsigned long long) p->job, (unsigned long long) p->shard, p->attempt,
                    node->ready.name);
            dq_server_node_release(node, (int64_t) p->shard);
            s_stop(self, identity, p->job, p->shard, p->attempt, DQ_STOP_FENCED);
        } else {
            dq_error("renew: %s", dq_store_errmsg(self->store));
        }
        break;
    }
    case DQ_CMD_SHARD_DONE: {
        dq_msg_shard_done_t *d = &msg->shard_done;
        dq_info("shard done job=%llu shard=%llu attempt=%u node=%s images=%u",
                (unsigned long long) d->job, (unsigned long long) d->shard, d->attempt,
                node->ready.name, d->images);
        dq_server_node_release(node, (int64_t) d->shard);
        break;
    }
    case DQ_CMD_SHARD_FAILED: {
        dq_msg_shard_failed_t *f = &msg->shard_failed;
        const char *cls = dq_proto_fail_class_name((int) f->fail_class);
        /* Fenced by attempt: only a lease of exactly this attempt, held by this node, fails.
         * Each requeue (failure, expiry, lost ASSIGN, forgotten node) and each retry raises the
         * shard's attempt, and a done, failed or cancelled shard is not leased, so a second copy
         * of the message finds no lease and counts nothing: not toward --max-attempts, not toward
         * the node's blocklist (docs/protocol.md, SHARD_FAILED). */
        dq_store_rc_t rc = dq_store_fail(self->store, (int64_t) f->shard, (int) f->attempt,
                                         node->ready.name, cls, f->message, now);
        if (rc == DQ_STORE_OK) {
            dq_warn("shard failed job=%llu shard=%llu attempt=%u node=%s class=%s: %s",
                    (unsigned long long) f->job, (unsigned long long) f->shard, f->attempt,
                    node->ready.name, cls, f->message);
            dq_server_node_release(node, (int64_t) f->shard);
            self->dispatch_due = true;
            dq_server_job_maybe_finished(self, (int64_t) f->job);
        } else if (rc == DQ_STORE_STALE || rc == DQ_STORE_NOT_FOUND) {
            /* A node sends each SHARD_FAILED up to 3 times (the first copy failed the attempt),
             * or the attempt ended before its failure arrived. Nothing to do, nothing to stop:
             * the node has let the attempt go. The node's list keeps a later attempt of the same
             * shard (leased to it again meanwhile); only this very attempt leaves it. */
            dq_info("shard failed again or late job=%llu shard=%llu attempt=%u node=%s class=%s:"
                    " the attempt has ended already (a repeat); nothing changes",
                    (unsigned long long) f->job, (unsigned long long) f->shard, f->attempt,
                    node->ready.name, cls);
            if (dq_server_node_holds(node, (int64_t) f->shard, (int) f->attempt) >= 0)
                dq_server_node_release(node, (int64_t) f->shard);
        } else {
            /* The lease stays the node's and expires; the node does not hold the shard. */
            dq_error("shard failed job=%llu shard=%llu attempt=%u node=%s class=%s: %s: %s",
                     (unsigned long long) f->job, (unsigned long long) f->shard, f->attempt,
                     node->ready.name, cls, f->message, dq_store_errmsg(self->store));
        }
        break;
    }
    case DQ_CMD_DISCONNECT:
        dq_server_node_drop(self, node, true, msg->disconnect.reason);
        break;
    default: {
        dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT};
        snprintf(bye.disconnect.reason, sizeof bye.disconnect.reason, "unexpected %s",
                 dq_proto_command_name(msg->cmd));
        dq_warn("node %s sent %s: disconnecting it", node->ready.name,
                dq_proto_command_name(msg->cmd));
        dq_server_send(self, identity, &bye);
        dq_server_node_drop(self, node, true, bye.disconnect.reason);
    }
    }
}

void dq_server_nodes_tick(dq_server_t *self, int64_t now, bool drained) {
    /* A loop iteration that took longer than a heartbeat interval (a slow disk under a commit)
     * was the broker's silence, not the nodes': that time does not count against them. */
    int64_t away = self->last_tick_ms ? now - self->last_tick_ms : 0;
    self->last_tick_ms = now;
    for (int i = 0; away > DQ_PROTO_HEARTBEAT_INTERVAL_MS && i < self->n_nodes; i++)
        self->nodes[i]->last_recv_ms += away;
    for (int i = self->n_nodes - 1; i >= 0 && i < self->n_nodes; i--) {
        dq_bnode_t *node = self->nodes[i];
        /* Silence is judged only once every message that arrived has been read. */
        if (drained && now - node->last_recv_ms >
                           DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS) {
            dq_warn("node silent for %lld ms node=%s: forgetting it",
                    (long long) (now - node->last_recv_ms), node->ready.name);
            dq_server_node_drop(self, node, true, node->unreachable ? "unreachable" : "silent");
            continue;
        }
        /* Also while other traffic flows: the counts let the node repair lost credit. */
        if (now - node->last_send_ms >= DQ_PROTO_HEARTBEAT_INTERVAL_MS ||
            now - node->synced_ms >= 2 * DQ_PROTO_HEARTBEAT_INTERVAL_MS) {
            dq_msg_t hb = {.cmd = DQ_CMD_HEARTBEAT};
            hb.heartbeat = (dq_msg_heartbeat_t){.minor = DQ_PROTO_MINOR,
                                                .credit_total = node->credit_total,
                                                .assigned_total = node->assigned_total};
            node->synced_ms = now;
            dq_server_send(self, node->identity, &hb);
        }
    }
}

int dq_server_node_info(const dq_bnode_t *node, int64_t now, dq_node_info_t *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", node->ready.name);
    out->ranks = node->ready.ranks;
    out->capacity = node->ready.capacity;
    out->last_seen_ms = (uint64_t) (now - node->last_recv_ms);
    out->alive = out->last_seen_ms <= DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS;
    out->devices = calloc(node->ready.n_devices + 1, sizeof *out->devices);
    out->models = calloc(node->ready.n_models + 1, sizeof *out->models);
    out->shards = calloc((size_t) node->n_held + 1, sizeof *out->shards);
    if (!out->devices || !out->models || !out->shards) return -1;
    for (uint32_t i = 0; i < node->ready.n_devices; i++)
        out->devices[i] = node->ready.devices[i];
    out->n_devices = node->ready.n_devices;
    for (uint32_t i = 0; i < node->ready.n_models; i++) {
        out->models[i] = strdup(node->ready.models[i]);
        if (!out->models[i]) return -1;
        out->n_models++;
    }
    for (int i = 0; i < node->n_held; i++)
        out->shards[i] = (uint64_t) node->held[i].shard;
    out->n_shards = (uint32_t) node->n_held;
    return 0;
}
