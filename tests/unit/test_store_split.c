/* tests/unit/test_store_split.c: shards cut to the leasing node's batch (READY bimg): what is
 * leased, what is queued anew, counters, attempt bookkeeping and fencing across a split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/test_store_util.h"

#define LEASE_MS 30000

/* Leases one shard to a node that renders max_images per batch (0: an older node that did not
 * say). Returns how many were leased (0 or 1). */
static int s_lease(dq_store_t *store, const char *name, int max_images, int64_t now,
                   dq_lease_t *out) {
    const char *models[1] = {"sd15"};
    dq_store_node_t node = {
        .name = name, .models = models, .n_models = 1, .max_images = max_images};
    int n = -1;
    dq_store_rc_t rc = dq_store_lease_node(store, &node, 1, now, LEASE_MS, out, &n);
    if (rc) fail_msg("lease: %s", dq_store_errmsg(store));
    return n;
}

/* A shard's lines in order, as the ASSIGN payload reads them. */
typedef struct {
    int64_t lines[64];
    int n, images;
} s_lines_t;

static int s_line(void *arg, const dq_store_request_t *req) {
    s_lines_t *l = arg;
    if (l->n < 64) l->lines[l->n++] = req->line;
    l->images += req->num_images;
    return 0;
}

static s_lines_t s_shard_lines(dq_store_t *store, int64_t shard) {
    s_lines_t l = {{0}, 0, 0};
    assert_int_equal(dq_store_shard_requests(store, shard, s_line, &l), DQ_STORE_OK);
    return l;
}

/* One integer from SQL over a second connection (what a restarted broker would read). */
static int64_t s_sql_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

