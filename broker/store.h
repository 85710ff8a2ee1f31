/* broker/store.h: the broker's durable job queue (SQLite, WAL): jobs, shards, leases, results. */
#ifndef DQ_STORE_H
#define DQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The store is the broker's only state. Every operation below is one SQLite transaction: it
 * either commits whole or leaves the database unchanged, and when it returns DQ_STORE_OK the
 * change is durable (synchronous=FULL). Time is always passed in (`now`, milliseconds since the
 * epoch) so tests control it. docs/queue-store.md has the schema and state machines.
 *
 * Errors: functions return a dq_store_rc_t; anything other than OK, DUPLICATE or STALE leaves a
 * message in dq_store_errmsg() that says what and where ("job 4: no request at line 17"). */

typedef enum {
    DQ_STORE_OK = 0,
    DQ_STORE_DUPLICATE, /* already done (a result committed before): acknowledge and ignore */
    DQ_STORE_STALE,     /* fenced: an older attempt, another node, or a lease no longer held */
    DQ_STORE_NOT_FOUND, /* no such job, shard or request */
    DQ_STORE_INVALID,   /* bad argument or the object is in the wrong state for this operation */
    DQ_STORE_DB,        /* SQLite failed (I/O, full disk, injected fault); nothing was changed */
    DQ_STORE_RC_COUNT
} dq_store_rc_t;
const char *dq_store_rc_name(dq_store_rc_t rc);

typedef enum {
    DQ_STORE_JOB_STAGING, /* being submitted; invisible to scheduling; discarded by abort or recover */
    DQ_STORE_JOB_QUEUED,  /* committed, no shard leased yet */
    DQ_STORE_JOB_RUNNING,
    DQ_STORE_JOB_PAUSED,    /* no new leases; leased shards run to the end */
    DQ_STORE_JOB_CANCELLED, /* terminal */
    DQ_STORE_JOB_DONE,      /* terminal: every shard done */
    DQ_STORE_JOB_FAILED,    /* every shard done or failed, at least one failed; `retry` reopens it */
    DQ_STORE_JOB_STATE_COUNT
} dq_store_job_state_t;
const char *dq_store_job_state_name(dq_store_job_state_t state);

typedef enum {
    DQ_SHARD_QUEUED,
    DQ_SHARD_LEASED,
    DQ_SHARD_DONE,
    DQ_SHARD_FAILED,
    DQ_SHARD_CANCELLED,
    DQ_SHARD_STATE_COUNT
} dq_shard_state_t;
const char *dq_shard_state_name(dq_shard_state_t state);

typedef struct dq_store dq_store_t;

/* Policy knobs; dq_store_params_init() fills the defaults. */
typedef struct {
    int max_attempts;         /* leases per shard before it fails (default 3) */
    int block_after_failures; /* fail() calls by one node on one job before the node is blocked
                                 for that job (default 2) */
    bool sync_full;           /* synchronous=FULL (default); false = NORMAL, which survives a
                                 process kill but may lose the last commits on power loss */
} dq_store_params_t;
void dq_store_params_init(dq_store_params_t *params);

/* Opens (creating if needed) the database at `path`, sets WAL mode and the sync level, and
 * creates or upgrades the schema (PRAGMA user_version). params may be NULL (defaults). Returns
 * NULL on failure and writes why into err (err_size bytes). A database written by a newer
 * diffq (higher schema version) is refused, never modified. */
dq_store_t *dq_store_open(const char *path, const dq_store_params_t *params, char *err,
                          size_t err_size);
/* Closes the database (finalising cached statements) and nulls *self_p. Idempotent. */
void dq_store_destroy(dq_store_t **self_p);
/* The message of the last failed call on this store ("" if none). Borrowed, valid until the
 * next call. */
const char *dq_store_errmsg(const dq_store_t *self);
/* The schema version this code writes (PRAGMA user_version). */
int dq_store_schema_version(void);

/* Startup recovery, called once after open by the broker: deletes staging jobs (a client that
 * disappeared mid-submit) and starts a grace period for shards leased before the restart: they
 * stay leased, by the same node and attempt, until grace_end_ms; a node that re-announces keeps
 * each of them with dq_store_reclaim(). After grace_end_ms, dq_store_expire() requeues the rest
 * with attempt+1, without counting that attempt against max_attempts (the broker lost them, not
 * the node). Writes the number of shards put in grace into *n_orphans (may be NULL). INVALID
 * when grace_end_ms < now. */
