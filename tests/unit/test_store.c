/* tests/unit/test_store.c: queue store basics: schema, names, submit, commit, status, actions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/test_store_util.h"

static void test_open_and_schema_version(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    assert_int_equal(dq_store_schema_version(), 2);
    assert_string_equal(dq_store_rc_name(DQ_STORE_STALE), "stale");
    assert_string_equal(dq_store_rc_name(DQ_STORE_RC_COUNT), "?");
    assert_string_equal(dq_store_job_state_name(DQ_STORE_JOB_PAUSED), "paused");
    assert_string_equal(dq_shard_state_name(DQ_SHARD_LEASED), "leased");
    dq_store_destroy(&env.store);
    assert_null(env.store);
    dq_store_destroy(&env.store); /* idempotent */

    /* The file is in WAL mode (persistent) at the current schema version. */
    sqlite3 *db;
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_open(env.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), 2);
    sqlite3_finalize(stmt);
    /* A database from a newer diffq is refused and left alone. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    assert_null(dq_store_open(env.path, NULL, err, sizeof err));
    assert_non_null(strstr(err, "schema version 7 is newer"));
    tu_env_end(&env);

    assert_null(dq_store_open("/nonexistent-dir/x/queue.db", NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir/x/queue.db"));
    dq_store_params_t p;
    dq_store_params_init(&p);
    p.max_attempts = 0;
    assert_null(dq_store_open("/tmp/never.db", &p, err, sizeof err));
    assert_non_null(strstr(err, "max_attempts"));
}

/* Collects a shard's stored request texts. */
static int s_collect_json(void *arg, const dq_store_request_t *req) {
    char (*out)[256] = arg;
    snprintf(out[req->line - 1], sizeof out[0], "%s", req->json);
    return 0;
}

/* Version 1 stored the broker's own request JSON; opening such a database rewrites it into the
 * job form: no "scheduler":"model", seeds above INT64_MAX unsigned. */
static void test_upgrade_from_v1_rewrites_requests(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "old", .model = "sd15", .out_dir = "/out", .shard_size = 4};
    int64_t job = 0;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    static const char *const v1[3] = {
        "{\"prompt\":\"a\",\"negative_prompt\":\"\",\"seed\":-1,\"num_inference_steps\":2,"
        "\"guidance_scale\":7.5,\"width\":64,\"height\":64,\"num_images_per_prompt\":1,"
        "\"scheduler\":\"model\"}",
        "{\"prompt\":\"b\",\"seed\":-9223372036854775808,\"scheduler\":\"ddim\"}",
        "{\"prompt\":\"c\",\"seed\":42,\"scheduler\":\"euler\"}"};
    for (int i = 0; i < 3; i++) {
        dq_store_request_t q = tu_request(i + 1, 1, 512);
        q.json = v1[i];
        assert_int_equal(dq_store_job_add(env.store, job, &q, 1), DQ_STORE_OK);
    }
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_OK);
    dq_store_destroy(&env.store);
    /* The schema itself did not change from 1 to 2: marking the file 1 makes it a v1 file. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(env.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    env.store = tu_reopen(&env, NULL);
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    char json[3][256];
    assert_int_equal(dq_store_shard_requests(env.store, l.shard, s_collect_json, json),
                     DQ_STORE_OK);
    assert_string_equal(json[0], "{\"prompt\":\"a\",\"negative_prompt\":\"\",\"seed\":"
                                 "18446744073709551615,\"num_inference_steps\":2,"
                                 "\"guidance_scale\":7.5,\"width\":64,\"height\":64,"
                                 "\"num_images_per_prompt\":1}");
    assert_string_equal(json[1], "{\"prompt\":\"b\",\"seed\":9223372036854775808,"
                                 "\"scheduler\":\"ddim\"}");
    assert_string_equal(json[2], v1[2]); /* nothing to change */
    tu_env_end(&env);
}