/* Every counter the triggers and the split keep equals a recount from the rows. */
static void s_check_counters(const tu_env_t *env) {
    static const char *const bad[] = {
        /* shards whose sizes or progress disagree with their requests */
        "SELECT count(*) FROM shards s WHERE n_requests <>"
        " (SELECT count(*) FROM requests r WHERE r.shard = s.id) OR n_images <>"
        " (SELECT coalesce(sum(num_images), 0) FROM requests r WHERE r.shard = s.id)"
        " OR requests_done <> (SELECT count(*) FROM requests r WHERE r.shard = s.id"
        "  AND r.images_committed = r.num_images)"
        " OR images_committed <> (SELECT coalesce(sum(images_committed), 0) FROM requests r"
        "  WHERE r.shard = s.id)",
        /* jobs whose shard counts disagree with their shards */
        "SELECT count(*) FROM jobs j WHERE"
        " n_shards <> (SELECT count(*) FROM shards s WHERE s.job = j.id) OR"
        " shards_queued <> (SELECT count(*) FROM shards s WHERE s.job = j.id"
        "  AND s.state = 'queued') OR"
        " shards_leased <> (SELECT count(*) FROM shards s WHERE s.job = j.id"
        "  AND s.state = 'leased') OR"
        " shards_done <> (SELECT count(*) FROM shards s WHERE s.job = j.id AND s.state = 'done')"
        " OR n_images <> (SELECT sum(n_images) FROM shards s WHERE s.job = j.id)"
        " OR n_requests <> (SELECT sum(n_requests) FROM shards s WHERE s.job = j.id)",
        /* empty shards */
        "SELECT count(*) FROM shards WHERE n_requests = 0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (s_sql_int(env->path, bad[i]) != 0) fail_msg("counters off: %s", bad[i]);
}

static void test_shard_of_16_to_a_batch_of_4(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "s", 0, 16, 16, 1, false, T0);
    assert_int_equal(s_sql_int(env.path, "SELECT n_shards FROM jobs"), 1);
    dq_lease_t a;
    assert_int_equal(s_lease(env.store, "A", 4, T0, &a), 1);
    assert_int_equal(a.n_requests, 4);
    assert_int_equal(a.n_images, 4);
    assert_int_equal(a.attempt, 1);
    assert_true(a.split_shard != 0 && a.split_shard < a.shard); /* the rest keeps the old id */
    s_lines_t l = s_shard_lines(env.store, a.shard);
    assert_int_equal(l.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(l.lines[i], i + 1);
    l = s_shard_lines(env.store, a.split_shard);
    assert_int_equal(l.n, 12);
    assert_int_equal(l.lines[0], 5);
    assert_int_equal(l.lines[11], 16);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.n_shards, 2);
    assert_int_equal(st.n_images, 16);
    assert_int_equal(st.images_running, 4);
    assert_int_equal(st.images_queued, 12);
    assert_int_equal(st.state, DQ_STORE_JOB_RUNNING);
    s_check_counters(&env);
    /* The rest stays queued under the old id, with the same key and attempt as the new leased
     * part; the next lease cuts it again. */
    assert_int_equal(s_sql_int(env.path, "SELECT count(*) FROM shards a JOIN shards b"
                                         " ON a.id < b.id AND a.job = b.job AND a.width = b.width"
                                         " AND a.height = b.height AND a.steps = b.steps AND"
                                         " a.scheduler = b.scheduler AND a.state = 'queued'"
                                         " AND a.attempt = 1 AND a.attempts_used = 0"
                                         " AND b.state = 'leased' AND b.attempt = 1"),
                     1);
    dq_lease_t b;
    assert_int_equal(s_lease(env.store, "B", 5, T0, &b), 1);
    assert_int_equal(b.split_shard, a.split_shard);
    assert_int_equal(b.n_requests, 5);
    assert_int_equal(s_shard_lines(env.store, b.shard).lines[0], 5);
    s_check_counters(&env);
    /* Everything leased from here on is at most 4 images, and the job finishes exactly. */
    int64_t now = T0;
    assert_int_equal(tu_commit_shard(env.store, &a, now), 4);
    assert_int_equal(tu_commit_shard(env.store, &b, now), 5);
    dq_lease_t c;
    int leases = 2;
    int64_t next_line = 10; /* the job goes in line order, however its shards are cut */
    while (s_lease(env.store, "A", 4, ++now, &c) == 1) {
        assert_true(c.n_images <= 4);
        s_lines_t got = s_shard_lines(env.store, c.shard);
        assert_int_equal(got.lines[0], next_line);
        next_line = got.lines[got.n - 1] + 1;
        assert_int_equal(tu_commit_shard(env.store, &c, now), c.n_images);
        leases++;
    }
    assert_int_equal(leases, 4); /* 4 + 5 + 4 + 3 */
    assert_int_equal(dq_store_job_status(env.store, job, now, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_DONE);
    assert_int_equal(st.images_committed, 16);
    assert_int_equal(st.n_shards, 4);
    s_check_counters(&env);
    /* The assign events say what each node got. */
    assert_int_equal(tu_count_events(env.store, job, "assign"), 4);
    assert_int_equal(s_sql_int(env.path, "SELECT count(*) FROM events WHERE kind = 'assign' AND"
                                         " detail = 'requests=4 images=4 split_from=1"
                                         " left_requests=12 left_images=12' AND node = 'A'"
                                         " AND shard = 2"),
                     1);
    char report[2048];
    assert_int_equal(dq_store_check_plans(env.store, report, sizeof report), 0);
    tu_env_end(&env);
}

/* Cutting keeps a job in line order: the rest of a shard is leased before the job's next shard
 * (with the rest in a new shard, every shard's second half would wait for the end of the job). */
static void test_cut_job_goes_in_line_order(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    tu_job(env.store, "order", 0, 16, 48, 1, false, T0); /* shards of lines 1-16, 17-32, 33-48 */
    dq_lease_t c;
    int64_t next_line = 1, now = T0;
    int leases = 0;
    while (s_lease(env.store, leases % 2 ? "A" : "B", 6, ++now, &c) == 1) {
        s_lines_t got = s_shard_lines(env.store, c.shard);
        assert_int_equal(got.lines[0], next_line);
        next_line = got.lines[got.n - 1] + 1;
        leases++;
    }
    assert_int_equal(next_line, 49);
    assert_int_equal(leases, 9); /* 6 + 6 + 4 per shard of 16 */
    s_check_counters(&env);
    tu_env_end(&env);
}

static void test_whole_requests_only(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    /* 4 requests of 3 images against a batch of 4: one request per shard. */
    int64_t job = tu_job(env.store, "three", 0, 16, 4, 3, false, T0);
    dq_lease_t a;
    assert_int_equal(s_lease(env.store, "A", 4, T0, &a), 1);
    assert_int_equal(a.n_requests, 1);
    assert_int_equal(a.n_images, 3);
    s_lines_t rest = s_shard_lines(env.store, a.split_shard);
    assert_int_equal(rest.n, 3);
    assert_int_equal(rest.images, 9);
    /* A batch of 6 takes two of them. */
    dq_lease_t b;
    assert_int_equal(s_lease(env.store, "B", 6, T0, &b), 1);
    assert_int_equal(b.n_requests, 2);
    assert_int_equal(b.n_images, 6);
    s_check_counters(&env);
    (void)job;
    tu_env_end(&env);

    /* A single request bigger than the batch is leased whole, never split. */
    tu_env_begin(&env, NULL);
    job = tu_job(env.store, "big", 0, 16, 1, 6, false, T0);
    assert_int_equal(s_lease(env.store, "A", 4, T0, &a), 1);
    assert_int_equal(a.n_requests, 1);
    assert_int_equal(a.n_images, 6);
    assert_int_equal(a.split_shard, 0);
    assert_int_equal(s_sql_int(env.path, "SELECT n_shards FROM jobs"), 1);
    tu_env_end(&env);

    /* A big request first, small ones after: the big one alone, the rest queued. */
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "mixed", .model = "sd15", .out_dir = "/out", .shard_size = 16};
    assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
    static const int images[] = {6, 1, 1, 2};
    for (int i = 0; i < 4; i++) {
        dq_store_request_t q = tu_request(i + 1, images[i], 512);
        assert_int_equal(dq_store_job_add(env.store, job, &q, 1), DQ_STORE_OK);
    }
    assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_OK);
    assert_int_equal(s_lease(env.store, "A", 4, T0, &a), 1);
    assert_int_equal(a.n_requests, 1);
    assert_int_equal(a.n_images, 6);
    assert_int_equal(s_shard_lines(env.store, a.split_shard).images, 4);
    /* ... and the rest, 4 images, fits a batch of 4 whole. */
    assert_int_equal(s_lease(env.store, "A", 4, T0, &b), 1);
    assert_int_equal(b.shard, a.split_shard);
    assert_int_equal(b.n_requests, 3);
    assert_int_equal(b.split_shard, 0);
    s_check_counters(&env);
    tu_env_end(&env);
}