dq_store_rc_t dq_store_recover(dq_store_t *self, int64_t now, int64_t grace_end_ms, int *n_orphans);

/* ---- Submitting a job: begin, add requests in bounded pieces, commit (or abort). ---- */

typedef struct {
    const char *name;    /* borrowed; shown in listings */
    const char *model;   /* borrowed; model name or path every shard is rendered with */
    const char *out_dir; /* borrowed; where the broker writes the job's images; NULL: */
    const char *out_base; /* borrowed; ... out_base/<job id> */
    int priority;        /* higher first */
    int shard_size;      /* requests per shard (>= 1) */
} dq_job_params_t;

typedef struct {
    int64_t line;      /* 1-based line number in the submitted file; unique in the job */
    const char *json;  /* borrowed; the request's canonical JSON (common/job.h,
                          dq_request_to_json): the one stored form of a request */
    const char *id;    /* borrowed; request id or NULL (then the line names the files) */
    uint64_t seed;     /* the request's seed (recorded in the manifest) */
    int num_images;    /* images per request, >= 1 */
    int width, height; /* shard key: requests of one shard share a batch */
    int steps;
    const char *scheduler; /* borrowed */
} dq_store_request_t;

/* Creates a staging job and writes its id into *job_id. INVALID for bad params. */
dq_store_rc_t dq_store_job_begin(dq_store_t *self, const dq_job_params_t *params, int64_t now,
                                 int64_t *job_id);
/* The job's output folder (any state, staging included) into buf. NOT_FOUND for no such job;
 * INVALID when buf is too small. */
dq_store_rc_t dq_store_job_out_dir(dq_store_t *self, int64_t job_id, char *buf, size_t size);
/* Adds n requests (one transaction) to a staging job, placing each in the newest shard with
 * the same key (width, height, steps, scheduler) that has room, else in a new shard; shards are
 * fixed here, in file order. On any error (duplicate line, unsafe id, two requests naming the
 * same output file, ...) none of the n requests is added and the job stays staging. */
dq_store_rc_t dq_store_job_add(dq_store_t *self, int64_t job_id, const dq_store_request_t *reqs,
                               size_t n);
/* Makes a staging job queued (schedulable) and records the submit event. INVALID if the job
 * is not staging or has no requests. After OK the job survives any crash. */
dq_store_rc_t dq_store_job_commit(dq_store_t *self, int64_t job_id, int64_t now);
/* Deletes a staging job and everything added to it. INVALID if the job is not staging. */
dq_store_rc_t dq_store_job_abort(dq_store_t *self, int64_t job_id);

/* ---- Scheduling: leases with fencing by attempt number. ---- */

/* A connected node as leasing and the serving rules see it: its name and the models it serves.
 * A job's model (as submitted) is served when it equals one of the names or paths. */
#define DQ_STORE_MAX_NODE_MODELS 16 /* models per node (DQ_PROTO_MAX_MODELS) */
typedef struct {
    const char *name;          /* borrowed; 1..255 bytes */
    const char *const *models; /* borrowed; [n_models] model names */
    const char *const *paths;  /* borrowed; NULL, or [n_models] the path each model was given
                                  by (NULL or "" for a model given by name) */
    int n_models;              /* 0..DQ_STORE_MAX_NODE_MODELS */
    int max_images;            /* images it renders in one batch (READY bimg); 0: unknown, so
                                  shards are leased whole */
} dq_store_node_t;

/* True when node serves `model` (a name or a path of one of its models). */
bool dq_store_node_serves(const dq_store_node_t *node, const char *model);

typedef struct {
    int64_t shard;
    int64_t job;
    int attempt; /* the fencing token: renew/fail/commit must quote it */
    int n_requests;
    int n_images;
    int width, height, steps;
    char scheduler[64];
    char model[512];
    int64_t lease_expiry; /* ms */
    int64_t split_shard;  /* this shard was cut to fit the node from split_shard, which stays
                             queued with the other requests; 0 when leased whole */
} dq_lease_t;

/* Leases up to max_shards queued shards to `node` (1..255 bytes) until now + lease_ms, and
 * writes them into out[0..*n_out) (out holds max_shards). Order: highest job priority first; among
 * jobs of equal priority the one with the fewest leased shards (fair share), then the oldest job
 * (FIFO); within a job, the oldest shard this node has not attempted before, else the oldest shard.
 * Paused, cancelled and finished jobs and jobs that block this node are skipped. *n_out = 0 when
 * nothing is queued. */