static void test_output_names(void **state) {
    (void)state;
    char buf[64];
    assert_int_equal(dq_store_output_name("cat", 3, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "cat-0.png");
    assert_int_equal(dq_store_output_name(NULL, 42, 3, buf, sizeof buf), 0);
    assert_string_equal(buf, "000042-3.png");
    assert_int_equal(dq_store_output_name(NULL, 1234567, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "1234567-0.png");
    assert_int_equal(dq_store_output_name("a.b_c-D9", 1, 11, buf, sizeof buf), 0);
    assert_string_equal(buf, "a.b_c-D9-11.png");
    assert_int_equal(dq_store_output_name("../etc", 1, 0, buf, sizeof buf), -1);
    assert_int_equal(dq_store_output_name("a/b", 1, 0, buf, sizeof buf), -1);
    assert_int_equal(dq_store_output_name(".hidden", 1, 0, buf, sizeof buf), -1);
    assert_int_equal(dq_store_output_name("", 1, 0, buf, sizeof buf), -1);
    assert_int_equal(dq_store_output_name("x y", 1, 0, buf, sizeof buf), -1);
    assert_int_equal(dq_store_output_name("cat", 1, -1, buf, sizeof buf), -1);
    assert_int_equal(dq_store_output_name("cat", 1, 0, buf, 5), -1);
}

typedef struct {
    int n;
    int64_t lines[16];
} s_lines_t;

static int s_collect_lines(void *arg, const dq_store_request_t *req) {
    s_lines_t *l = arg;
    l->lines[l->n++] = req->line;
    return 0;
}

static void test_out_dir_named_by_job_id(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "n", .model = "m", .out_base = "/state/out", .shard_size = 4};
    int64_t a, b;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &a), DQ_STORE_OK);
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &b), DQ_STORE_OK);
    char dir[64], want[64];
    assert_int_equal(dq_store_job_out_dir(env.store, b, dir, sizeof dir), DQ_STORE_OK);
    snprintf(want, sizeof want, "/state/out/%lld", (long long)b);
    assert_string_equal(dir, want);
    assert_int_equal(dq_store_job_out_dir(env.store, b, dir, 4), DQ_STORE_INVALID);
    assert_int_equal(dq_store_job_out_dir(env.store, 999, dir, sizeof dir), DQ_STORE_NOT_FOUND);
    /* A folder given wins over the base; neither is an error. */
    p.out_dir = "/mine";
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &a), DQ_STORE_OK);
    assert_int_equal(dq_store_job_out_dir(env.store, a, dir, sizeof dir), DQ_STORE_OK);
    assert_string_equal(dir, "/mine");
    p.out_dir = p.out_base = NULL;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &a), DQ_STORE_INVALID);
    tu_env_end(&env);
}

