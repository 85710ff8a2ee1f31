/* broker/store.c: opening the queue store, statement cache, transactions, fault hook, events. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store_int.h"

static const char *const s_rc_names[DQ_STORE_RC_COUNT] = {"ok",        "duplicate", "stale",
                                                          "not found", "invalid",   "database"};
static const char *const s_job_states[DQ_STORE_JOB_STATE_COUNT] = {
    "staging", "queued", "running", "paused", "cancelled", "done", "failed"};
static const char *const s_shard_states[DQ_SHARD_STATE_COUNT] = {"queued", "leased", "done",
                                                                 "failed", "cancelled"};

const char *dq_store_rc_name(dq_store_rc_t rc) {
    return (unsigned)rc < DQ_STORE_RC_COUNT ? s_rc_names[rc] : "?";
}
const char *dq_store_job_state_name(dq_store_job_state_t state) {
    return (unsigned)state < DQ_STORE_JOB_STATE_COUNT ? s_job_states[state] : "?";
}
const char *dq_shard_state_name(dq_shard_state_t state) {
    return (unsigned)state < DQ_SHARD_STATE_COUNT ? s_shard_states[state] : "?";
}
dq_store_job_state_t dq_store__job_state_parse(const char *name) {
    for (int i = 0; i < DQ_STORE_JOB_STATE_COUNT; i++)
        if (name && strcmp(name, s_job_states[i]) == 0) return (dq_store_job_state_t)i;
    return DQ_STORE_JOB_STATE_COUNT;
}

void dq_store_params_init(dq_store_params_t *params) {
    params->max_attempts = 3;
    params->block_after_failures = 2;
    params->sync_full = true;
}

int dq_store_schema_version(void) {
    return DQ_STORE_SCHEMA_VERSION;
}

dq_store_rc_t dq_store__fail(dq_store_t *self, dq_store_rc_t rc, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(self->err, sizeof self->err, fmt, ap);
    va_end(ap);
    /* The source line goes last so messages read well; one breakpoint here catches them all. */
    if (n >= 0 && (size_t)n < sizeof self->err)
        snprintf(self->err + n, sizeof self->err - (size_t)n, " (store:%d)", line);
    return rc;
}

const char *dq_store_errmsg(const dq_store_t *self) {
    return self->err;
}

int dq_store_fault_fail_nth(dq_store_t *self, int nth) {
    int left = self->fault_countdown;
    self->fault_countdown = nth > 0 ? nth : 0;
    return left;
}

sqlite3_stmt *dq_store__prep(dq_store_t *self, const char *sql) {
    for (int i = 0; i < self->n_stmt; i++) {
        if (self->sql[i] == sql) {
            sqlite3_reset(self->stmt[i]);
            sqlite3_clear_bindings(self->stmt[i]);
            return self->stmt[i];
        }
    }
    if (self->n_stmt == DQ_STORE_MAX_STMTS) {
        DQ_STORE_FAIL(self, DQ_STORE_DB, "statement cache full (raise DQ_STORE_MAX_STMTS)");
        return NULL;
    }
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
        SQLITE_OK) {
        DQ_STORE_FAIL(self, DQ_STORE_DB, "prepare failed: %s: %.80s", sqlite3_errmsg(self->db),
                      sql);
        sqlite3_finalize(stmt);
        return NULL;
    }
    self->sql[self->n_stmt] = sql;
    self->stmt[self->n_stmt++] = stmt;
    return stmt;
}

int dq_store__step(dq_store_t *self, sqlite3_stmt *stmt) {
    if (self->fault_countdown > 0 && --self->fault_countdown == 0) {
        DQ_STORE_FAIL(self, DQ_STORE_DB, "injected fault (SQLITE_IOERR)");
        return SQLITE_IOERR;
    }
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        DQ_STORE_FAIL(self, DQ_STORE_DB, "sqlite: %s", sqlite3_errmsg(self->db));
    return rc;
}

