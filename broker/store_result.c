/* broker/store_result.c: committing results exactly once, and the results.jsonl manifest rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store_int.h"

static const char s_sql_request_for[] =
    "SELECT r.id, r.shard, r.num_images,"
    " EXISTS (SELECT 1 FROM results x WHERE x.job = r.job AND x.line = r.line AND x.image = ?)"
    " FROM requests r WHERE r.job = ? AND r.line = ?";
static const char s_sql_shard_fence[] = "SELECT state, attempt, node FROM shards WHERE id = ?";
static const char s_sql_result_insert[] =
    "INSERT INTO results(job, line, image, shard, attempt, path, sha256, size, committed_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char s_sql_request_count[] =
    "UPDATE requests SET images_committed = images_committed + 1 WHERE id = ?"
    " RETURNING images_committed = num_images";
static const char s_sql_shard_count[] =
    "UPDATE shards SET images_committed = images_committed + 1,"
    " requests_done = requests_done + ? WHERE id = ? RETURNING images_committed = n_images";
static const char s_sql_job_count[] =
    "UPDATE jobs SET images_committed = images_committed + 1,"
    " requests_done = requests_done + ?, updated_ms = ? WHERE id = ?";
static const char s_sql_shard_done[] =
    "UPDATE shards SET state = 'done', node = NULL, lease_expiry = NULL, orphan = 0 WHERE id = ?";
static const char s_sql_attempt_done[] =
    "UPDATE attempts SET end_ms = ?, outcome = 'done' WHERE shard = ? AND attempt = ?";

/* A single-row UPDATE ... RETURNING <bool>: runs it to the end, writes the value. */
static dq_store_rc_t s_update_flag(dq_store_t *self, const char *sql, const char *types, int64_t a,
                                   int64_t b, bool *flag) {
    sqlite3_stmt *stmt;
    int r = types[1] == 'i' ? dq_store__get(self, &stmt, sql, "ii", a, b)
                            : dq_store__get(self, &stmt, sql, "i", a);
    if (r != 1) return r < 0 ? DQ_STORE_DB : DQ_STORE_FAIL(self, DQ_STORE_DB, "row vanished");
    *flag = sqlite3_column_int(stmt, 0) != 0;
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
    }
    sqlite3_reset(stmt);
    return r == SQLITE_DONE ? DQ_STORE_OK : DQ_STORE_DB;
}

/* One result inside the caller's transaction. Validation comes before any write, so a result
 * refused (DUPLICATE aside, which logs an event) changes nothing. */
static dq_store_rc_t s_commit_one(dq_store_t *self, const dq_result_t *res, int64_t now) {
    long long job = (long long)res->job, line = (long long)res->line;
    if (!res->path || !res->path[0] || !res->sha256 || strlen(res->sha256) != 64 || res->size < 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "job %lld line %lld image %d: path, 64-digit sha256 and size >= 0"
                             " required",
                             job, line, res->image);
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_request_for, "nii", res->image, res->job, res->line);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld: no request at line %lld", job,
                             line);
    int64_t request = sqlite3_column_int64(stmt, 0), shard = sqlite3_column_int64(stmt, 1);
    int num_images = sqlite3_column_int(stmt, 2);
    bool exists = sqlite3_column_int(stmt, 3) != 0;
    sqlite3_reset(stmt);
    if (res->image < 0 || res->image >= num_images)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "job %lld line %lld: image %d, the request has %d (0..%d)", job, line,
                             res->image, num_images, num_images - 1);
    if (exists) {
        dq_store_rc_t rc = dq_store__event(self, now, "duplicate", res->job, shard, res->attempt,
                                           NULL, res->line, res->image, NULL);
        return rc ? rc : DQ_STORE_DUPLICATE;
    }
    r = dq_store__get(self, &stmt, s_sql_shard_fence, "i", shard);
    if (r != 1) return r < 0 ? DQ_STORE_DB : DQ_STORE_FAIL(self, DQ_STORE_DB, "shard vanished");
    bool leased = strcmp((const char *)sqlite3_column_text(stmt, 0), "leased") == 0;
    int attempt = sqlite3_column_int(stmt, 1);
    char node[DQ_STORE_MAX_NODE + 1];
    snprintf(node, sizeof node, "%s", leased ? (const char *)sqlite3_column_text(stmt, 2) : "");
    sqlite3_reset(stmt);
    if (!leased || attempt != res->attempt)
        return DQ_STORE_FAIL(self, DQ_STORE_STALE,
                             "job %lld line %lld image %d: attempt %d of shard %lld is not the"
                             " leased one (%s)",
                             job, line, res->image, res->attempt, (long long)shard,
                             leased ? "older or unknown attempt" : "shard not leased");
    dq_store_rc_t rc =
        dq_store__run(self, s_sql_result_insert, "iininssii", res->job, res->line, res->image,
                      shard, res->attempt, res->path, res->sha256, res->size, now);
    bool request_done = false, shard_done = false;
    if (!rc) rc = s_update_flag(self, s_sql_request_count, "i", request, 0, &request_done);
    if (!rc)
        rc = s_update_flag(self, s_sql_shard_count, "ii", request_done ? 1 : 0, shard, &shard_done);
    if (!rc) rc = dq_store__run(self, s_sql_job_count, "iii", (int64_t)request_done, now, res->job);
    if (!rc)
        rc = dq_store__event(self, now, "commit", res->job, shard, res->attempt, node, res->line,
                             res->image, NULL);
    if (rc || !shard_done) return rc;
    rc = dq_store__run(self, s_sql_shard_done, "i", shard);
    if (!rc) rc = dq_store__run(self, s_sql_attempt_done, "iin", now, shard, res->attempt);
    if (!rc)
        rc = dq_store__event(self, now, "done", res->job, shard, res->attempt, node, 0, -1, NULL);
    if (!rc) rc = dq_store__job_settle(self, res->job, now);
    return rc;
}