static void test_submit_splits_into_shards(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "mix", .model = "sd15", .out_dir = "/o", .shard_size = 2};
    int64_t job;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    /* Lines 1..6 alternate between two sizes; shards hold 2 requests of one key each. */
    dq_store_request_t reqs[6];
    char json[6][64];
    for (int i = 0; i < 6; i++) {
        reqs[i] = tu_request(i + 1, 1, i % 2 ? 768 : 512);
        snprintf(json[i], sizeof json[i], "{\"line\":%d}", i + 1);
        reqs[i].json = json[i];
    }
    assert_int_equal(dq_store_job_add(env.store, job, reqs, 3), DQ_STORE_OK);
    assert_int_equal(dq_store_job_add(env.store, job, reqs + 3, 3), DQ_STORE_OK);
    /* Staging jobs are invisible. */
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 60000, &st), DQ_STORE_NOT_FOUND);
    dq_lease_t l[8];
    int n = -1;
    assert_int_equal(dq_store_lease(env.store, "A", 8, T0, 1000, l, &n), DQ_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_OK);
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_INVALID);
    assert_int_equal(dq_store_job_status(env.store, job, T0, 60000, &st), DQ_STORE_OK);
    assert_int_equal(st.n_requests, 6);
    assert_int_equal(st.n_shards, 4); /* 512: {1,3},{5}; 768: {2,4},{6} */
    assert_int_equal(st.requests_queued, 6);
    assert_int_equal(st.images_queued, 6);
    assert_int_equal(st.images_running, 0);
    assert_int_equal(st.state, DQ_STORE_JOB_QUEUED);
    assert_string_equal(st.name, "mix");

    assert_int_equal(dq_store_lease(env.store, "A", 8, T0, 1000, l, &n), DQ_STORE_OK);
    assert_int_equal(n, 4);
    int64_t want[4][2] = {{1, 3}, {2, 4}, {5, 0}, {6, 0}};
    for (int i = 0; i < 4; i++) {
        s_lines_t got = {0};
        assert_int_equal(dq_store_shard_requests(env.store, l[i].shard, s_collect_lines, &got),
                         DQ_STORE_OK);
        assert_int_equal(got.n, want[i][1] ? 2 : 1);
        assert_int_equal(l[i].n_requests, got.n);
        assert_int_equal(got.lines[0], want[i][0]);
        if (want[i][1]) assert_int_equal(got.lines[1], want[i][1]);
        assert_int_equal(l[i].width, i % 2 ? 768 : 512);
        assert_string_equal(l[i].scheduler, "euler");
        assert_string_equal(l[i].model, "sd15");
        assert_int_equal(l[i].attempt, 1);
    }
    assert_int_equal(dq_store_job_status(env.store, job, T0, 60000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_RUNNING);
    assert_int_equal(st.requests_running, 6);
    assert_int_equal(st.images_running, 6);
    assert_int_equal(st.images_queued, 0);
    /* The brief form: the same row, without the per-state counts. */
    dq_job_status_t brief;
    assert_int_equal(dq_store_job_brief(env.store, job, &brief), DQ_STORE_OK);
    assert_int_equal(brief.state, DQ_STORE_JOB_RUNNING);
    assert_string_equal(brief.name, "mix");
    assert_string_equal(brief.out_dir, st.out_dir);
    assert_int_equal(brief.n_shards, 4);
    assert_int_equal(brief.requests_running, 0);
    assert_int_equal(dq_store_job_brief(env.store, 999, &brief), DQ_STORE_NOT_FOUND);
    assert_int_equal(dq_store_shard_requests(env.store, 999, s_collect_lines, &(s_lines_t){0}),
                     DQ_STORE_NOT_FOUND);
    tu_env_end(&env);
}

static void test_submit_rejects_bad_pieces_whole(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "bad", .model = "sd15", .out_dir = "/o", .shard_size = 4};
    int64_t job;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    dq_store_request_t q[3];
    for (int i = 0; i < 3; i++)
        q[i] = tu_request(i + 1, 1, 512);
    q[2].id = "../x";
    assert_int_equal(dq_store_job_add(env.store, job, q, 3), DQ_STORE_INVALID);
    assert_non_null(strstr(dq_store_errmsg(env.store), "line 3"));
    assert_non_null(strstr(dq_store_errmsg(env.store), "not a safe file name"));
    q[2].id = "000001"; /* would name the same files as line 1 (no id) */
    assert_int_equal(dq_store_job_add(env.store, job, q, 3), DQ_STORE_INVALID);
    assert_non_null(strstr(dq_store_errmsg(env.store), "already used by line 1"));
    q[2].id = NULL;
    q[2].line = 2;
    assert_int_equal(dq_store_job_add(env.store, job, q, 3), DQ_STORE_INVALID);
    assert_non_null(strstr(dq_store_errmsg(env.store), "line 2: line added twice"));
    q[2].line = 3;
    q[2].num_images = 0;
    assert_int_equal(dq_store_job_add(env.store, job, q, 3), DQ_STORE_INVALID);
    assert_non_null(strstr(dq_store_errmsg(env.store), "num_images 0"));
    q[2].num_images = 1;
    /* Nothing of the refused pieces was kept: the good piece goes in whole, lines 1..3. */
    assert_int_equal(dq_store_job_add(env.store, job, q, 3), DQ_STORE_OK);
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_OK);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.n_requests, 3);
    assert_int_equal(st.n_shards, 1);
    /* A committed job takes no more requests; bad params are refused with a reason. */
    dq_store_request_t more = tu_request(9, 1, 512);
    assert_int_equal(dq_store_job_add(env.store, job, &more, 1), DQ_STORE_INVALID);
    assert_int_equal(dq_store_job_add(env.store, 77, &more, 1), DQ_STORE_NOT_FOUND);
    p.shard_size = 0;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_INVALID);
    assert_non_null(strstr(dq_store_errmsg(env.store), "shard size 0"));
    p.shard_size = 1;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_INVALID);
    assert_non_null(strstr(dq_store_errmsg(env.store), "has no requests"));
    tu_env_end(&env);
}