dq_store_rc_t dq_store_lease(dq_store_t *self, const char *node, int max_shards, int64_t now,
                             int64_t lease_ms, dq_lease_t *out, int *n_out);
/* As dq_store_lease, but only shards of jobs whose model the node serves (jobs of other models
 * are skipped, not waited for), and each fitted to node->max_images: a shard with more images
 * than that and more than one request is split in the same transaction: its first requests in
 * line order whose images fit (at least one: a request bigger than the node's batch is leased
 * whole) move to a new shard of the same job and key with the same attempt number, attempts used
 * and last error, which is leased; the rest stay queued in the old shard, in its place in the
 * job's order. Only queued shards are split. The assign event's detail says what the node was
 * given ("requests=4 images=4", plus "split_from=S left_requests=R left_images=I" after a
 * split). INVALID for a node with more than DQ_STORE_MAX_NODE_MODELS models. */
dq_store_rc_t dq_store_lease_node(dq_store_t *self, const dq_store_node_t *node, int max_shards,
                                  int64_t now, int64_t lease_ms, dq_lease_t *out, int *n_out);

/* The serving rules, which keep a job from waiting forever for a node that will never take it.
 * The broker calls this about once a second with the nodes connected now:
 *  - no node connected: nothing fails (under Slurm nodes may start after the broker);
 *  - a queued or running job with queued shards whose model no connected node serves, for
 *    unserved_ms in a row, has its queued shards failed with "no connected node serves model
 *    'X'; nodes serve: a, b". The time is measured from the first call that saw it so and kept
 *    in memory only: a broker restart, or a call with no node connected, starts it over;
 *  - a job for which every connected node that serves its model is blocked (repeated failures)
 *    has its queued shards failed at once, each with its last error (the job's latest when the
 *    shard has none) and the reason it was not retried.
 * Leased shards and paused jobs are left alone; `retry` requeues what failed here. For each job
 * whose shards were failed, fn (may be NULL) is called after the job's transaction committed,
 * with the message. Writes the number of shards failed into *n_failed (may be NULL). */
typedef void(dq_store_unserved_fn)(void *arg, int64_t job, const char *message);
dq_store_rc_t dq_store_check_serving(dq_store_t *self, const dq_store_node_t *nodes, int n_nodes,
                                     int64_t now, int64_t unserved_ms, dq_store_unserved_fn *fn,
                                     void *arg, int *n_failed);
/* Extends a lease to now + lease_ms. STALE unless the shard is leased to `node` with exactly
 * this attempt (an older attempt is fenced off); NOT_FOUND for an unknown shard. */
dq_store_rc_t dq_store_renew(dq_store_t *self, int64_t shard, int attempt, const char *node,
                             int64_t now, int64_t lease_ms);
/* Ends every lease that expired at or before now: the shard is requeued with attempt+1, or
 * fails (last error kept) when it has used max_attempts. Writes the count into *n (may be
 * NULL). */
dq_store_rc_t dq_store_expire(dq_store_t *self, int64_t now, int *n);
/* The node reports that the attempt failed: error_class ("oom", "model", "internal", ...) and
 * message are recorded; the shard is requeued (attempt+1) or fails at max_attempts; a node
 * that has failed block_after_failures of this job's attempts is blocked for the job. STALE
 * as for renew. */
dq_store_rc_t dq_store_fail(dq_store_t *self, int64_t shard, int attempt, const char *node,
                            const char *error_class, const char *message, int64_t now);
/* A node is gone: every shard it holds is requeued with attempt+1 (or fails at max_attempts).
 * Writes the count into *n (may be NULL). */
dq_store_rc_t dq_store_node_forget(dq_store_t *self, const char *node, int64_t now, int *n);
/* After a restart (see dq_store_recover), a node keeps a shard it still runs: OK extends the
 * lease to now + lease_ms; STALE if the shard is not leased to this node and attempt. */
dq_store_rc_t dq_store_reclaim(dq_store_t *self, const char *node, int64_t shard, int attempt,
                               int64_t now, int64_t lease_ms);
