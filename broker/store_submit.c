/* broker/store_submit.c: creating a job from requests in bounded pieces, and output names. */
#include <stdio.h>
#include <string.h>

#include "broker/store_int.h"
#include "common/job.h"

#define DQ_STORE_MAX_ID     DQ_JOB_ID_MAX /* bytes in a request id used as a file stem */
#define DQ_STORE_MAX_IMAGES 256 /* images per request; far above any batch a GPU holds */

/* The stem alone: the id, or the line zero-padded to 6 digits (common/job.h keeps the rule). */
static int s_stem(const char *id, int64_t line, char *buf, size_t size) {
    return line < 1 ? -1 : dq_job_output_stem(id, (uint64_t)line, buf, size);
}

int dq_store_output_name(const char *id, int64_t line, int image, char *buf, size_t size) {
    char stem[DQ_STORE_MAX_ID + 1];
    if (image < 0 || s_stem(id, line, stem, sizeof stem)) return -1;
    int n = snprintf(buf, size, "%s-%d.png", stem, image);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static const char s_sql_stem[] = "SELECT stem FROM requests WHERE job = ? AND line = ?";

dq_store_rc_t dq_store_image_name(dq_store_t *self, int64_t job, int64_t line, int image,
                                  char *buf, size_t size) {
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_stem, "ii", job, line);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld: no request at line %lld",
                             (long long)job, (long long)line);
    int n = snprintf(buf, size, "%s-%d.png", (const char *)sqlite3_column_text(stmt, 0), image);
    sqlite3_reset(stmt);
    if (image < 0 || n < 0 || (size_t)n >= size)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job %lld line %lld: image %d has no name",
                             (long long)job, (long long)line, image);
    return DQ_STORE_OK;
}

static const char s_sql_job_insert[] =
    "INSERT INTO jobs(name, model, out_dir, priority, shard_size, state, created_ms, updated_ms)"
    " VALUES (?, ?, ?, ?, ?, 'staging', ?, ?)";
static const char s_sql_job_out_dir[] = "UPDATE jobs SET out_dir = ? WHERE id = ?";

dq_store_rc_t dq_store_job_begin(dq_store_t *self, const dq_job_params_t *params, int64_t now,
                                 int64_t *job_id) {
    self->err[0] = '\0';
    bool by_id = !params->out_dir && params->out_base && params->out_base[0];
    if (!params->name || !params->model || !params->model[0] ||
        (!by_id && (!params->out_dir || !params->out_dir[0])))
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "new job: name, model and out_dir (or out_base) are required");
    if (params->shard_size < 1)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "new job: shard size %d, expected >= 1",
                             params->shard_size);
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    rc = dq_store__run(self, s_sql_job_insert, "sssnnii", params->name, params->model,
                       by_id ? "" : params->out_dir, params->priority, params->shard_size, now,
                       now);
    if (!rc) *job_id = sqlite3_last_insert_rowid(self->db);
    if (!rc && by_id) { /* the folder is named after the id, known only now */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%lld", params->out_base, (long long)*job_id);
        rc = dq_store__run(self, s_sql_job_out_dir, "si", dir, *job_id);
    }
    return dq_store__end(self, rc);
}

static const char s_sql_job_folder[] = "SELECT out_dir FROM jobs WHERE id = ?";

dq_store_rc_t dq_store_job_out_dir(dq_store_t *self, int64_t job_id, char *buf, size_t size) {
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_job_folder, "i", job_id);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld not found", (long long)job_id);
    int n = snprintf(buf, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_reset(stmt);
    if (n < 0 || (size_t)n >= size)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job %lld: output folder longer than %zu",
                             (long long)job_id, size);
    return DQ_STORE_OK;
}

static const char s_sql_job_state_size[] = "SELECT state, shard_size FROM jobs WHERE id = ?";
static const char s_sql_line_exists[] = "SELECT 1 FROM requests WHERE job = ? AND line = ?";
static const char s_sql_stem_line[] = "SELECT line FROM requests WHERE job = ? AND stem = ?";
static const char s_sql_open_shard[] =
    "SELECT id, n_requests FROM shards WHERE job = ? AND width = ? AND height = ? AND steps = ?"
    " AND scheduler = ? ORDER BY id DESC LIMIT 1";
static const char s_sql_shard_insert[] =
    "INSERT INTO shards(job, width, height, steps, scheduler) VALUES (?, ?, ?, ?, ?)";
static const char s_sql_request_insert[] =
    "INSERT INTO requests(job, line, rid, stem, json, seed, num_images, shard)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
static const char s_sql_shard_grow[] =
    "UPDATE shards SET n_requests = n_requests + 1, n_images = n_images + ? WHERE id = ?";
static const char s_sql_job_grow[] =
    "UPDATE jobs SET n_requests = n_requests + ?, n_images = n_images + ? WHERE id = ?";

/* Checks the job is staging; writes its shard size. */
static dq_store_rc_t s_staging_job(dq_store_t *self, int64_t job_id, int64_t *shard_size) {
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_job_state_size, "i", job_id);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld not found", (long long)job_id);
    bool staging = strcmp((const char *)sqlite3_column_text(stmt, 0), "staging") == 0;
    if (shard_size) *shard_size = sqlite3_column_int64(stmt, 1);
    sqlite3_reset(stmt);
    if (!staging)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job %lld is not being submitted",
                             (long long)job_id);
    return DQ_STORE_OK;
}