static void test_abort_and_startup_discard_staging(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "gone", .model = "sd15", .out_dir = "/o", .shard_size = 1};
    int64_t job;
    dq_store_request_t q = tu_request(1, 1, 512);
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    assert_int_equal(dq_store_job_add(env.store, job, &q, 1), DQ_STORE_OK);
    assert_int_equal(dq_store_job_abort(env.store, job), DQ_STORE_OK);
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_NOT_FOUND);
    assert_int_equal(dq_store_job_abort(env.store, job), DQ_STORE_NOT_FOUND);

    /* A client vanishes mid-submit; the broker restarts: the staging job is gone. */
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    assert_int_equal(dq_store_job_add(env.store, job, &q, 1), DQ_STORE_OK);
    int64_t kept = tu_job(env.store, "kept", 0, 1, 1, 1, false, T0);
    dq_store_t *second = tu_reopen(&env, NULL);
    int orphans = -1;
    assert_int_equal(dq_store_recover(second, T0, T0 + 1000, &orphans), DQ_STORE_OK);
    assert_int_equal(orphans, 0);
    assert_int_equal(dq_store_job_commit(second, job, T0), DQ_STORE_NOT_FOUND);
    dq_lease_t l;
    assert_int_equal(tu_lease1(second, "A", T0, &l), 1);
    assert_int_equal(l.job, kept);
    assert_int_equal(tu_lease1(second, "A", T0, &l), 0);
    dq_store_destroy(&second);
    tu_env_end(&env);
}

static void test_commit_finishes_shard_and_job(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "j", 0, 2, 3, 2, true, T0); /* shards {1,2} {3} */
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(l.n_images, 4);
    dq_result_t r = {.job = job,
                     .line = 1,
                     .image = 0,
                     .attempt = 1,
                     .path = "/o/r1-0.png",
                     .sha256 = SHA_A,
                     .size = 10};
    assert_int_equal(dq_store_commit_result(env.store, &r, T0 + 100), DQ_STORE_OK);
    r.image = 1;
    assert_int_equal(dq_store_commit_result(env.store, &r, T0 + 200), DQ_STORE_OK);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0 + 1000, 60000, &st), DQ_STORE_OK);
    assert_int_equal(st.requests_done, 1);
    assert_int_equal(st.requests_running, 1);
    assert_int_equal(st.requests_queued, 1);
    assert_int_equal(st.images_committed, 2);
    /* 2 images in the 1 s since the job was created. */
    assert_true(st.images_per_s > 1.99 && st.images_per_s < 2.01);
    assert_true(st.eta_s > 1.99 && st.eta_s < 2.01);               /* 4 left at 2/s */
    assert_int_equal(tu_commit_shard(env.store, &l, T0 + 300), 2); /* the rest of shard 1 */
    assert_int_equal(dq_store_renew(env.store, l.shard, 1, "A", T0, 1000), DQ_STORE_STALE);
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(tu_commit_shard(env.store, &l, T0 + 400), 2);
    assert_int_equal(dq_store_job_status(env.store, job, T0 + 1000, 60000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_DONE);
    assert_int_equal(st.requests_done, 3);
    assert_int_equal(st.requests_running + st.requests_queued + st.requests_failed, 0);
    assert_int_equal(st.images_committed, 6);
    assert_true(st.eta_s == 0.0);
    assert_int_equal(tu_count_events(env.store, job, "done"), 3); /* 2 shards + the job */
    assert_int_equal(tu_count_events(env.store, job, "commit"), 6);
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 0);
    tu_env_end(&env);
}

