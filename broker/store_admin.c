/* broker/store_admin.c: operator actions (cancel, pause, resume, retry) and job status. */
#include <stdio.h>
#include <string.h>

#include "broker/store_int.h"

static const char s_sql_job_state[] = "SELECT state FROM jobs WHERE id = ?";

/* Reads a job's state inside the transaction; NOT_FOUND for unknown and staging jobs. */
static dq_store_rc_t s_job_state(dq_store_t *self, int64_t job, dq_store_job_state_t *state) {
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_job_state, "i", job);
    if (r < 0) return DQ_STORE_DB;
    if (r == 1) {
        *state = dq_store__job_state_parse((const char *)sqlite3_column_text(stmt, 0));
        sqlite3_reset(stmt);
    }
    if (r == 0 || *state == DQ_STORE_JOB_STAGING)
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld not found", (long long)job);
    return DQ_STORE_OK;
}

static dq_store_rc_t s_wrong_state(dq_store_t *self, const char *what, int64_t job,
                                   dq_store_job_state_t state) {
    return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "%s: job %lld is %s", what, (long long)job,
                         dq_store_job_state_name(state));
}

static const char s_sql_set_state[] = "UPDATE jobs SET state = ?, updated_ms = ? WHERE id = ?";
static const char s_sql_cancel_attempts[] =
    "UPDATE attempts SET end_ms = ?, outcome = 'cancelled' WHERE (shard, attempt) IN"
    " (SELECT id, attempt FROM shards WHERE job = ? AND state = 'leased')";
static const char s_sql_cancel_shards[] =
    "UPDATE shards SET state = 'cancelled', node = NULL, lease_expiry = NULL, orphan = 0"
    " WHERE job = ? AND state IN ('queued','leased')";

dq_store_rc_t dq_store_cancel(dq_store_t *self, int64_t job_id, int64_t now) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    dq_store_job_state_t state = DQ_STORE_JOB_STAGING;
    rc = s_job_state(self, job_id, &state);
    if (!rc && state != DQ_STORE_JOB_QUEUED && state != DQ_STORE_JOB_RUNNING && state != DQ_STORE_JOB_PAUSED)
        rc = s_wrong_state(self, "cancel", job_id, state);
    if (!rc) rc = dq_store__run(self, s_sql_cancel_attempts, "ii", now, job_id);
    if (!rc) rc = dq_store__run(self, s_sql_cancel_shards, "i", job_id);
    char detail[64];
    snprintf(detail, sizeof detail, "%d shards cancelled", sqlite3_changes(self->db));
    if (!rc) rc = dq_store__run(self, s_sql_set_state, "sii", "cancelled", now, job_id);
    if (!rc) rc = dq_store__event(self, now, "cancel", job_id, 0, 0, NULL, 0, -1, detail);
    return dq_store__end(self, rc);
}

dq_store_rc_t dq_store_pause(dq_store_t *self, int64_t job_id, int64_t now) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    dq_store_job_state_t state = DQ_STORE_JOB_STAGING;
    rc = s_job_state(self, job_id, &state);
    if (!rc && state != DQ_STORE_JOB_QUEUED && state != DQ_STORE_JOB_RUNNING)
        rc = s_wrong_state(self, "pause", job_id, state);
    if (!rc) rc = dq_store__run(self, s_sql_set_state, "sii", "paused", now, job_id);
    if (!rc) rc = dq_store__event(self, now, "pause", job_id, 0, 0, NULL, 0, -1, NULL);
    return dq_store__end(self, rc);
}

static const char s_sql_started[] =
    "SELECT shards_leased + shards_done + shards_failed + images_committed > 0"
    " FROM jobs WHERE id = ?";

