/* broker/store_split.c: fitting a queued shard to a node's batch capacity by splitting it. */
#include <stdio.h>

#include "broker/store_int.h"

/* Shards are cut at submit time to the broker's --shard-size requests; the node that leases one
 * says how many images it renders in one batch (READY "bimg"). A shard bigger than that is cut
 * here, at lease time, so the shard a node gets is one batch of its own size. The part leased
 * goes to a new shard and the rest stays queued under the old id, so it keeps its place in the
 * job's order (oldest shard first) and a job is rendered in line order. */

static const char s_sql_shard_size[] =
    "SELECT n_requests, n_images FROM shards WHERE id = ? AND state = 'queued'";
static const char s_sql_shard_lines[] =
    "SELECT line, num_images FROM requests WHERE shard = ? ORDER BY line";
/* The new shard carries the old one's key, job and attempt bookkeeping: its attempt number (so
 * results of an attempt fenced off before the split stay fenced off), the attempts it has used
 * (so the part leased still fails after max_attempts) and its last error. The insert trigger
 * counts it in jobs.n_shards and jobs.shards_queued (it is queued until the caller leases it). */
static const char s_sql_shard_clone[] =
    "INSERT INTO shards(job, width, height, steps, scheduler, attempt, attempts_used, last_error,"
    " error_class)"
    " SELECT job, width, height, steps, scheduler, attempt, attempts_used, last_error, error_class"
    " FROM shards WHERE id = ?";
static const char s_sql_requests_move[] =
    "UPDATE requests SET shard = ?1 WHERE shard = ?2 AND line <= ?3";
/* A shard's counters from its requests (a requeued shard may have committed some already). */
static const char s_sql_shard_recount[] =
    "UPDATE shards SET"
    " n_requests = (SELECT count(*) FROM requests WHERE shard = ?1),"
    " n_images = (SELECT coalesce(sum(num_images), 0) FROM requests WHERE shard = ?1),"
    " requests_done = (SELECT count(*) FROM requests WHERE shard = ?1"
    "  AND images_committed = num_images),"
    " images_committed = (SELECT coalesce(sum(images_committed), 0) FROM requests"
    "  WHERE shard = ?1)"
    " WHERE id = ?1";

/* The last line the leased part keeps: the first requests in line order whose images fit in
 * max_images, at least one. Writes it and the kept requests and images. */
static dq_store_rc_t s_cut(dq_store_t *self, int64_t shard, int max_images, int64_t *last_line,
                           int *kept, int *kept_images) {
    sqlite3_stmt *stmt = dq_store__prep(self, s_sql_shard_lines);
    if (!stmt) return DQ_STORE_DB;
    sqlite3_bind_int64(stmt, 1, shard);
    *kept = *kept_images = 0;
    int r;
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        int images = sqlite3_column_int(stmt, 1);
        if (*kept > 0 && *kept_images + images > max_images) break;
        *last_line = sqlite3_column_int64(stmt, 0);
        *kept_images += images;
        (*kept)++;
    }
    sqlite3_reset(stmt);
    return r == SQLITE_ROW || r == SQLITE_DONE ? DQ_STORE_OK : DQ_STORE_DB;
}

dq_store_rc_t dq_store__split(dq_store_t *self, int64_t shard, int max_images,
                              dq_store_split_t *out) {
    *out = (dq_store_split_t){0};
    if (max_images < 1) return DQ_STORE_OK; /* the node said nothing: lease the shard whole */
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_shard_size, "i", shard);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "split: shard %lld is not queued",
                             (long long)shard);
    int n_requests = sqlite3_column_int(stmt, 0), n_images = sqlite3_column_int(stmt, 1);
    sqlite3_reset(stmt);
    if (n_images <= max_images || n_requests < 2) return DQ_STORE_OK;
    int64_t last_line = 0;
    int kept = 0, kept_images = 0;
    dq_store_rc_t rc = s_cut(self, shard, max_images, &last_line, &kept, &kept_images);
    if (rc || kept >= n_requests) return rc; /* (kept == n_requests: counters were off) */
    rc = dq_store__run(self, s_sql_shard_clone, "i", shard);
    if (rc) return rc;
    int64_t part = sqlite3_last_insert_rowid(self->db);
    rc = dq_store__run(self, s_sql_requests_move, "iii", part, shard, last_line);
    if (!rc) rc = dq_store__run(self, s_sql_shard_recount, "i", shard);
    if (!rc) rc = dq_store__run(self, s_sql_shard_recount, "i", part);
    if (rc) return rc;
    out->leased_shard = part;
    out->rest_shard = shard;
    out->rest_requests = n_requests - kept;
    out->rest_images = n_images - kept_images;
    return DQ_STORE_OK;
}