static void test_exactly_once_and_batches(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "j", 0, 4, 2, 2, false, T0);
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    dq_result_t b[6] = {
        {.job = job, .line = 1, .image = 0, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 1},
        {.job = job, .line = 1, .image = 0, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 1},
        {.job = job, .line = 1, .image = 1, .attempt = 2, .path = "/p", .sha256 = SHA_A, .size = 1},
        {.job = job, .line = 9, .image = 0, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 1},
        {.job = job, .line = 2, .image = 2, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 1},
        {.job = job, .line = 2, .image = 1, .attempt = 1, .path = "/p", .sha256 = "abc", .size = 1},
    };
    assert_int_equal(dq_store_commit_results(env.store, b, 6, T0), DQ_STORE_OK);
    assert_int_equal(b[0].rc, DQ_STORE_OK);
    assert_int_equal(b[1].rc, DQ_STORE_DUPLICATE);
    assert_int_equal(b[2].rc, DQ_STORE_STALE);
    assert_int_equal(b[3].rc, DQ_STORE_NOT_FOUND);
    assert_int_equal(b[4].rc, DQ_STORE_INVALID);
    assert_int_equal(b[5].rc, DQ_STORE_INVALID);
    /* Again, one by one: a second copy is acknowledged and not counted. */
    assert_int_equal(dq_store_commit_result(env.store, &b[0], T0), DQ_STORE_DUPLICATE);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.images_committed, 1);
    assert_int_equal(tu_commit_shard(env.store, &l, T0), 3);
    assert_int_equal(tu_commit_shard(env.store, &l, T0), 0); /* all duplicates now */
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.images_committed, 4);
    assert_int_equal(st.state, DQ_STORE_JOB_DONE);
    assert_int_equal(tu_count_events(env.store, job, "commit"), 4);
    assert_int_equal(tu_count_events(env.store, job, "duplicate"), 7);
    tu_env_end(&env);
}

typedef struct {
    int n;
    int64_t line[8];
    char id[8][16];
    uint64_t seed[8];
    int n_files[8];
    char path0[8][32];
    int image1[8];
} s_manifest_t;

static int s_manifest_row(void *arg, const dq_manifest_row_t *row) {
    s_manifest_t *m = arg;
    int i = m->n++;
    m->line[i] = row->line;
    snprintf(m->id[i], sizeof m->id[i], "%s", row->id ? row->id : "(null)");
    m->seed[i] = row->seed;
    m->n_files[i] = row->n_files;
    snprintf(m->path0[i], sizeof m->path0[i], "%s", row->n_files ? row->paths[0] : "");
    m->image1[i] = row->n_files > 1 ? row->images[1] : -1;
    return 0;
}

static void test_manifest_rows(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "m", .model = "sd15", .out_dir = "/o", .shard_size = 8};
    int64_t job;
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    dq_store_request_t q[3] = {tu_request(1, 2, 512), tu_request(2, 2, 512), tu_request(3, 2, 512)};
    q[0].json = q[1].json = q[2].json = "{}";
    q[1].id = "cat";
    q[2].seed = UINT64_MAX; /* seeds keep all 64 bits */
    assert_int_equal(dq_store_job_add(env.store, job, q, 3), DQ_STORE_OK);
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_OK);
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    dq_result_t r = {.job = job,
                     .line = 2,
                     .image = 1,
                     .attempt = 1,
                     .path = "/o/cat-1.png",
                     .sha256 = SHA_A,
                     .size = 5};
    assert_int_equal(dq_store_commit_result(env.store, &r, T0), DQ_STORE_OK);
    /* Images by state are exact (2 images per request): 6 in the one leased shard, 1 done. */
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.images_committed, 1);
    assert_int_equal(st.images_running, 5);
    assert_int_equal(st.images_queued, 0);
    r.image = 0;
    r.path = "/o/cat-0.png";
    assert_int_equal(dq_store_commit_result(env.store, &r, T0), DQ_STORE_OK);
    s_manifest_t m = {0};
    assert_int_equal(dq_store_manifest(env.store, job, s_manifest_row, &m), DQ_STORE_OK);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.line[0], 1);
    assert_string_equal(m.id[0], "(null)");
    assert_int_equal(m.n_files[0], 0);
    assert_string_equal(m.id[1], "cat");
    assert_int_equal(m.n_files[1], 2);
    assert_string_equal(m.path0[1], "/o/cat-0.png"); /* image order, not commit order */
    assert_int_equal(m.image1[1], 1);
    assert_int_equal(m.seed[1], 14);
    assert_true(m.seed[2] == UINT64_MAX);
    assert_int_equal(dq_store_manifest(env.store, 99, s_manifest_row, &m), DQ_STORE_NOT_FOUND);
    tu_env_end(&env);
}