dq_store_rc_t dq_store_resume(dq_store_t *self, int64_t job_id, int64_t now) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    dq_store_job_state_t state = DQ_STORE_JOB_STAGING;
    int64_t started = 0;
    rc = s_job_state(self, job_id, &state);
    if (!rc && state != DQ_STORE_JOB_PAUSED) rc = s_wrong_state(self, "resume", job_id, state);
    if (!rc && dq_store__get_i64(self, &started, s_sql_started, "i", job_id) != 1) rc = DQ_STORE_DB;
    if (!rc)
        rc = dq_store__run(self, s_sql_set_state, "sii", started ? "running" : "queued", now,
                           job_id);
    if (!rc) rc = dq_store__event(self, now, "resume", job_id, 0, 0, NULL, 0, -1, NULL);
    if (!rc) rc = dq_store__job_settle(self, job_id, now);
    return dq_store__end(self, rc);
}

static const char s_sql_retry_shards[] =
    "UPDATE shards SET state = 'queued', attempt = attempt + 1, attempts_used = 0,"
    " last_error = NULL, error_class = NULL WHERE job = ? AND state = 'failed'";
static const char s_sql_unblock[] = "DELETE FROM blocklist WHERE job = ?";

dq_store_rc_t dq_store_retry(dq_store_t *self, int64_t job_id, int64_t now, int *n) {
    if (n) *n = 0;
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    dq_store_job_state_t state = DQ_STORE_JOB_STAGING;
    rc = s_job_state(self, job_id, &state);
    if (!rc && state != DQ_STORE_JOB_RUNNING && state != DQ_STORE_JOB_PAUSED && state != DQ_STORE_JOB_FAILED)
        rc = s_wrong_state(self, "retry", job_id, state);
    if (!rc) rc = dq_store__run(self, s_sql_retry_shards, "i", job_id);
    int count = rc ? 0 : sqlite3_changes(self->db);
    if (!rc) rc = dq_store__run(self, s_sql_unblock, "i", job_id);
    if (!rc && state == DQ_STORE_JOB_FAILED)
        rc = dq_store__run(self, s_sql_set_state, "sii", "running", now, job_id);
    char detail[64];
    snprintf(detail, sizeof detail, "%d shards requeued", count);
    if (!rc) rc = dq_store__event(self, now, "retry", job_id, 0, 0, NULL, 0, -1, detail);
    rc = dq_store__end(self, rc);
    if (n && !rc) *n = count;
    return rc;
}

/* ---- Status. ---- */

static const char s_sql_job_row[] =
    "SELECT name, model, out_dir, priority, state, created_ms, updated_ms, n_requests,"
    " n_images, n_shards, requests_done, images_committed FROM jobs WHERE id = ?";
static const char s_sql_left_by_state[] =
    "SELECT state, sum(n_requests - requests_done), sum(n_images - images_committed)"
    " FROM shards WHERE job = ? GROUP BY state";
/* The latest failed shard's error: max(id) reads the end of the index range, no sort. */
static const char s_sql_last_error[] =
    "SELECT last_error FROM shards WHERE id ="
    " (SELECT max(id) FROM shards WHERE job = ? AND state = 'failed')";
static const char s_sql_recent[] =
    "SELECT count(*) FROM results WHERE job = ? AND committed_ms > ?";

dq_store_rc_t dq_store_job_brief(dq_store_t *self, int64_t job_id, dq_job_status_t *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_job_row, "i", job_id);
    if (r < 0) return DQ_STORE_DB;
    if (r == 1) {
        out->id = job_id;
        snprintf(out->name, sizeof out->name, "%s", (const char *)sqlite3_column_text(stmt, 0));
        snprintf(out->model, sizeof out->model, "%s", (const char *)sqlite3_column_text(stmt, 1));
        snprintf(out->out_dir, sizeof out->out_dir, "%s",
                 (const char *)sqlite3_column_text(stmt, 2));
        out->priority = sqlite3_column_int(stmt, 3);
        out->state = dq_store__job_state_parse((const char *)sqlite3_column_text(stmt, 4));
        out->created_ms = sqlite3_column_int64(stmt, 5);
        out->updated_ms = sqlite3_column_int64(stmt, 6);
        out->n_requests = sqlite3_column_int64(stmt, 7);
        out->n_images = sqlite3_column_int64(stmt, 8);
        out->n_shards = sqlite3_column_int64(stmt, 9);
        out->requests_done = sqlite3_column_int64(stmt, 10);
        out->images_committed = sqlite3_column_int64(stmt, 11);
        sqlite3_reset(stmt);
    }
    if (r == 0 || out->state == DQ_STORE_JOB_STAGING) {
        memset(out, 0, sizeof *out);
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld not found", (long long)job_id);
    }
    return DQ_STORE_OK;
}

