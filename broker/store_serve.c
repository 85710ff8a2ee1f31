/* broker/store_serve.c: the serving rules: jobs whose model no connected node serves, or whose
 * every serving node is blocked, fail instead of staying queued forever. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store_int.h"

#define DQ_STORE_MAX_REASON 900 /* bytes of a failure message (under DQ_PROTO_MAX_MESSAGE) */

/* A job with queued shards that leasing could pick, with its model. */
typedef struct {
    int64_t id;
    char *model; /* owned */
} s_waiting_t;

/* Jobs that leasing would consider, read from the same partial index as the lease query. */
static const char s_sql_waiting[] =
    "SELECT id, model FROM jobs INDEXED BY jobs_lease WHERE state IN ('queued','running') AND "
    "shards_queued > 0";

static void s_waiting_free(s_waiting_t *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(w[i].model);
    free(w);
}

/* Reads every waiting job into *out (owned). Returns OK or DB. */
static dq_store_rc_t s_waiting(dq_store_t *self, s_waiting_t **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *stmt = dq_store__prep(self, s_sql_waiting);
    if (!stmt) return DQ_STORE_DB;
    s_waiting_t *w = NULL;
    size_t n = 0, cap = 0;
    dq_store_rc_t rc = DQ_STORE_OK;
    int r;
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            s_waiting_t *g = realloc(w, c * sizeof *g);
            if (!g) {
                rc = DQ_STORE_FAIL(self, DQ_STORE_DB, "serving check: out of memory");
                break;
            }
            w = g, cap = c;
        }
        w[n].id = sqlite3_column_int64(stmt, 0);
        w[n].model = strdup((const char *)sqlite3_column_text(stmt, 1));
        if (!w[n].model) {
            rc = DQ_STORE_FAIL(self, DQ_STORE_DB, "serving check: out of memory");
            break;
        }
        n++;
    }
    if (rc == DQ_STORE_OK && r != SQLITE_DONE) rc = DQ_STORE_DB;
    sqlite3_reset(stmt);
    if (rc) {
        s_waiting_free(w, n);
        return rc;
    }
    *out = w;
    *n_out = n;
    return DQ_STORE_OK;
}

/* Appends text to buf (size bytes) at *len, ending in "..." when it does not fit. */
static void s_append(char *buf, size_t size, size_t *len, const char *text) {
    if (*len + 1 >= size) return;
    int n = snprintf(buf + *len, size - *len, "%s", text);
    if (n < 0) return;
    if ((size_t)n >= size - *len) {
        *len = size - 1;
        if (size > 4) memcpy(buf + size - 4, "...", 4);
        return;
    }
    *len += (size_t)n;
}

/* "a, b": the distinct model names the nodes serve, "(none)" when they serve none. */
static void s_model_names(const dq_store_node_t *nodes, int n_nodes, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_nodes; i++)
        for (int k = 0; k < nodes[i].n_models; k++) {
            const char *m = nodes[i].models[k];
            bool seen = false;
            for (int j = 0; j <= i && !seen; j++)
                for (int l = 0; l < (j < i ? nodes[j].n_models : k) && !seen; l++)
                    seen = strcmp(nodes[j].models[l], m) == 0;
            if (seen) continue;
            if (len) s_append(buf, size, &len, ", ");
            s_append(buf, size, &len, m);
        }
    if (!len) snprintf(buf, size, "(none)");
}

static const char s_sql_next_queued[] =
    "SELECT id, attempt, last_error FROM shards WHERE job = ? AND state = 'queued' LIMIT 1";
static const char s_sql_shard_unserved[] =
    "UPDATE shards SET state = 'failed', last_error = ?, error_class = ? WHERE id = ?";
/* The job's latest attempt error (max() picks the row whose message is returned). */
static const char s_sql_job_last_error[] =
    "SELECT message, max(end_ms) FROM attempts WHERE job = ? AND message IS NOT NULL";

/* Fails every queued shard of job in one transaction. unserved: message is the whole error;
 * otherwise (blocked) each shard's error is its last one (or the job's) + message. */
