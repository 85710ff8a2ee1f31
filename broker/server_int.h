/* broker/server_int.h: the broker's in-memory state shared by its source files (server.c: loop
 * and timers; server_node.c: nodes; server_client.c: clients; server_result.c: image files and
 * manifests). Requests are stored as their job form's canonical JSON (common/job_wire.h converts
 * the wire form). Not a public API. */
#ifndef DQ_BROKER_SERVER_INT_H
#define DQ_BROKER_SERVER_INT_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/server.h"
#include "broker/store.h"
#include "common/proto.h"

#define DQ_BROKER_MAX_NODES        DQ_PROTO_MAX_NODES
#define DQ_BROKER_MAX_UPLOADS      64  /* staged uploads at once; more get ERROR limit */
#define DQ_BROKER_BATCH            256 /* RESULTs committed in one transaction at most */
#define DQ_BROKER_LEASE_PER_CREDIT 8   /* shards leased per dispatch round per node */
#define DQ_BROKER_FILE_THREADS     16  /* threads that write and sync a batch's images (a journal
                                           groups their syncs: 16 wrote 200 files 30% faster than 8
                                           on ext4, bench/RESULTS.md) */

/* One shard attempt a node runs, as the broker assigned it (or it reclaimed). */
typedef struct {
    int64_t shard, job;
    int attempt;
    int64_t renewed_ms; /* when the store's lease was last written (assign, reclaim, renew) */
    uint64_t seq;       /* its ASSIGN's number on this connection (ASSIGN.seq); 0: reclaimed, or
                           carried over */
    bool carried;       /* assigned on a connection the node has since left (it reconnected):
                           no ASSIGN for it can arrive any more, so one the node does not list
                           never reached it (s_held_sync) */
} dq_held_t;

/* A node that sent READY. */
typedef struct {
    zframe_t *identity;   /* owned; ROUTER routing id of its DEALER */
    dq_msg_ready_t ready; /* owned (dq_msg_t-style members): name, devices, models */
    uint32_t credit;      /* ASSIGNs it asked for and has not been sent */
    uint64_t credit_total, assigned_total; /* this connection's CREDIT sum and ASSIGNs sent: the
                                              HEARTBEAT's credit sync (docs/protocol.md) */
    int64_t synced_ms;    /* last HEARTBEAT with those counts */
    int64_t last_recv_ms, last_send_ms;
    bool unreachable; /* its connection is closed (a send failed): nothing more is sent; it is
                         forgotten when silent, unless it reconnects first (a new READY) */
    dq_held_t held[DQ_PROTO_MAX_NODE_SHARDS];
    int n_held;
} dq_bnode_t;

/* A client's job upload between SUBMIT_BEGIN and SUBMIT_COMMIT (and a while after, so a retried
 * COMMIT gets the same answer). */
typedef struct {
    uint64_t id;         /* upload id sent in SUBMIT_READY */
    int64_t job;         /* the store's staging (then queued) job */
    uint32_t next_seq;   /* the chunk expected next */
    uint64_t n_requests; /* requests stored so far */
    uint64_t expected;   /* requests SUBMIT_BEGIN announced */
    bool committed;
    int64_t last_ms;    /* last chunk, for the idle timeout */
    uint8_t owner[256]; /* routing id of the client that began it (DISCONNECT drops it) */
    size_t owner_len;
} dq_upload_t;

/* A RESULT waiting for the end of the loop iteration, when the batch is committed. */
typedef struct {
    zframe_t *identity; /* owned; who sent it */
    dq_msg_t msg;       /* owned; cmd RESULT */
} dq_pending_t;