static void test_older_node_gets_the_whole_shard(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    tu_job(env.store, "old", 0, 16, 16, 1, false, T0);
    tu_job(env.store, "old2", 0, 16, 16, 1, false, T0);
    dq_lease_t a;
    assert_int_equal(s_lease(env.store, "A", 0, T0, &a), 1); /* READY without bimg */
    assert_int_equal(a.n_requests, 16);
    assert_int_equal(a.split_shard, 0);
    assert_int_equal(tu_lease1(env.store, "B", T0, &a), 1); /* dq_store_lease: no node info */
    assert_int_equal(a.n_requests, 16);
    assert_int_equal(s_sql_int(env.path, "SELECT count(*) FROM shards"), 2);
    const char *models[1] = {"sd15"};
    dq_store_node_t bad = {.name = "C", .models = models, .n_models = 1, .max_images = -1};
    int n = -1;
    assert_int_equal(dq_store_lease_node(env.store, &bad, 1, T0, LEASE_MS, &a, &n),
                     DQ_STORE_INVALID);
    assert_int_equal(n, 0);
    tu_env_end(&env);
}

/* A shard requeued after an attempt is split with that attempt's bookkeeping: the attempt before
 * the split stays fenced off from both parts, the part split off fails after the same number of
 * leases in all, and what was committed before counts where its request went. */
