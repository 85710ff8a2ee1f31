/* broker/store_int.h: what the store's source files share (not for users of broker/store.h). */
#ifndef DQ_STORE_INT_H
#define DQ_STORE_INT_H

#include <sqlite3.h>

#include "broker/store.h"

/* Names with a double underscore are private to the broker/store*.c files. */

#define DQ_STORE_MAX_NODE  255 /* bytes in a node name (lease refuses longer ones) */
#define DQ_STORE_MAX_STMTS 96  /* cached prepared statements; the store uses about 60 */

/* A job its model's nodes do not serve, and since when (dq_store_check_serving). */
typedef struct {
    int64_t job;
    int64_t since_ms;
} dq_store_unserved_t;

struct dq_store {
    sqlite3 *db; /* owned */
    dq_store_params_t params;
    const char *sql[DQ_STORE_MAX_STMTS];    /* borrowed static SQL texts, the cache keys */
    sqlite3_stmt *stmt[DQ_STORE_MAX_STMTS]; /* owned; prepared once, reused */
    int n_stmt;
    char err[512];       /* last error message */
    int fault_countdown; /* > 0: the step that brings it to 0 fails (fault injection) */
    dq_store_unserved_t *unserved; /* owned; jobs no connected node serves (in memory only:
                                      the time measures live connections) */
    int n_unserved;
};

/* Records a message (printf-style) with the source line and returns rc. */
dq_store_rc_t dq_store__fail(dq_store_t *self, dq_store_rc_t rc, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define DQ_STORE_FAIL(self, rc, ...) dq_store__fail((self), (rc), __LINE__, __VA_ARGS__)

/* The cached statement for a static SQL text, reset and with bindings cleared; NULL (message
 * recorded) if it does not prepare. */
sqlite3_stmt *dq_store__prep(dq_store_t *self, const char *sql);
/* sqlite3_step through the fault hook; on an error records the SQLite message. */
int dq_store__step(dq_store_t *self, sqlite3_stmt *stmt);

/* Binds arguments by a type string: 'i' int64_t, 'n' int, 's' const char * (NULL binds NULL).
 * dq_store__run runs a statement that returns no row; dq_store__get runs one that returns at
 * most one row and leaves the statement on it (returns 1 row, 0 none, -1 error); read columns
 * with sqlite3_column_* then call sqlite3_reset. */
dq_store_rc_t dq_store__run(dq_store_t *self, const char *sql, const char *types, ...);
int dq_store__get(dq_store_t *self, sqlite3_stmt **stmt_out, const char *sql, const char *types,
                  ...);
/* dq_store__get for one integer column; 1 found (value in *out), 0 no row, -1 error. */
int dq_store__get_i64(dq_store_t *self, int64_t *out, const char *sql, const char *types, ...);

/* BEGIN IMMEDIATE. */
dq_store_rc_t dq_store__begin(dq_store_t *self);
/* Ends the transaction opened by dq_store__begin: commits when rc is OK, DUPLICATE or STALE
 * (those may have written events), else rolls back. Returns rc, or DB if the commit failed
 * (then everything was rolled back). */
dq_store_rc_t dq_store__end(dq_store_t *self, dq_store_rc_t rc);

/* Appends an event. node, detail may be NULL. */
dq_store_rc_t dq_store__event(dq_store_t *self, int64_t now, const char *kind, int64_t job,
                              int64_t shard, int attempt, const char *node, int64_t line, int image,
                              const char *detail);

/* Puts a finished job in its final state (done, or failed when a shard failed) once no shard
 * is queued or leased; also moves queued -> running. Part of the caller's transaction. */
dq_store_rc_t dq_store__job_settle(dq_store_t *self, int64_t job, int64_t now);
/* Takes a leased shard back (attempt outcome recorded): requeued with attempt+1, or failed
 * when it has used max_attempts (count_attempt false: the attempt is not counted, and the
 * shard's last error and class are left as they were; message still goes to the attempt and
 * the event). */
dq_store_rc_t dq_store__requeue(dq_store_t *self, int64_t shard, int64_t now, const char *outcome,
                                const char *event, const char *error_class, const char *message,
                                bool count_attempt);

/* What dq_store__split did: leased_shard 0 when the shard was left whole. */
typedef struct {
    int64_t leased_shard; /* the new shard with the requests that fit, to lease; or 0 */
    int64_t rest_shard;   /* the shard split, still queued with the other requests */
    int rest_requests;    /* requests (and their images) left in it */
    int rest_images;
} dq_store_split_t;

/* Fits a queued shard to a node that renders max_images images in one batch (0: unknown, the
 * shard stays whole): when it has more images than that and more than one request, its first
 * requests in line order whose images fit (at least one) move to a new queued shard of the same
 * job and key with the same attempt bookkeeping, which the caller leases; the rest stay in the
 * shard, queued, in its place in the job's order. Part of the caller's transaction
 * (store_split.c). INVALID for a shard that is not queued. */
dq_store_rc_t dq_store__split(dq_store_t *self, int64_t shard, int max_images,
                              dq_store_split_t *out);

/* The schema: creates or upgrades to DQ_STORE_SCHEMA_VERSION (store_schema.c). */
#define DQ_STORE_SCHEMA_VERSION 2
dq_store_rc_t dq_store__schema_apply(dq_store_t *self);

dq_store_job_state_t dq_store__job_state_parse(const char *name);

#endif