struct dq_server {
    dq_server_params_t params; /* strings below are owned copies */
    char *bind, *state_dir;
    int lock_fd;                            /* flock()ed state/lock */
    dq_store_t *store;                      /* owned */
    zsock_t *router;                        /* owned */
    dq_bnode_t *nodes[DQ_BROKER_MAX_NODES]; /* owned */
    int n_nodes;
    dq_upload_t uploads[DQ_BROKER_MAX_UPLOADS];
    int n_uploads;
    uint64_t next_upload;
    dq_pending_t pending[DQ_BROKER_BATCH];
    int n_pending;
    struct dq_file_batch *files; /* owned; writes a batch's images (broker/file_batch.h) */
    int64_t grace_end_ms;
    int64_t next_expire_ms;
    int64_t last_tick_ms; /* the previous dq_server_nodes_tick, to tell the broker's own stalls */
    bool dispatch_due; /* new work or new credit: try to lease */
    bool closing;      /* shutting down: leave leases for the next broker's grace period */
};

/* Milliseconds since the epoch (wall clock: the store's times survive restarts). */
int64_t dq_server_now(void);

/* Sends msg to a peer. On EHOSTUNREACH (peer gone) a node is forgotten; returns -1 then, and for
 * encoding failures (logged: our bug). */
int dq_server_send(dq_server_t *self, zframe_t *identity, const dq_msg_t *msg);
/* Replies ERROR code/message to a client. */
void dq_server_error(dq_server_t *self, zframe_t *identity, dq_err_code_t code, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* ---- server_node.c ---- */
dq_bnode_t *dq_server_node_find(dq_server_t *self, zframe_t *identity);
/* Handles one decoded node message; takes ownership of msg's members when it keeps them. */
void dq_server_node_message(dq_server_t *self, zframe_t *identity, dq_msg_t *msg);
/* Leases shards to nodes with credit and sends the ASSIGNs. */
void dq_server_dispatch(dq_server_t *self);
/* The serving rules (dq_store_check_serving) over the connected nodes: jobs nobody serves, or
 * whose every serving node is blocked, fail instead of waiting forever. */
void dq_server_check_serving(dq_server_t *self, int64_t now);
/* Heartbeats, liveness (silent nodes are forgotten). drained: the socket had nothing more to
 * read, so a node's silence is its own (after a cut-short read, nobody is judged silent). */
void dq_server_nodes_tick(dq_server_t *self, int64_t now, bool drained);
/* Removes a node; with requeue its shards go back to the queue (store.node_forget). */
void dq_server_node_drop(dq_server_t *self, dq_bnode_t *node, bool requeue, const char *why);
/* Sends STOP for every shard of job held by any node and forgets them (cancel). */
void dq_server_nodes_stop_job(dq_server_t *self, int64_t job, dq_stop_reason_t reason);
/* Index of (shard, attempt) in node->held, or -1. */
int dq_server_node_holds(const dq_bnode_t *node, int64_t shard, int attempt);
void dq_server_node_release(dq_bnode_t *node, int64_t shard);
/* True when node holds (shard, attempt), reclaiming it after a restart if the store agrees;
 * false when the attempt is stale. */
bool dq_server_node_check(dq_server_t *self, dq_bnode_t *node, uint64_t job, uint64_t shard,
                          uint32_t attempt);
/* Fills a wire node description (owned members). */
int dq_server_node_info(const dq_bnode_t *node, int64_t now, dq_node_info_t *out);
void dq_server_node_free(dq_bnode_t **node_p);

/* ---- server_client.c ---- */
void dq_server_client_message(dq_server_t *self, zframe_t *identity, dq_msg_t *msg);
/* Discards uploads idle past the timeout. */
void dq_server_uploads_tick(dq_server_t *self, int64_t now);

/* ---- server_result.c ---- */
/* Writes, commits and acknowledges every pending RESULT (one store transaction). */
void dq_server_results_flush(dq_server_t *self);
/* Writes <out_dir>/results.jsonl for a job from the store, atomically. Returns 0 or -1 (logged). */
int dq_server_write_manifest(dq_server_t *self, int64_t job);
/* After a job may have finished: writes its manifest when it is done, failed or cancelled. */
void dq_server_job_maybe_finished(dq_server_t *self, int64_t job);
dq_job_state_t dq_server_wire_state(dq_store_job_state_t state);

#endif