dq_store_rc_t dq_store_job_status(dq_store_t *self, int64_t job_id, int64_t now, int64_t window_ms,
                                  dq_job_status_t *out) {
    dq_store_rc_t rc = dq_store_job_brief(self, job_id, out);
    if (rc) return rc;
    int r;
    sqlite3_stmt *stmt = dq_store__prep(self, s_sql_left_by_state);
    if (!stmt) return DQ_STORE_DB;
    sqlite3_bind_int64(stmt, 1, job_id);
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(stmt, 0);
        int64_t left = sqlite3_column_int64(stmt, 1), images = sqlite3_column_int64(stmt, 2);
        if (strcmp(state, "queued") == 0) {
            out->requests_queued += left;
            out->images_queued += images;
        } else if (strcmp(state, "leased") == 0) {
            out->requests_running += left;
            out->images_running += images;
        } else if (strcmp(state, "failed") == 0) {
            out->requests_failed += left;
            out->images_failed += images;
        } else if (strcmp(state, "cancelled") == 0) {
            out->requests_cancelled += left;
            out->images_cancelled += images;
        }
    }
    sqlite3_reset(stmt);
    if (r != SQLITE_DONE) return DQ_STORE_DB;
    if (out->requests_failed > 0) {
        r = dq_store__get(self, &stmt, s_sql_last_error, "i", job_id);
        if (r < 0) return DQ_STORE_DB;
        if (r == 1) {
            const char *e = (const char *)sqlite3_column_text(stmt, 0);
            snprintf(out->last_error, sizeof out->last_error, "%s", e ? e : "");
            sqlite3_reset(stmt);
        }
    }
    /* The window never reaches back before the job existed, so a young job's rate is honest. */
    int64_t since = now - window_ms;
    if (since < out->created_ms) since = out->created_ms;
    int64_t recent = 0;
    if (dq_store__get_i64(self, &recent, s_sql_recent, "ii", job_id, since) != 1)
        return DQ_STORE_DB;
    out->images_per_s = now > since ? (double)recent * 1000.0 / (double)(now - since) : 0.0;
    int64_t left = out->n_images - out->images_committed;
    if (out->state == DQ_STORE_JOB_DONE || left == 0)
        out->eta_s = 0.0;
    else if (out->state == DQ_STORE_JOB_RUNNING && out->images_per_s > 0.0)
        out->eta_s = (double)left / out->images_per_s;
    else
        out->eta_s = -1.0;
    return DQ_STORE_OK;
}

static const char s_sql_job_ids[] = "SELECT id FROM jobs WHERE state <> 'staging' ORDER BY id";

dq_store_rc_t dq_store_job_list(dq_store_t *self, int64_t now, int64_t window_ms,
                                dq_store_job_fn *fn, void *arg) {
    sqlite3_stmt *stmt = dq_store__prep(self, s_sql_job_ids);
    if (!stmt) return DQ_STORE_DB;
    dq_store_rc_t rc = DQ_STORE_OK;
    dq_job_status_t st;
    int r;
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        rc = dq_store_job_status(self, sqlite3_column_int64(stmt, 0), now, window_ms, &st);
        if (rc) break;
        if (fn(arg, &st)) {
            rc = DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job list callback stopped");
            break;
        }
    }
    if (rc == DQ_STORE_OK && r != SQLITE_DONE) rc = DQ_STORE_DB;
    sqlite3_reset(stmt);
    return rc;
}
