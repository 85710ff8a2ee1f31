/* broker/store_lease.c: leasing shards to nodes, renewal with fencing, expiry, failure, nodes. */
#include <stdio.h>
#include <string.h>

#include "broker/store_int.h"

/* Schedulable jobs in lease order, read straight from the partial index jobs_lease: the planner
 * (no ANALYZE statistics) would otherwise pick jobs_state and sort; INDEXED BY also makes a
 * schema change that breaks the index fail loudly at prepare time. */
static const char s_sql_pick_job[] =
    "SELECT id, model FROM jobs INDEXED BY jobs_lease WHERE state IN ('queued','running') AND "
    "shards_queued > 0"
    " AND NOT EXISTS (SELECT 1 FROM blocklist b WHERE b.job = jobs.id AND b.node = ?)"
    " ORDER BY priority DESC, shards_leased, id LIMIT 1";
/* The same for a node that says which models it serves: ?1 the node, ?2..?17 its model names
 * and ?18..?33 their paths (unused ones bound to NULL, which matches nothing). A fixed list keeps
 * one prepared statement that still reads the index. */
static const char s_sql_pick_job_models[] =
    "SELECT id, model FROM jobs INDEXED BY jobs_lease WHERE state IN ('queued','running') AND "
    "shards_queued > 0"
    " AND model IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33)"
    " AND NOT EXISTS (SELECT 1 FROM blocklist b WHERE b.job = jobs.id AND b.node = ?1)"
    " ORDER BY priority DESC, shards_leased, id LIMIT 1";
_Static_assert(DQ_STORE_MAX_NODE_MODELS == 16, "s_sql_pick_job_models binds 16 names + 16 paths");
/* The oldest queued shard of the job this node has not attempted, else the oldest. */
static const char s_sql_pick_shard_new[] =
    "SELECT id FROM shards s WHERE job = ? AND state = 'queued'"
    " AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.shard = s.id AND a.node = ?)"
    " ORDER BY id LIMIT 1";
static const char s_sql_pick_shard_any[] =
    "SELECT id FROM shards WHERE job = ? AND state = 'queued' ORDER BY id LIMIT 1";
static const char s_sql_shard_take[] =
    "UPDATE shards SET state = 'leased', node = ?, lease_expiry = ?, orphan = 0,"
    " attempts_used = attempts_used + 1 WHERE id = ?"
    " RETURNING attempt, n_requests, n_images, width, height, steps, scheduler";
static const char s_sql_attempt_insert[] =
    "INSERT INTO attempts(shard, attempt, job, node, start_ms) VALUES (?, ?, ?, ?, ?)";

bool dq_store_node_serves(const dq_store_node_t *node, const char *model) {
    for (int i = 0; model && i < node->n_models; i++) {
        const char *path = node->paths ? node->paths[i] : NULL;
        if ((node->models[i] && strcmp(node->models[i], model) == 0) ||
            (path && path[0] && strcmp(path, model) == 0))
            return true;
    }
    return false;
}

/* The next job to lease from: any model (served NULL), or one the node serves. 1 with the
 * statement on its row, 0 none, -1 error (as dq_store__get). */
static int s_pick_job(dq_store_t *self, const char *node, const dq_store_node_t *served,
                      sqlite3_stmt **stmt) {
    if (!served) return dq_store__get(self, stmt, s_sql_pick_job, "s", node);
    *stmt = dq_store__prep(self, s_sql_pick_job_models);
    if (!*stmt) return -1;
    sqlite3_bind_text(*stmt, 1, node, -1, SQLITE_STATIC);
    for (int i = 0; i < served->n_models; i++) {
        const char *path = served->paths ? served->paths[i] : NULL;
        sqlite3_bind_text(*stmt, 2 + i, served->models[i], -1, SQLITE_STATIC);
        if (path && path[0])
            sqlite3_bind_text(*stmt, 2 + DQ_STORE_MAX_NODE_MODELS + i, path, -1, SQLITE_STATIC);
    }
    int r = dq_store__step(self, *stmt);
    if (r == SQLITE_ROW) return 1;
    sqlite3_reset(*stmt);
    return r == SQLITE_DONE ? 0 : -1;
}

