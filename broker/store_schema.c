/* broker/store_schema.c: the queue store's SQLite schema and its upgrade steps (user_version). */
#include <stdio.h>

#include "broker/store_int.h"

/* Version 1. docs/queue-store.md explains every table; keep the two in step. States are text
 * (readable in the sqlite3 shell) with CHECK constraints; counters on jobs and shards are kept
 * by triggers on shard state changes and by the commit path, so status and lease read O(shards)
 * or less, never O(requests). */
static const char s_schema_v1[] =
    "CREATE TABLE jobs("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, model TEXT NOT NULL, out_dir TEXT NOT NULL,"
    " priority INTEGER NOT NULL,"
    " shard_size INTEGER NOT NULL CHECK(shard_size >= 1),"
    " state TEXT NOT NULL CHECK(state IN"
    "  ('staging','queued','running','paused','cancelled','done','failed')),"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " n_requests INTEGER NOT NULL DEFAULT 0, n_images INTEGER NOT NULL DEFAULT 0,"
    " n_shards INTEGER NOT NULL DEFAULT 0,"
    " requests_done INTEGER NOT NULL DEFAULT 0, images_committed INTEGER NOT NULL DEFAULT 0,"
    " shards_queued INTEGER NOT NULL DEFAULT 0, shards_leased INTEGER NOT NULL DEFAULT 0,"
    " shards_done INTEGER NOT NULL DEFAULT 0, shards_failed INTEGER NOT NULL DEFAULT 0,"
    " shards_cancelled INTEGER NOT NULL DEFAULT 0);"
    /* The lease query's index: schedulable jobs only, in lease order. */
    "CREATE INDEX jobs_lease ON jobs(priority DESC, shards_leased, id)"
    " WHERE state IN ('queued','running') AND shards_queued > 0;"
    "CREATE INDEX jobs_state ON jobs(state);"

    "CREATE TABLE shards("
    " id INTEGER PRIMARY KEY,"
    " job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " width INTEGER NOT NULL, height INTEGER NOT NULL, steps INTEGER NOT NULL,"
    " scheduler TEXT NOT NULL,"
    " n_requests INTEGER NOT NULL DEFAULT 0, n_images INTEGER NOT NULL DEFAULT 0,"
    " requests_done INTEGER NOT NULL DEFAULT 0, images_committed INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'queued' CHECK(state IN"
    "  ('queued','leased','done','failed','cancelled')),"
    " attempt INTEGER NOT NULL DEFAULT 1,"
    " attempts_used INTEGER NOT NULL DEFAULT 0,"
    " node TEXT, lease_expiry INTEGER,"
    " orphan INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT, error_class TEXT);"
    "CREATE INDEX shards_job_state ON shards(job, state);"
    "CREATE INDEX shards_key ON shards(job, width, height, steps, scheduler);"
    "CREATE INDEX shards_expiry ON shards(lease_expiry) WHERE state = 'leased';"
    "CREATE INDEX shards_node ON shards(node) WHERE state = 'leased';"
    "CREATE TRIGGER shards_insert AFTER INSERT ON shards BEGIN"
    " UPDATE jobs SET n_shards = n_shards + 1,"
    "  shards_queued = shards_queued + (NEW.state = 'queued') WHERE id = NEW.job; END;"
    "CREATE TRIGGER shards_state AFTER UPDATE OF state ON shards"
    " WHEN OLD.state <> NEW.state BEGIN"
    " UPDATE jobs SET"
    "  shards_queued = shards_queued + (NEW.state = 'queued') - (OLD.state = 'queued'),"
    "  shards_leased = shards_leased + (NEW.state = 'leased') - (OLD.state = 'leased'),"
    "  shards_done = shards_done + (NEW.state = 'done') - (OLD.state = 'done'),"
    "  shards_failed = shards_failed + (NEW.state = 'failed') - (OLD.state = 'failed'),"
    "  shards_cancelled = shards_cancelled + (NEW.state = 'cancelled')"
    "   - (OLD.state = 'cancelled')"
    " WHERE id = NEW.job; END;"

    "CREATE TABLE requests("
    " id INTEGER PRIMARY KEY,"
    " job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " line INTEGER NOT NULL,"
    " rid TEXT,"
    " stem TEXT NOT NULL,"
    " json TEXT NOT NULL,"
    " seed INTEGER NOT NULL,"
    " num_images INTEGER NOT NULL CHECK(num_images >= 1),"
    " shard INTEGER NOT NULL REFERENCES shards(id) ON DELETE CASCADE,"
    " images_committed INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(job, line));"
    "CREATE UNIQUE INDEX requests_stem ON requests(job, stem);"
    "CREATE INDEX requests_shard ON requests(shard, line);"

    "CREATE TABLE attempts("
    " shard INTEGER NOT NULL REFERENCES shards(id) ON DELETE CASCADE,"
    " attempt INTEGER NOT NULL,"
    " job INTEGER NOT NULL,"
    " node TEXT NOT NULL,"
    " start_ms INTEGER NOT NULL, end_ms INTEGER,"
    " outcome TEXT NOT NULL DEFAULT 'running' CHECK(outcome IN"
    "  ('running','done','failed','expired','forgotten','cancelled','lost')),"
    " error_class TEXT, message TEXT,"
    " PRIMARY KEY(shard, attempt)) WITHOUT ROWID;"
    "CREATE INDEX attempts_job_node ON attempts(job, node, outcome);"

    "CREATE TABLE results("
    " job INTEGER NOT NULL, line INTEGER NOT NULL, image INTEGER NOT NULL,"
    " shard INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
    " committed_ms INTEGER NOT NULL,"
    " PRIMARY KEY(job, line, image),"
    " FOREIGN KEY(job, line) REFERENCES requests(job, line) ON DELETE CASCADE) WITHOUT ROWID;"
    "CREATE INDEX results_time ON results(job, committed_ms);"

    "CREATE TABLE blocklist("
    " job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " node TEXT NOT NULL, since_ms INTEGER NOT NULL,"
    " PRIMARY KEY(job, node)) WITHOUT ROWID;"

    "CREATE TABLE events("
    " seq INTEGER PRIMARY KEY,"
    " t_ms INTEGER NOT NULL,"
    " kind TEXT NOT NULL CHECK(kind IN ('submit','assign','renew','expire','commit','duplicate',"
    "  'fail','cancel','pause','resume','retry','requeue','reclaim','block','done')),"
    " job INTEGER NOT NULL, shard INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0,"
    " node TEXT NOT NULL DEFAULT '', line INTEGER NOT NULL DEFAULT 0,"
    " image INTEGER NOT NULL DEFAULT -1, detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX events_job ON events(job, seq);";