static dq_store_rc_t s_add_one(dq_store_t *self, int64_t job, int64_t shard_size,
                               const dq_store_request_t *q) {
    char stem[DQ_STORE_MAX_ID + 1];
    long long line = (long long)q->line;
    if (q->line < 1)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job %lld line %lld: line numbers start at 1",
                             (long long)job, line);
    if (!q->json || !q->json[0])
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job %lld line %lld: empty request text",
                             (long long)job, line);
    if (q->num_images < 1 || q->num_images > DQ_STORE_MAX_IMAGES)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "job %lld line %lld: num_images %d, expected 1..%d", (long long)job,
                             line, q->num_images, DQ_STORE_MAX_IMAGES);
    if (q->width < 1 || q->height < 1 || q->steps < 1 || !q->scheduler || !q->scheduler[0])
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "job %lld line %lld: width, height, steps must be >= 1 and the"
                             " scheduler named",
                             (long long)job, line);
    if (s_stem(q->id, q->line, stem, sizeof stem))
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "job %lld line %lld: id \"%.40s\" is not a safe file name (1..%d"
                             " bytes of A-Z a-z 0-9 . _ -, not starting with '.')",
                             (long long)job, line, q->id, DQ_STORE_MAX_ID);
    int64_t other;
    int r = dq_store__get_i64(self, &other, s_sql_line_exists, "ii", job, q->line);
    if (r < 0) return DQ_STORE_DB;
    if (r == 1)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job %lld line %lld: line added twice",
                             (long long)job, line);
    r = dq_store__get_i64(self, &other, s_sql_stem_line, "is", job, stem);
    if (r < 0) return DQ_STORE_DB;
    if (r == 1)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "job %lld line %lld: output name \"%s\" is already used by line %lld",
                             (long long)job, line, stem, (long long)other);
    sqlite3_stmt *stmt;
    r = dq_store__get(self, &stmt, s_sql_open_shard, "innns", job, q->width, q->height, q->steps,
                      q->scheduler);
    if (r < 0) return DQ_STORE_DB;
    int64_t shard = 0;
    if (r == 1) {
        if (sqlite3_column_int64(stmt, 1) < shard_size) shard = sqlite3_column_int64(stmt, 0);
        sqlite3_reset(stmt);
    }
    dq_store_rc_t rc;
    if (!shard) {
        rc = dq_store__run(self, s_sql_shard_insert, "innns", job, q->width, q->height, q->steps,
                           q->scheduler);
        if (rc) return rc;
        shard = sqlite3_last_insert_rowid(self->db);
    }
    rc = dq_store__run(self, s_sql_request_insert, "iisssini", job, q->line, q->id, stem, q->json,
                       (int64_t)q->seed, q->num_images, shard);
    if (rc) return rc;
    return dq_store__run(self, s_sql_shard_grow, "ni", q->num_images, shard);
}

dq_store_rc_t dq_store_job_add(dq_store_t *self, int64_t job_id, const dq_store_request_t *reqs,
                               size_t n) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    int64_t shard_size = 0, images = 0;
    rc = s_staging_job(self, job_id, &shard_size);
    for (size_t i = 0; i < n && rc == DQ_STORE_OK; i++) {
        rc = s_add_one(self, job_id, shard_size, &reqs[i]);
        images += reqs[i].num_images;
    }
    if (!rc) rc = dq_store__run(self, s_sql_job_grow, "iii", (int64_t)n, images, job_id);
    return dq_store__end(self, rc);
}

static const char s_sql_job_nreq[] = "SELECT n_requests FROM jobs WHERE id = ?";
static const char s_sql_job_queue[] =
    "UPDATE jobs SET state = 'queued', created_ms = ?, updated_ms = ? WHERE id = ?";

dq_store_rc_t dq_store_job_commit(dq_store_t *self, int64_t job_id, int64_t now) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    rc = s_staging_job(self, job_id, NULL);
    int64_t n = 0;
    if (!rc && dq_store__get_i64(self, &n, s_sql_job_nreq, "i", job_id) != 1) rc = DQ_STORE_DB;
    if (!rc && n == 0)
        rc = DQ_STORE_FAIL(self, DQ_STORE_INVALID, "job %lld has no requests", (long long)job_id);
    if (!rc) rc = dq_store__run(self, s_sql_job_queue, "iii", now, now, job_id);
    if (!rc) {
        char detail[64];
        snprintf(detail, sizeof detail, "%lld requests", (long long)n);
        rc = dq_store__event(self, now, "submit", job_id, 0, 0, NULL, 0, -1, detail);
    }
    return dq_store__end(self, rc);
}

static const char s_sql_job_delete[] = "DELETE FROM jobs WHERE id = ?";

dq_store_rc_t dq_store_job_abort(dq_store_t *self, int64_t job_id) {
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    rc = s_staging_job(self, job_id, NULL);
    if (!rc) rc = dq_store__run(self, s_sql_job_delete, "i", job_id);
    return dq_store__end(self, rc);
}