static dq_store_rc_t s_lease_one(dq_store_t *self, const char *node, const dq_store_node_t *served,
                                 int64_t now, int64_t lease_ms, dq_lease_t *out, bool *found) {
    *found = false;
    sqlite3_stmt *stmt;
    int r = s_pick_job(self, node, served, &stmt);
    if (r <= 0) return r < 0 ? DQ_STORE_DB : DQ_STORE_OK;
    memset(out, 0, sizeof *out);
    out->job = sqlite3_column_int64(stmt, 0);
    snprintf(out->model, sizeof out->model, "%s", (const char *)sqlite3_column_text(stmt, 1));
    sqlite3_reset(stmt);
    r = dq_store__get_i64(self, &out->shard, s_sql_pick_shard_new, "is", out->job, node);
    if (r == 0) r = dq_store__get_i64(self, &out->shard, s_sql_pick_shard_any, "i", out->job);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0) /* shards_queued said there was one: the counters are wrong */
        return DQ_STORE_FAIL(self, DQ_STORE_DB, "job %lld: queued shard count is inconsistent",
                             (long long)out->job);
    dq_store_split_t split;
    dq_store_rc_t rc = dq_store__split(self, out->shard, served ? served->max_images : 0, &split);
    if (rc) return rc;
    if (split.leased_shard) out->shard = split.leased_shard;
    out->lease_expiry = now + lease_ms;
    r = dq_store__get(self, &stmt, s_sql_shard_take, "sii", node, out->lease_expiry, out->shard);
    if (r != 1) return DQ_STORE_DB;
    out->attempt = sqlite3_column_int(stmt, 0);
    out->n_requests = sqlite3_column_int(stmt, 1);
    out->n_images = sqlite3_column_int(stmt, 2);
    out->width = sqlite3_column_int(stmt, 3);
    out->height = sqlite3_column_int(stmt, 4);
    out->steps = sqlite3_column_int(stmt, 5);
    snprintf(out->scheduler, sizeof out->scheduler, "%s",
             (const char *)sqlite3_column_text(stmt, 6));
    /* RETURNING: the update is complete only once the statement has run to its end. */
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
    }
    sqlite3_reset(stmt);
    if (r != SQLITE_DONE) return DQ_STORE_DB;
    out->split_shard = split.rest_shard; /* 0 unless split */
    rc = dq_store__run(self, s_sql_attempt_insert, "inisi", out->shard, out->attempt, out->job,
                       node, now);
    /* key=value detail, so the tests' checkers can read what each node was given. */
    char detail[160];
    int n = snprintf(detail, sizeof detail, "requests=%d images=%d", out->n_requests,
                     out->n_images);
    if (split.leased_shard && n > 0 && (size_t)n < sizeof detail)
        snprintf(detail + n, sizeof detail - (size_t)n,
                 " split_from=%lld left_requests=%d left_images=%d", (long long)split.rest_shard,
                 split.rest_requests, split.rest_images);
    if (!rc)
        rc = dq_store__event(self, now, "assign", out->job, out->shard, out->attempt, node, 0, -1,
                             detail);
    if (!rc) rc = dq_store__job_settle(self, out->job, now);
    *found = rc == DQ_STORE_OK;
    return rc;
}