dq_store_rc_t dq_store_commit_result(dq_store_t *self, const dq_result_t *result, int64_t now) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    return dq_store__end(self, s_commit_one(self, result, now));
}

dq_store_rc_t dq_store_commit_results(dq_store_t *self, dq_result_t *results, size_t n,
                                      int64_t now) {
    dq_store_rc_t rc = dq_store__begin(self);
    for (size_t i = 0; i < n && rc == DQ_STORE_OK; i++) {
        dq_store_rc_t one = s_commit_one(self, &results[i], now);
        results[i].rc = one;
        if (one == DQ_STORE_DB) rc = DQ_STORE_DB; /* a write failed: the batch is lost whole */
    }
    rc = dq_store__end(self, rc);
    if (rc != DQ_STORE_OK)
        for (size_t i = 0; i < n; i++)
            results[i].rc = rc;
    return rc;
}

/* ---- Manifest rows. ---- */

static const char s_sql_manifest[] =
    "SELECT r.line, r.rid, r.seed, r.num_images, x.image, x.path, x.sha256, x.size"
    " FROM requests r LEFT JOIN results x ON x.job = r.job AND x.line = r.line"
    " WHERE r.job = ? ORDER BY r.line, x.image";
static const char s_sql_job_exists[] = "SELECT 1 FROM jobs WHERE id = ? AND state <> 'staging'";

/* One row being gathered; strings are copied because the statement moves on. */
typedef struct {
    dq_manifest_row_t row;
    char *id;         /* owned */
    int images[256];  /* DQ_STORE_MAX_IMAGES */
    char *paths[256]; /* owned */
    char *sha[256];   /* owned */
    int64_t sizes[256];
} s_row_t;

static void s_row_clear(s_row_t *g) {
    free(g->id);
    for (int i = 0; i < g->row.n_files; i++) {
        free(g->paths[i]);
        free(g->sha[i]);
    }
    memset(g, 0, sizeof *g);
}

static int s_row_emit(s_row_t *g, dq_store_manifest_fn *fn, void *arg) {
    g->row.id = g->id;
    g->row.images = g->images;
    g->row.paths = (const char **)g->paths;
    g->row.sha256 = (const char **)g->sha;
    g->row.sizes = g->sizes;
    int stop = fn(arg, &g->row);
    s_row_clear(g);
    return stop;
}

dq_store_rc_t dq_store_manifest(dq_store_t *self, int64_t job_id, dq_store_manifest_fn *fn,
                                void *arg) {
    int64_t one;
    int r = dq_store__get_i64(self, &one, s_sql_job_exists, "i", job_id);
    if (r <= 0)
        return r < 0 ? DQ_STORE_DB
                     : DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld not found",
                                     (long long)job_id);
    sqlite3_stmt *stmt = dq_store__prep(self, s_sql_manifest);
    if (!stmt) return DQ_STORE_DB;
    sqlite3_bind_int64(stmt, 1, job_id);
    s_row_t *g = calloc(1, sizeof *g);
    if (!g) return DQ_STORE_FAIL(self, DQ_STORE_DB, "out of memory");
    dq_store_rc_t rc = DQ_STORE_OK;
    bool have = false;
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        int64_t line = sqlite3_column_int64(stmt, 0);
        if (have && line != g->row.line) {
            if (s_row_emit(g, fn, arg)) {
                rc = DQ_STORE_FAIL(self, DQ_STORE_INVALID, "manifest callback stopped");
                have = false;
                break;
            }
        }
        if (!have || g->row.line != line) {
            const char *id = (const char *)sqlite3_column_text(stmt, 1);
            g->row.line = line;
            g->id = id ? strdup(id) : NULL;
            if (id && !g->id) {
                rc = DQ_STORE_FAIL(self, DQ_STORE_DB, "out of memory");
                have = false;
                break;
            }
            g->row.seed = (uint64_t)sqlite3_column_int64(stmt, 2);
            g->row.num_images = sqlite3_column_int(stmt, 3);
            have = true;
        }
        if (sqlite3_column_type(stmt, 4) != SQLITE_NULL && g->row.n_files < 256) {
            int k = g->row.n_files++;
            g->images[k] = sqlite3_column_int(stmt, 4);
            g->paths[k] = strdup((const char *)sqlite3_column_text(stmt, 5));
            g->sha[k] = strdup((const char *)sqlite3_column_text(stmt, 6));
            g->sizes[k] = sqlite3_column_int64(stmt, 7);
            if (!g->paths[k] || !g->sha[k]) {
                rc = DQ_STORE_FAIL(self, DQ_STORE_DB, "out of memory");
                have = false;
                break;
            }
        }
    }
    if (rc == DQ_STORE_OK && r != SQLITE_DONE) rc = DQ_STORE_DB;
    sqlite3_reset(stmt);
    if (rc == DQ_STORE_OK && have && s_row_emit(g, fn, arg))
        rc = DQ_STORE_FAIL(self, DQ_STORE_INVALID, "manifest callback stopped");
    s_row_clear(g);
    free(g);
    return rc;
}