static int s_bind(dq_store_t *self, sqlite3_stmt *stmt, const char *types, va_list ap) {
    for (int i = 0; types[i]; i++) {
        int rc = SQLITE_OK;
        if (types[i] == 'i') {
            rc = sqlite3_bind_int64(stmt, i + 1, va_arg(ap, int64_t));
        } else if (types[i] == 'n') {
            rc = sqlite3_bind_int(stmt, i + 1, va_arg(ap, int));
        } else if (types[i] == 's') {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(stmt, i + 1, s, -1, SQLITE_STATIC)
                   : sqlite3_bind_null(stmt, i + 1);
        } else {
            DQ_STORE_FAIL(self, DQ_STORE_DB, "bad bind type '%c'", types[i]);
            return -1;
        }
        if (rc != SQLITE_OK) {
            DQ_STORE_FAIL(self, DQ_STORE_DB, "bind: %s", sqlite3_errmsg(self->db));
            return -1;
        }
    }
    return 0;
}

dq_store_rc_t dq_store__run(dq_store_t *self, const char *sql, const char *types, ...) {
    sqlite3_stmt *stmt = dq_store__prep(self, sql);
    if (!stmt) return DQ_STORE_DB;
    va_list ap;
    va_start(ap, types);
    int bad = s_bind(self, stmt, types, ap);
    va_end(ap);
    if (bad) return DQ_STORE_DB;
    int rc = dq_store__step(self, stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? DQ_STORE_OK : DQ_STORE_DB;
}

static int s_get(dq_store_t *self, sqlite3_stmt **stmt_out, const char *sql, const char *types,
                 va_list ap) {
    sqlite3_stmt *stmt = dq_store__prep(self, sql);
    *stmt_out = stmt;
    if (!stmt || s_bind(self, stmt, types, ap)) return -1;
    int rc = dq_store__step(self, stmt);
    if (rc == SQLITE_ROW) return 1;
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

int dq_store__get(dq_store_t *self, sqlite3_stmt **stmt_out, const char *sql, const char *types,
                  ...) {
    va_list ap;
    va_start(ap, types);
    int r = s_get(self, stmt_out, sql, types, ap);
    va_end(ap);
    return r;
}

int dq_store__get_i64(dq_store_t *self, int64_t *out, const char *sql, const char *types, ...) {
    sqlite3_stmt *stmt;
    va_list ap;
    va_start(ap, types);
    int r = s_get(self, &stmt, sql, types, ap);
    va_end(ap);
    if (r == 1) {
        *out = sqlite3_column_int64(stmt, 0);
        sqlite3_reset(stmt);
    }
    return r;
}

static const char s_sql_begin[] = "BEGIN IMMEDIATE";
static const char s_sql_commit[] = "COMMIT";
static const char s_sql_rollback[] = "ROLLBACK";

dq_store_rc_t dq_store__begin(dq_store_t *self) {
    self->err[0] = '\0';
    return dq_store__run(self, s_sql_begin, "");
}

dq_store_rc_t dq_store__end(dq_store_t *self, dq_store_rc_t rc) {
    /* Every helper resets its statements, and a caller may be iterating a read statement
     * (shard_requests callback) across this transaction, so nothing is reset here. */
    if (rc == DQ_STORE_OK || rc == DQ_STORE_DUPLICATE || rc == DQ_STORE_STALE) {
        char keep[sizeof self->err];
        memcpy(keep, self->err, sizeof keep); /* a STALE message survives a good commit */
        if (dq_store__run(self, s_sql_commit, "") == DQ_STORE_OK) {
            memcpy(self->err, keep, sizeof keep);
            return rc;
        }
        rc = DQ_STORE_DB;
    }
    /* ROLLBACK bypasses the fault hook: it is how a failure is cleaned up. It may also find the
     * transaction already gone (SQLite rolls back by itself on some I/O errors). */
    if (!sqlite3_get_autocommit(self->db)) {
        sqlite3_stmt *stmt = dq_store__prep(self, s_sql_rollback);
        if (stmt) {
            sqlite3_step(stmt);
            sqlite3_reset(stmt);
        }
    }
    return rc;
}

static const char s_sql_event[] =
    "INSERT INTO events(t_ms, kind, job, shard, attempt, node, line, image, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

dq_store_rc_t dq_store__event(dq_store_t *self, int64_t now, const char *kind, int64_t job,
                              int64_t shard, int attempt, const char *node, int64_t line, int image,
                              const char *detail) {
    return dq_store__run(self, s_sql_event, "isiinsins", now, kind, job, shard, attempt,
                         node ? node : "", line, image, detail ? detail : "");
}

dq_store_t *dq_store_open(const char *path, const dq_store_params_t *params, char *err,
                          size_t err_size) {
    dq_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, err_size, "%s: out of memory", path);
        return NULL;
    }
    if (params)
        self->params = *params;
    else
        dq_store_params_init(&self->params);
    if (self->params.max_attempts < 1 || self->params.block_after_failures < 1) {
        snprintf(err, err_size, "%s: max_attempts and block_after_failures must be >= 1", path);
        free(self);
        return NULL;
    }
    if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, err_size, "%s: %s", path,
                 self->db ? sqlite3_errmsg(self->db) : "cannot open");
        dq_store_destroy(&self);
        return NULL;
    }
    /* WAL: readers never block the writer. FULL: a commit is on disk (WAL fsynced) before the
     * call returns, so an acknowledged submit or result survives power loss, not only a kill.
     * busy_timeout: a second process (the sqlite3 shell, a backup) may briefly hold locks. */
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             " PRAGMA busy_timeout=5000;",
             self->params.sync_full ? "FULL" : "NORMAL");
    char *msg = NULL;
    if (sqlite3_exec(self->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, err_size, "%s: %s", path, msg ? msg : "cannot set pragmas");
        sqlite3_free(msg);
        dq_store_destroy(&self);
        return NULL;
    }
    int64_t wal = 0;
    sqlite3_stmt *stmt;
    if (dq_store__get(self, &stmt, "PRAGMA journal_mode", "") == 1) {
        const char *mode = (const char *)sqlite3_column_text(stmt, 0);
        wal = mode && strcmp(mode, "wal") == 0;
        sqlite3_reset(stmt);
    }
    if (!wal) {
        snprintf(err, err_size, "%s: cannot switch to WAL mode (%s)", path,
                 self->err[0] ? self->err : "file system without shared memory?");
        dq_store_destroy(&self);
        return NULL;
    }
    if (dq_store__schema_apply(self) != DQ_STORE_OK) {
        snprintf(err, err_size, "%s: %s", path, self->err);
        dq_store_destroy(&self);
        return NULL;
    }
    return self;
}