static dq_store_rc_t s_lease(dq_store_t *self, const char *node, const dq_store_node_t *served,
                             int max_shards, int64_t now, int64_t lease_ms, dq_lease_t *out,
                             int *n_out) {
    *n_out = 0;
    self->err[0] = '\0';
    if (!node || !node[0] || strlen(node) > DQ_STORE_MAX_NODE || max_shards < 0 || lease_ms <= 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "lease: node name (1..%d bytes), max_shards >= 0 and lease_ms > 0"
                             " required",
                             DQ_STORE_MAX_NODE);
    if (served && (served->n_models < 0 || served->n_models > DQ_STORE_MAX_NODE_MODELS ||
                   (served->n_models > 0 && !served->models)))
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "lease: node %s: %d models, expected 0..%d",
                             node, served->n_models, DQ_STORE_MAX_NODE_MODELS);
    if (served && served->max_images < 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "lease: node %s: batch of %d images, expected >= 1 (0: unknown)",
                             node, served->max_images);
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    int n = 0;
    for (bool found = true; n < max_shards && found && rc == DQ_STORE_OK;) {
        rc = s_lease_one(self, node, served, now, lease_ms, &out[n], &found);
        if (found) n++;
    }
    rc = dq_store__end(self, rc);
    *n_out = rc ? 0 : n;
    return rc;
}

dq_store_rc_t dq_store_lease(dq_store_t *self, const char *node, int max_shards, int64_t now,
                             int64_t lease_ms, dq_lease_t *out, int *n_out) {
    return s_lease(self, node, NULL, max_shards, now, lease_ms, out, n_out);
}

dq_store_rc_t dq_store_lease_node(dq_store_t *self, const dq_store_node_t *node, int max_shards,
                                  int64_t now, int64_t lease_ms, dq_lease_t *out, int *n_out) {
    return s_lease(self, node ? node->name : NULL, node, max_shards, now, lease_ms, out, n_out);
}

static const char s_sql_shard_exists[] = "SELECT job FROM shards WHERE id = ?";

/* After a fenced update matched nothing: NOT_FOUND or STALE, with the reason. */
static dq_store_rc_t s_fenced(dq_store_t *self, const char *what, int64_t shard, int attempt,
                              const char *node) {
    int64_t job;
    int r = dq_store__get_i64(self, &job, s_sql_shard_exists, "i", shard);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "%s: shard %lld not found", what,
                             (long long)shard);
    return DQ_STORE_FAIL(self, DQ_STORE_STALE,
                         "%s: shard %lld attempt %d is not leased to node %s (stale attempt, "
                         "expired or cancelled lease)",
                         what, (long long)shard, attempt, node);
}

static const char s_sql_renew[] =
    "UPDATE shards SET lease_expiry = ?, orphan = 0 WHERE id = ? AND state = 'leased'"
    " AND attempt = ? AND node = ? RETURNING job";

/* Extends a held lease; shared by renew and reclaim, which differ in the event they log. */
static dq_store_rc_t s_extend(dq_store_t *self, const char *what, int64_t shard, int attempt,
                              const char *node, int64_t now, int64_t lease_ms) {
    if (!node || lease_ms <= 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "%s: node and lease_ms > 0 required", what);
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_renew, "iins", now + lease_ms, shard, attempt, node);
    if (r < 0) {
        rc = DQ_STORE_DB;
    } else if (r == 0) {
        rc = s_fenced(self, what, shard, attempt, node);
    } else {
        int64_t job = sqlite3_column_int64(stmt, 0);
        while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        }
        sqlite3_reset(stmt);
        rc = r == SQLITE_DONE ? DQ_STORE_OK : DQ_STORE_DB;
        if (!rc) rc = dq_store__event(self, now, what, job, shard, attempt, node, 0, -1, NULL);
    }
    return dq_store__end(self, rc);
}

dq_store_rc_t dq_store_renew(dq_store_t *self, int64_t shard, int attempt, const char *node,
                             int64_t now, int64_t lease_ms) {
    return s_extend(self, "renew", shard, attempt, node, now, lease_ms);
}

dq_store_rc_t dq_store_reclaim(dq_store_t *self, const char *node, int64_t shard, int attempt,
                               int64_t now, int64_t lease_ms) {
    return s_extend(self, "reclaim", shard, attempt, node, now, lease_ms);
}