/* The node never received the ASSIGN of this attempt (it said so: docs/protocol.md, "Held-shard
 * sync"): the shard is requeued with attempt+1 at once, the attempt's outcome is 'lost' and it
 * does not count toward max_attempts (the shard's last error stays); a 'requeue' event records
 * it. STALE unless the shard is leased to `node` with exactly this attempt; NOT_FOUND for an
 * unknown shard; INVALID without a node. */
dq_store_rc_t dq_store_assign_lost(dq_store_t *self, int64_t shard, int attempt, const char *node,
                                   int64_t now);
/* OK when the shard is leased to `node` with exactly this attempt; STALE when it is not (done,
 * requeued, cancelled, another attempt); NOT_FOUND for an unknown shard. Writes nothing. */
dq_store_rc_t dq_store_lease_held(dq_store_t *self, int64_t shard, int attempt, const char *node);
/* True when `node` is blocked for job_id. */
bool dq_store_node_blocked(dq_store_t *self, int64_t job_id, const char *node);

/* Calls fn for each request of a shard in line order (the ASSIGN payload). Strings are
 * borrowed for the call only. Stops and returns fn's nonzero value as INVALID. */
typedef int(dq_store_request_fn)(void *arg, const dq_store_request_t *req);
dq_store_rc_t dq_store_shard_requests(dq_store_t *self, int64_t shard, dq_store_request_fn *fn,
                                      void *arg);

/* ---- Results: exactly once. ---- */

typedef struct {
    int64_t job;
    int64_t line;
    int image;          /* 0-based index within the request */
    int attempt;        /* the attempt that rendered it */
    const char *path;   /* borrowed; where the broker wrote the file */
    const char *sha256; /* borrowed; 64 lowercase hex digits */
    int64_t size;       /* bytes */
    dq_store_rc_t rc;   /* out (commit_results): OK, DUPLICATE, STALE or an error */
} dq_result_t;

/* Records one image. OK: committed now (the shard is done when all its images are, the job
 * when all its shards are). DUPLICATE: this image was committed before (by any attempt):
 * acknowledge and ignore; nothing is counted twice. STALE: not committed, and the attempt is
 * not the one holding the shard's lease (older attempt, requeued or cancelled shard).
 * NOT_FOUND / INVALID for a request or image index that does not exist. */
dq_store_rc_t dq_store_commit_result(dq_store_t *self, const dq_result_t *result, int64_t now);
/* Records n results in one transaction (one fsync), writing each item's outcome into its rc.
 * Returns OK when the transaction committed (items may still be DUPLICATE, STALE, NOT_FOUND or
 * INVALID individually), DB when it did not: then no item was recorded. */
dq_store_rc_t dq_store_commit_results(dq_store_t *self, dq_result_t *results, size_t n,
                                      int64_t now);

/* One results.jsonl row: a request and its committed files in image order. */
typedef struct {
    int64_t line;
    const char *id; /* NULL when the request had none */
    uint64_t seed;
    int num_images;
    int n_files;          /* committed images (== num_images for a finished request) */
    const int *images;    /* [n_files] image indices */
    const char **paths;   /* [n_files] */
    const char **sha256;  /* [n_files] */
    const int64_t *sizes; /* [n_files] */
} dq_manifest_row_t;
typedef int(dq_store_manifest_fn)(void *arg, const dq_manifest_row_t *row);
/* Calls fn once per request of the job, in line order (memory: one row at a time). Pointers in
 * the row are valid during the call only. A nonzero return from fn stops and returns INVALID. */
dq_store_rc_t dq_store_manifest(dq_store_t *self, int64_t job_id, dq_store_manifest_fn *fn,
                                void *arg);

/* The file name of one image: "<stem>-<k>.png" where stem is the request id, or the line
 * number zero-padded to 6 digits when the id is NULL, and k the 0-based image index (always
 * present, so adding images never renames the first). Returns 0, or -1 when the id is not a
 * safe file name (empty, over 128 bytes, leading '.', or a byte outside [A-Za-z0-9._-]) or buf
 * is too small. */
int dq_store_output_name(const char *id, int64_t line, int image, char *buf, size_t size);
/* The file name of image `image` of the job's request on `line`, as dq_store_output_name made
 * it from the request's id when it was added. NOT_FOUND for no such request, INVALID for a
 * negative image or a buffer too small. */
dq_store_rc_t dq_store_image_name(dq_store_t *self, int64_t job, int64_t line, int image,
                                  char *buf, size_t size);

/* ---- Operator actions. ---- */