void dq_store_destroy(dq_store_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_store_t *self = *self_p;
    for (int i = 0; i < self->n_stmt; i++)
        sqlite3_finalize(self->stmt[i]);
    if (self->db) sqlite3_close(self->db);
    free(self->unserved);
    free(self);
    *self_p = NULL;
}

/* ---- Shared transitions. ---- */

static const char s_sql_job_counts[] =
    "SELECT state, shards_queued, shards_leased, shards_failed FROM jobs WHERE id = ?";
static const char s_sql_job_set_state[] = "UPDATE jobs SET state = ?, updated_ms = ? WHERE id = ?";

dq_store_rc_t dq_store__job_settle(dq_store_t *self, int64_t job, int64_t now) {
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_job_counts, "i", job);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_NOT_FOUND, "job %lld not found", (long long)job);
    dq_store_job_state_t state = dq_store__job_state_parse((const char *)sqlite3_column_text(stmt, 0));
    int64_t queued = sqlite3_column_int64(stmt, 1), leased = sqlite3_column_int64(stmt, 2);
    int64_t failed = sqlite3_column_int64(stmt, 3);
    sqlite3_reset(stmt);
    dq_store_job_state_t next = state;
    if (state == DQ_STORE_JOB_QUEUED || state == DQ_STORE_JOB_RUNNING || state == DQ_STORE_JOB_PAUSED) {
        if (queued == 0 && leased == 0)
            next = failed ? DQ_STORE_JOB_FAILED : DQ_STORE_JOB_DONE;
        else if (state == DQ_STORE_JOB_QUEUED && leased > 0)
            next = DQ_STORE_JOB_RUNNING;
    }
    if (next == state) return DQ_STORE_OK;
    dq_store_rc_t rc =
        dq_store__run(self, s_sql_job_set_state, "sii", dq_store_job_state_name(next), now, job);
    if (rc == DQ_STORE_OK && (next == DQ_STORE_JOB_DONE || next == DQ_STORE_JOB_FAILED))
        rc = dq_store__event(self, now, "done", job, 0, 0, NULL, 0, -1, dq_store_job_state_name(next));
    return rc;
}