static const char s_sql_next_expired[] =
    "SELECT id, orphan, node, attempt FROM shards WHERE state = 'leased' AND lease_expiry <= ?"
    " ORDER BY lease_expiry LIMIT 1";

dq_store_rc_t dq_store_expire(dq_store_t *self, int64_t now, int *n) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    int count = 0;
    for (;;) {
        sqlite3_stmt *stmt;
        int r = dq_store__get(self, &stmt, s_sql_next_expired, "i", now);
        if (r <= 0) {
            if (r < 0) rc = DQ_STORE_DB;
            break;
        }
        int64_t shard = sqlite3_column_int64(stmt, 0);
        bool orphan = sqlite3_column_int(stmt, 1) != 0;
        char msg[320];
        snprintf(msg, sizeof msg, "lease expired (node %s, attempt %d)",
                 (const char *)sqlite3_column_text(stmt, 2), sqlite3_column_int(stmt, 3));
        sqlite3_reset(stmt);
        if (orphan) /* held before a restart and not reclaimed in the grace period */
            rc = dq_store__requeue(self, shard, now, "lost", "requeue", NULL, NULL, false);
        else
            rc = dq_store__requeue(self, shard, now, "expired", "expire", "timeout", msg, true);
        if (rc) break;
        count++;
    }
    rc = dq_store__end(self, rc);
    if (n) *n = rc ? 0 : count;
    return rc;
}

static const char s_sql_fenced_job[] =
    "SELECT job FROM shards WHERE id = ? AND state = 'leased' AND attempt = ? AND node = ?";
static const char s_sql_node_failures[] =
    "SELECT count(*) FROM attempts WHERE job = ? AND node = ? AND outcome = 'failed'";
static const char s_sql_block[] =
    "INSERT OR IGNORE INTO blocklist(job, node, since_ms) VALUES (?, ?, ?)";

dq_store_rc_t dq_store_fail(dq_store_t *self, int64_t shard, int attempt, const char *node,
                            const char *error_class, const char *message, int64_t now) {
    self->err[0] = '\0';
    if (!node || !error_class || !error_class[0] || !message)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "fail: node, error class and message required");
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    int64_t job = 0, failures = 0;
    int r = dq_store__get_i64(self, &job, s_sql_fenced_job, "ins", shard, attempt, node);
    if (r < 0) rc = DQ_STORE_DB;
    if (r == 0) rc = s_fenced(self, "fail", shard, attempt, node);
    if (!rc) rc = dq_store__requeue(self, shard, now, "failed", "fail", error_class, message, true);
    if (!rc && dq_store__get_i64(self, &failures, s_sql_node_failures, "is", job, node) != 1)
        rc = DQ_STORE_DB;
    if (!rc && failures >= self->params.block_after_failures) {
        rc = dq_store__run(self, s_sql_block, "isi", job, node, now);
        if (!rc && sqlite3_changes(self->db) == 1) {
            char detail[64];
            snprintf(detail, sizeof detail, "%lld failed attempts", (long long)failures);
            rc = dq_store__event(self, now, "block", job, 0, 0, node, 0, -1, detail);
        }
    }
    return dq_store__end(self, rc);
}

static dq_store_rc_t s_check_held(dq_store_t *self, const char *what, int64_t shard, int attempt,
                                  const char *node, int64_t *job) {
    int r = dq_store__get_i64(self, job, s_sql_fenced_job, "ins", shard, attempt, node);
    if (r < 0) return DQ_STORE_DB;
    return r == 0 ? s_fenced(self, what, shard, attempt, node) : DQ_STORE_OK;
}

dq_store_rc_t dq_store_lease_held(dq_store_t *self, int64_t shard, int attempt, const char *node) {
    self->err[0] = '\0';
    if (!node) return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "lease_held: node required");
    int64_t job;
    return s_check_held(self, "lease_held", shard, attempt, node, &job);
}