static void test_cancel(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "c", 0, 1, 3, 1, false, T0);
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(dq_store_cancel(env.store, job, T0 + 5), DQ_STORE_OK);
    assert_int_equal(dq_store_renew(env.store, l.shard, l.attempt, "A", T0, 1000), DQ_STORE_STALE);
    dq_result_t r = {
        .job = job, .line = 1, .image = 0, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 1};
    assert_int_equal(dq_store_commit_result(env.store, &r, T0), DQ_STORE_STALE);
    assert_non_null(strstr(dq_store_errmsg(env.store), "shard not leased"));
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 0);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_CANCELLED);
    assert_int_equal(st.requests_cancelled, 3);
    assert_int_equal(dq_store_cancel(env.store, job, T0), DQ_STORE_INVALID);
    assert_non_null(strstr(dq_store_errmsg(env.store), "is cancelled"));
    assert_int_equal(dq_store_retry(env.store, job, T0, NULL), DQ_STORE_INVALID);
    assert_int_equal(dq_store_pause(env.store, job, T0), DQ_STORE_INVALID);
    assert_int_equal(dq_store_cancel(env.store, 42, T0), DQ_STORE_NOT_FOUND);
    assert_int_equal(tu_count_events(env.store, job, "cancel"), 1);
    tu_env_end(&env);
}

static void test_pause_and_resume(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "p", 0, 1, 2, 1, false, T0);
    dq_lease_t l, l2;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(dq_store_pause(env.store, job, T0), DQ_STORE_OK);
    assert_int_equal(dq_store_pause(env.store, job, T0), DQ_STORE_INVALID);
    assert_int_equal(tu_lease1(env.store, "B", T0, &l2), 0); /* no new leases */
    /* The running shard goes on: renew and commit are accepted. */
    assert_int_equal(dq_store_renew(env.store, l.shard, l.attempt, "A", T0 + 10, 1000),
                     DQ_STORE_OK);
    assert_int_equal(tu_commit_shard(env.store, &l, T0 + 20), 1);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_PAUSED);
    assert_true(st.eta_s < 0.0);
    assert_int_equal(dq_store_resume(env.store, job, T0), DQ_STORE_OK);
    assert_int_equal(dq_store_resume(env.store, job, T0), DQ_STORE_INVALID);
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_RUNNING);
    assert_int_equal(tu_lease1(env.store, "B", T0, &l2), 1);
    assert_int_equal(tu_count_events(env.store, job, "pause"), 1);
    assert_int_equal(tu_count_events(env.store, job, "resume"), 1);
    tu_env_end(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_schema_version),
        cmocka_unit_test(test_upgrade_from_v1_rewrites_requests),
        cmocka_unit_test(test_output_names),
        cmocka_unit_test(test_out_dir_named_by_job_id),
        cmocka_unit_test(test_submit_splits_into_shards),
        cmocka_unit_test(test_submit_rejects_bad_pieces_whole),
        cmocka_unit_test(test_abort_and_startup_discard_staging),
        cmocka_unit_test(test_commit_finishes_shard_and_job),
        cmocka_unit_test(test_exactly_once_and_batches),
        cmocka_unit_test(test_manifest_rows),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_pause_and_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