static const char s_sql_shard_lease_info[] =
    "SELECT job, attempt, node, attempts_used, orphan FROM shards"
    " WHERE id = ? AND state = 'leased'";
static const char s_sql_attempt_end[] =
    "UPDATE attempts SET end_ms = ?, outcome = ?, error_class = ?, message = ?"
    " WHERE shard = ? AND attempt = ?";
static const char s_sql_shard_requeue[] =
    "UPDATE shards SET state = 'queued', attempt = attempt + 1, attempts_used = ?, node = NULL,"
    " lease_expiry = NULL, orphan = 0, last_error = coalesce(?, last_error),"
    " error_class = coalesce(?, error_class) WHERE id = ?";
static const char s_sql_shard_fail[] =
    "UPDATE shards SET state = 'failed', node = NULL, lease_expiry = NULL, orphan = 0,"
    " last_error = coalesce(?, last_error), error_class = coalesce(?, error_class) WHERE id = ?";

dq_store_rc_t dq_store__requeue(dq_store_t *self, int64_t shard, int64_t now, const char *outcome,
                                const char *event, const char *error_class, const char *message,
                                bool count_attempt) {
    sqlite3_stmt *stmt;
    int r = dq_store__get(self, &stmt, s_sql_shard_lease_info, "i", shard);
    if (r < 0) return DQ_STORE_DB;
    if (r == 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "shard %lld is not leased", (long long)shard);
    int64_t job = sqlite3_column_int64(stmt, 0);
    int attempt = sqlite3_column_int(stmt, 1);
    char node[DQ_STORE_MAX_NODE + 1];
    snprintf(node, sizeof node, "%s", (const char *)sqlite3_column_text(stmt, 2));
    int used = sqlite3_column_int(stmt, 3);
    sqlite3_reset(stmt);
    if (!count_attempt && used > 0) used--;
    dq_store_rc_t rc = dq_store__run(self, s_sql_attempt_end, "isssin", now, outcome, error_class,
                                     message, shard, attempt);
    if (rc) return rc;
    bool exhausted = used >= self->params.max_attempts;
    if (exhausted)
        rc = dq_store__run(self, s_sql_shard_fail, "ssi", message, error_class, shard);
    else
        /* An attempt that does not count was not the shard's failure: its last error stays. */
        rc = dq_store__run(self, s_sql_shard_requeue, "nssi", used, count_attempt ? message : NULL,
                           count_attempt ? error_class : NULL, shard);
    if (rc) return rc;
    rc = dq_store__event(self, now, event, job, shard, attempt, node, 0, -1, message);
    if (rc) return rc;
    if (exhausted) {
        char detail[128];
        snprintf(detail, sizeof detail, "shard failed after %d attempts", used);
        rc = dq_store__event(self, now, "fail", job, shard, attempt, node, 0, -1, detail);
        if (rc) return rc;
    }
    return dq_store__job_settle(self, job, now);
}

/* ---- Startup recovery. ---- */

static const char s_sql_delete_staging[] = "DELETE FROM jobs WHERE state = 'staging'";
static const char s_sql_orphan_all[] =
    "UPDATE shards SET orphan = 1, lease_expiry = ? WHERE state = 'leased'";