dq_store_rc_t dq_store_assign_lost(dq_store_t *self, int64_t shard, int attempt, const char *node,
                                   int64_t now) {
    self->err[0] = '\0';
    if (!node) return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "assign_lost: node required");
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    int64_t job;
    rc = s_check_held(self, "assign_lost", shard, attempt, node, &job);
    char msg[320];
    snprintf(msg, sizeof msg, "ASSIGN lost on the way to node %s (attempt %d)", node, attempt);
    /* The node never had it: the shard did not fail, so the attempt is not counted. */
    if (!rc) rc = dq_store__requeue(self, shard, now, "lost", "requeue", NULL, msg, false);
    return dq_store__end(self, rc);
}

static const char s_sql_next_held[] =
    "SELECT id FROM shards WHERE state = 'leased' AND node = ? LIMIT 1";

dq_store_rc_t dq_store_node_forget(dq_store_t *self, const char *node, int64_t now, int *n) {
    if (n) *n = 0;
    if (!node) return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "node_forget: node required");
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    char msg[300];
    snprintf(msg, sizeof msg, "node %s forgotten", node);
    int count = 0;
    for (;;) {
        int64_t shard;
        int r = dq_store__get_i64(self, &shard, s_sql_next_held, "s", node);
        if (r <= 0) {
            if (r < 0) rc = DQ_STORE_DB;
            break;
        }
        rc = dq_store__requeue(self, shard, now, "forgotten", "requeue", "node", msg, true);
        if (rc) break;
        count++;
    }
    rc = dq_store__end(self, rc);
    if (n) *n = rc ? 0 : count;
    return rc;
}

static const char s_sql_blocked[] = "SELECT 1 FROM blocklist WHERE job = ? AND node = ?";

bool dq_store_node_blocked(dq_store_t *self, int64_t job_id, const char *node) {
    int64_t one;
    return dq_store__get_i64(self, &one, s_sql_blocked, "is", job_id, node) == 1;
}

static const char s_sql_shard_requests[] =
    "SELECT r.line, r.json, r.rid, r.seed, r.num_images, s.width, s.height, s.steps, s.scheduler"
    " FROM requests r JOIN shards s ON s.id = r.shard WHERE r.shard = ? ORDER BY r.line";

dq_store_rc_t dq_store_shard_requests(dq_store_t *self, int64_t shard, dq_store_request_fn *fn,
                                      void *arg) {
    sqlite3_stmt *stmt = dq_store__prep(self, s_sql_shard_requests);
    if (!stmt) return DQ_STORE_DB;
    sqlite3_bind_int64(stmt, 1, shard);
    dq_store_rc_t rc = DQ_STORE_OK;
    int r, rows = 0;
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        dq_store_request_t q = {
            .line = sqlite3_column_int64(stmt, 0),
            .json = (const char *)sqlite3_column_text(stmt, 1),
            .id = (const char *)sqlite3_column_text(stmt, 2),
            .seed = (uint64_t)sqlite3_column_int64(stmt, 3),
            .num_images = sqlite3_column_int(stmt, 4),
            .width = sqlite3_column_int(stmt, 5),
            .height = sqlite3_column_int(stmt, 6),
            .steps = sqlite3_column_int(stmt, 7),
            .scheduler = (const char *)sqlite3_column_text(stmt, 8),
        };
        rows++;
        if (fn(arg, &q)) {
            rc = DQ_STORE_FAIL(self, DQ_STORE_INVALID, "request callback stopped");
            break;
        }
    }
    if (rc == DQ_STORE_OK && r != SQLITE_DONE) rc = DQ_STORE_DB;
    sqlite3_reset(stmt);
    if (rc == DQ_STORE_OK && rows == 0)
        rc = DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "shard %lld not found", (long long)shard);
    return rc;
}