static void test_split_keeps_attempts_and_fencing(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL); /* max_attempts 3 */
    int64_t job = tu_job(env.store, "att", 0, 16, 8, 1, false, T0);
    dq_lease_t old;
    assert_int_equal(s_lease(env.store, "OLD", 0, T0, &old), 1);
    assert_int_equal(old.n_requests, 8);
    /* Attempt 1 commits lines 1, 2 and 7, then its lease runs out. */
    int64_t lines[] = {1, 2, 7};
    for (int i = 0; i < 3; i++) {
        dq_result_t r = {.job = job, .line = lines[i], .attempt = 1, .path = "/p",
                         .sha256 = SHA_A, .size = 1};
        assert_int_equal(dq_store_commit_result(env.store, &r, T0 + 1), DQ_STORE_OK);
    }
    int n = 0;
    int64_t now = T0 + LEASE_MS;
    assert_int_equal(dq_store_expire(env.store, now, &n), DQ_STORE_OK);
    assert_int_equal(n, 1);
    dq_lease_t a;
    assert_int_equal(s_lease(env.store, "A", 4, now, &a), 1);
    assert_int_equal(a.split_shard, old.shard); /* cut from it; it keeps the rest */
    assert_int_equal(a.attempt, 2);
    assert_int_equal(a.n_requests, 4);
    assert_true(a.split_shard != 0);
    assert_int_equal(s_sql_int(env.path, "SELECT attempt * 10 + attempts_used FROM shards"
                                         " WHERE state = 'queued'"),
                     21);
    s_check_counters(&env); /* lines 1, 2 done in the leased part, line 7 in the new one */
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, now, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.images_running, 2);
    assert_int_equal(st.images_queued, 3);
    /* The old attempt's late results are refused in both parts. */
    dq_result_t late = {.job = job, .line = 3, .attempt = 1, .path = "/p", .sha256 = SHA_A,
                        .size = 1};
    assert_int_equal(dq_store_commit_result(env.store, &late, now), DQ_STORE_STALE);
    late.line = 6;
    assert_int_equal(dq_store_commit_result(env.store, &late, now), DQ_STORE_STALE);
    /* The new part: two more leases (attempts 2 and 3), then it fails. */
    dq_lease_t b;
    assert_int_equal(s_lease(env.store, "B", 4, now, &b), 1);
    assert_int_equal(b.shard, a.split_shard);
    assert_int_equal(b.attempt, 2);
    assert_int_equal(b.n_requests, 4);
    assert_int_equal(b.split_shard, 0);
    late.line = 6;
    assert_int_equal(dq_store_commit_result(env.store, &late, now), DQ_STORE_STALE);
    now += LEASE_MS;
    assert_int_equal(dq_store_expire(env.store, now, &n), DQ_STORE_OK);
    assert_int_equal(n, 2);
    /* Both parts are queued again with attempt 3; lease them and let them expire once more. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s_lease(env.store, "C", 4, now, &b), 1);
        assert_int_equal(b.attempt, 3);
        assert_int_equal(b.split_shard, 0);
    }
    now += LEASE_MS;
    assert_int_equal(dq_store_expire(env.store, now, &n), DQ_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(s_sql_int(env.path, "SELECT count(*) FROM shards WHERE state = 'failed'"),
                     2);
    assert_int_equal(dq_store_job_status(env.store, job, now, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_FAILED);
    assert_int_equal(st.images_committed, 3);
    assert_int_equal(st.images_failed, 5);
    s_check_counters(&env);
    tu_env_end(&env);
}

/* Only queued shards are cut: a leased shard is never split under its node. */
static void test_leased_shards_stay_whole(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    tu_job(env.store, "l", 0, 16, 16, 1, false, T0);
    dq_lease_t a, b;
    assert_int_equal(s_lease(env.store, "OLD", 0, T0, &a), 1);
    assert_int_equal(s_lease(env.store, "A", 4, T0, &b), 0); /* nothing queued to cut */
    assert_int_equal(s_shard_lines(env.store, a.shard).n, 16);
    assert_int_equal(s_sql_int(env.path, "SELECT count(*) FROM shards"), 1);
    tu_env_end(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_of_16_to_a_batch_of_4),
        cmocka_unit_test(test_cut_job_goes_in_line_order),
        cmocka_unit_test(test_whole_requests_only),
        cmocka_unit_test(test_older_node_gets_the_whole_shard),
        cmocka_unit_test(test_split_keeps_attempts_and_fencing),
        cmocka_unit_test(test_leased_shards_stay_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