/* Cancels a job: queued and leased shards become cancelled (later renew/commit of those
 * leases are STALE). INVALID for a finished or staging job. */
dq_store_rc_t dq_store_cancel(dq_store_t *self, int64_t job_id, int64_t now);
/* No new leases for the job; leased shards may renew and commit. INVALID unless queued or
 * running. */
dq_store_rc_t dq_store_pause(dq_store_t *self, int64_t job_id, int64_t now);
/* Undoes pause. INVALID unless paused. */
dq_store_rc_t dq_store_resume(dq_store_t *self, int64_t job_id, int64_t now);
/* Requeues the job's failed shards with a fresh attempt count and clears the job's node
 * blocklist. Writes the number requeued into *n (may be NULL). INVALID unless the job is
 * running, paused or failed. */
dq_store_rc_t dq_store_retry(dq_store_t *self, int64_t job_id, int64_t now, int *n);

typedef struct {
    int64_t id;
    char name[256];
    char model[512];
    char out_dir[1024];
    int priority;
    dq_store_job_state_t state;
    int64_t created_ms, updated_ms;
    int64_t n_requests, n_images, n_shards;
    int64_t requests_queued, requests_running, requests_done, requests_failed, requests_cancelled;
    int64_t images_committed;
    /* Images not committed yet, by their shard's state (exact: shards count their images). */
    int64_t images_queued, images_running, images_failed, images_cancelled;
    double images_per_s; /* over the window given to dq_store_job_status */
    double eta_s;        /* remaining images / rate; -1 when unknown (no rate yet) */
    char last_error[1024]; /* the error of the job's latest failed shard; "" when none */
} dq_job_status_t;

/* Fills *out for one job. Rate over the last window_ms (or since the job was created, if
 * later). NOT_FOUND for unknown or staging jobs. */
dq_store_rc_t dq_store_job_status(dq_store_t *self, int64_t job_id, int64_t now, int64_t window_ms,
                                  dq_job_status_t *out);
/* The job's own row only (name, model, out_dir, priority, state, sizes, requests_done,
 * images_committed): no per-state counts, rate or ETA (those stay 0). O(1), for hot paths such
 * as result commits. NOT_FOUND for unknown or staging jobs. */
dq_store_rc_t dq_store_job_brief(dq_store_t *self, int64_t job_id, dq_job_status_t *out);
typedef int(dq_store_job_fn)(void *arg, const dq_job_status_t *status);
/* Calls fn for each non-staging job, oldest first. fn returning nonzero stops (INVALID). */
dq_store_rc_t dq_store_job_list(dq_store_t *self, int64_t now, int64_t window_ms,
                                dq_store_job_fn *fn, void *arg);

/* ---- The event log (append-only; for audits and the tests' property checks). ---- */

typedef struct {
    int64_t seq;
    int64_t t_ms;
    const char *kind; /* submit assign renew expire commit duplicate fail cancel pause resume
                         retry requeue reclaim block done */
    int64_t job;
    int64_t shard;      /* 0 when not about a shard */
    int attempt;        /* 0 when not about an attempt */
    const char *node;   /* "" when none */
    int64_t line;       /* commit/duplicate: the request line; else 0 */
    int image;          /* commit/duplicate: the image; else -1 */
    const char *detail; /* "" or free text (error message, counts) */
} dq_event_t;
typedef int(dq_store_event_fn)(void *arg, const dq_event_t *ev);
/* Calls fn for each event of job_id (0 = all jobs) in order. Strings valid during the call. */
dq_store_rc_t dq_store_events(dq_store_t *self, int64_t job_id, dq_store_event_fn *fn, void *arg);

/* ---- Fault injection (tests): the nth SQLite step or commit from now fails with SQLITE_IOERR
 * as if the disk had; 0 disables. Returns how many steps were left before it fired (0 if it
 * fired or was disabled), so a test can tell whether the fault was reached. ---- */
int dq_store_fault_fail_nth(dq_store_t *self, int nth);

/* ---- Diagnostics. ---- */

/* Runs EXPLAIN QUERY PLAN on every statement this store has prepared so far and reports those
 * that scan a whole table or sort in a temporary b-tree (listings meant to scan are exempt).
 * Writes one line per offender into report and returns how many there were (-1 on error).
 * Tests call it after exercising every operation, so a lost index fails a test. */
int dq_store_check_plans(dq_store_t *self, char *report, size_t size);

#endif