static dq_store_rc_t s_fail_queued(dq_store_t *self, int64_t job, bool unserved,
                                   const char *message, int64_t now, int *n_failed) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    char job_error[DQ_STORE_MAX_REASON] = "no attempt ran";
    sqlite3_stmt *stmt;
    int r = 0;
    if (!unserved) {
        r = dq_store__get(self, &stmt, s_sql_job_last_error, "i", job);
        if (r == 1) {
            const char *m = (const char *)sqlite3_column_text(stmt, 0);
            if (m) snprintf(job_error, sizeof job_error, "%s", m);
            sqlite3_reset(stmt);
        }
    }
    int count = 0;
    while (r >= 0 && rc == DQ_STORE_OK) {
        r = dq_store__get(self, &stmt, s_sql_next_queued, "i", job);
        if (r <= 0) break;
        int64_t shard = sqlite3_column_int64(stmt, 0);
        int attempt = sqlite3_column_int(stmt, 1);
        char error[2 * DQ_STORE_MAX_REASON];
        if (unserved) {
            snprintf(error, sizeof error, "%s", message);
        } else {
            const char *last = (const char *)sqlite3_column_text(stmt, 2);
            snprintf(error, sizeof error, "%.*s; %s", DQ_STORE_MAX_REASON / 2,
                     last ? last : job_error, message);
        }
        sqlite3_reset(stmt);
        rc = dq_store__run(self, s_sql_shard_unserved, "ssi", error,
                           unserved ? "unserved" : "blocked", shard);
        if (!rc) rc = dq_store__event(self, now, "fail", job, shard, attempt, NULL, 0, -1, error);
        count++;
    }
    if (r < 0) rc = DQ_STORE_DB;
    if (!rc) rc = dq_store__job_settle(self, job, now);
    rc = dq_store__end(self, rc);
    if (!rc) *n_failed += count;
    return rc;
}

static const char s_sql_block_count[] = "SELECT count(*) FROM blocklist WHERE job = ?";

/* The time a job was first seen unserved (tracker lookup); 0 when it was not. */
static int64_t s_unserved_since(const dq_store_t *self, int64_t job) {
    for (int i = 0; i < self->n_unserved; i++)
        if (self->unserved[i].job == job) return self->unserved[i].since_ms;
    return 0;
}

dq_store_rc_t dq_store_check_serving(dq_store_t *self, const dq_store_node_t *nodes, int n_nodes,
                                     int64_t now, int64_t unserved_ms, dq_store_unserved_fn *fn,
                                     void *arg, int *n_failed) {
    int failed = 0;
    if (n_failed) *n_failed = 0;
    self->err[0] = '\0';
    if (n_nodes < 0 || (n_nodes > 0 && !nodes) || unserved_ms < 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "serving check: nodes and unserved_ms >= 0 required");
    if (n_nodes == 0) { /* nothing to judge by: every timer starts over */
        self->n_unserved = 0;
        return DQ_STORE_OK;
    }
    s_waiting_t *w;
    size_t n_w;
    dq_store_rc_t rc = s_waiting(self, &w, &n_w);
    if (rc) return rc;
    /* The new tracker holds the jobs unserved now, each with the time first seen so. */
    dq_store_unserved_t *next = calloc(n_w + 1, sizeof *next);
    if (!next) {
        s_waiting_free(w, n_w);
        return DQ_STORE_FAIL(self, DQ_STORE_DB, "serving check: out of memory");
    }
    int n_next = 0;
    char names[DQ_STORE_MAX_REASON / 2], message[DQ_STORE_MAX_REASON];
    for (size_t i = 0; i < n_w && rc == DQ_STORE_OK; i++) {
        int serving = 0, blocked = 0;
        for (int k = 0; k < n_nodes; k++)
            serving += dq_store_node_serves(&nodes[k], w[i].model);
        /* Per-node blocklist lookups only when the job blocks enough nodes to matter: this runs
         * every second over every waiting job. */
        int64_t n_blocked = 0;
        if (serving > 0 &&
            dq_store__get_i64(self, &n_blocked, s_sql_block_count, "i", w[i].id) != 1) {
            rc = DQ_STORE_DB;
            break;
        }
        size_t len = 0;
        names[0] = '\0';
        for (int k = 0; n_blocked >= serving && k < n_nodes; k++) {
            if (!dq_store_node_serves(&nodes[k], w[i].model) ||
                !dq_store_node_blocked(self, w[i].id, nodes[k].name))
                continue;
            blocked++;
            if (len) s_append(names, sizeof names, &len, ", ");
            s_append(names, sizeof names, &len, nodes[k].name);
        }
        bool fail = false, unserved = serving == 0;
        if (unserved) {
            int64_t since = s_unserved_since(self, w[i].id);
            if (!since) since = now;
            if (now - since >= unserved_ms) {
                fail = true;
                s_model_names(nodes, n_nodes, names, sizeof names);
                snprintf(message, sizeof message,
                         "no connected node serves model '%.200s'; nodes serve: %s", w[i].model,
                         names);
            } else {
                next[n_next++] = (dq_store_unserved_t){.job = w[i].id, .since_ms = since};
            }
        } else if (blocked == serving) {
            fail = true;
            snprintf(message, sizeof message,
                     "not retried: every connected node serving model '%.200s' is blocked for"
                     " this job after repeated failures (%s)",
                     w[i].model, names);
        }
        if (!fail) continue;
        int before = failed;
        rc = s_fail_queued(self, w[i].id, unserved, message, now, &failed);
        if (!rc && fn && failed > before) fn(arg, w[i].id, message);
    }
    s_waiting_free(w, n_w);
    if (rc) { /* keep the old timers: the next call tries again */
        free(next);
        return rc;
    }
    free(self->unserved);
    self->unserved = next;
    self->n_unserved = n_next;
    if (n_failed) *n_failed = failed;
    return DQ_STORE_OK;
}