dq_store_rc_t dq_store_recover(dq_store_t *self, int64_t now, int64_t grace_end_ms,
                               int *n_orphans) {
    if (n_orphans) *n_orphans = 0;
    if (grace_end_ms < now)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "recover: grace period ends before now");
    dq_store_rc_t rc = dq_store__begin(self);
    if (rc) return rc;
    rc = dq_store__run(self, s_sql_delete_staging, "");
    if (!rc) rc = dq_store__run(self, s_sql_orphan_all, "i", grace_end_ms);
    int changed = sqlite3_changes(self->db);
    rc = dq_store__end(self, rc);
    if (n_orphans) *n_orphans = rc ? 0 : changed;
    return rc;
}

/* ---- Event log. ---- */

static const char s_sql_events_all[] =
    "SELECT seq, t_ms, kind, job, shard, attempt, node, line, image, detail FROM events"
    " ORDER BY seq";
static const char s_sql_events_job[] =
    "SELECT seq, t_ms, kind, job, shard, attempt, node, line, image, detail FROM events"
    " WHERE job = ? ORDER BY seq";

dq_store_rc_t dq_store_events(dq_store_t *self, int64_t job_id, dq_store_event_fn *fn, void *arg) {
    sqlite3_stmt *stmt = dq_store__prep(self, job_id ? s_sql_events_job : s_sql_events_all);
    if (!stmt) return DQ_STORE_DB;
    if (job_id) sqlite3_bind_int64(stmt, 1, job_id);
    dq_store_rc_t rc = DQ_STORE_OK;
    int r;
    while ((r = dq_store__step(self, stmt)) == SQLITE_ROW) {
        dq_event_t ev = {
            .seq = sqlite3_column_int64(stmt, 0),
            .t_ms = sqlite3_column_int64(stmt, 1),
            .kind = (const char *)sqlite3_column_text(stmt, 2),
            .job = sqlite3_column_int64(stmt, 3),
            .shard = sqlite3_column_int64(stmt, 4),
            .attempt = sqlite3_column_int(stmt, 5),
            .node = (const char *)sqlite3_column_text(stmt, 6),
            .line = sqlite3_column_int64(stmt, 7),
            .image = sqlite3_column_int(stmt, 8),
            .detail = (const char *)sqlite3_column_text(stmt, 9),
        };
        if (fn(arg, &ev)) {
            rc = DQ_STORE_FAIL(self, DQ_STORE_INVALID, "event callback stopped");
            break;
        }
    }
    if (rc == DQ_STORE_OK && r != SQLITE_DONE) rc = DQ_STORE_DB;
    sqlite3_reset(stmt);
    return rc;
}

/* ---- Query plans. ---- */

/* Statements that list everything on purpose (operator listings, the event dump). */
static bool s_plan_exempt(const char *sql) {
    static const char *const prefixes[] = {
        "SELECT seq, t_ms, kind, job, shard, attempt, node, line, image, detail FROM events",
        "SELECT id FROM jobs WHERE state <> 'staging'",
        "PRAGMA",
        "BEGIN",
        "COMMIT",
        "ROLLBACK"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(sql, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

int dq_store_check_plans(dq_store_t *self, char *report, size_t size) {
    size_t used = 0;
    int bad = 0;
    if (size) report[0] = '\0';
    for (int i = 0; i < self->n_stmt; i++) {
        if (s_plan_exempt(self->sql[i])) continue;
        char *explain = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", self->sql[i]);
        sqlite3_stmt *stmt = NULL;
        int rc = explain ? sqlite3_prepare_v2(self->db, explain, -1, &stmt, NULL) : SQLITE_NOMEM;
        sqlite3_free(explain);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(stmt);
            return -1;
        }
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(stmt, 3);
            if (!detail) continue;
            bool scan = strncmp(detail, "SCAN ", 5) == 0 && !strstr(detail, "USING");
            bool sort = strstr(detail, "TEMP B-TREE") != NULL;
            if (!scan && !sort) continue;
            bad++;
            if (used < size) {
                int n =
                    snprintf(report + used, size - used, "%s  <-  %.120s\n", detail, self->sql[i]);
                if (n > 0) used += (size_t)n;
            }
            break;
        }
        sqlite3_finalize(stmt);
    }
    return bad;
}