/* Version 2: requests.json holds the request's canonical job JSON (common/job.h), the one form
 * the broker both checks and reads back. Version 1 stored the broker's own JSON, which differs in
 * two ways: "scheduler":"model" for the model's own scheduler (the job form leaves it out), and
 * seeds above INT64_MAX as their negative two's-complement pattern. Both are rewritten here;
 * 2^63 is added to a negative seed in two 9-digit halves, as SQLite integers stop at 2^63-1. */
static const char s_schema_v2[] =
    "UPDATE requests SET json = json_remove(json, '$.scheduler')"
    " WHERE json_valid(json) AND json_extract(json, '$.scheduler') = 'model';"
    "UPDATE requests SET json = json_set(json, '$.seed', json("
    " (SELECT (hi + 9223372036 + (lo + 854775808) / 1000000000)"
    "   || printf('%09d', (lo + 854775808) % 1000000000)"
    "  FROM (SELECT y / 1000000000 AS hi, y % 1000000000 AS lo"
    "   FROM (SELECT json_extract(json, '$.seed') + 9223372036854775807 + 1 AS y)))))"
    " WHERE json_valid(json) AND json_extract(json, '$.seed') < 0;";

/* s_steps[v] upgrades a version-v database to v+1 (s_steps[0] creates the schema). To change
 * the schema: append a step, bump DQ_STORE_SCHEMA_VERSION, update docs/queue-store.md, and add
 * a test that opens a database written by the previous version. */
static const char *const s_steps[DQ_STORE_SCHEMA_VERSION] = {s_schema_v1, s_schema_v2};

dq_store_rc_t dq_store__schema_apply(dq_store_t *self) {
    int64_t version = 0;
    if (dq_store__get_i64(self, &version, "PRAGMA user_version", "") < 0) return DQ_STORE_DB;
    if (version > DQ_STORE_SCHEMA_VERSION)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID,
                             "database schema version %lld is newer than this diffq (%d); "
                             "use a newer diffq-broker",
                             (long long)version, DQ_STORE_SCHEMA_VERSION);
    if (version < 0)
        return DQ_STORE_FAIL(self, DQ_STORE_INVALID, "database schema version %lld is invalid",
                             (long long)version);
    while (version < DQ_STORE_SCHEMA_VERSION) {
        /* One transaction per step, user_version included, so a crash leaves a whole version. */
        char *msg = NULL;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %lld;", (long long)version + 1);
        if (sqlite3_exec(self->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(self->db, s_steps[version], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(self->db, bump, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(self->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            dq_store__fail(self, DQ_STORE_DB, __LINE__, "schema upgrade %lld -> %lld: %s",
                           (long long)version, (long long)version + 1, msg ? msg : "unknown error");
            sqlite3_free(msg);
            sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
            return DQ_STORE_DB;
        }
        version++;
    }
    return DQ_STORE_OK;
}
