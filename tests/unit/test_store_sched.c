/* tests/unit/test_store_sched.c: leases: order, fair share, fencing, expiry, failure, restart,
 * lost ASSIGNs. */
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

static void test_fencing_refuses_older_attempts(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "f", 0, 1, 1, 2, false, T0);
    dq_lease_t a, b;
    assert_int_equal(tu_lease1(env.store, "A", T0, &a), 1);
    assert_int_equal(a.attempt, 1);
    assert_int_equal(a.lease_expiry, T0 + LEASE_MS);
    assert_int_equal(dq_store_renew(env.store, a.shard, 1, "A", T0 + 1000, LEASE_MS), DQ_STORE_OK);
    assert_int_equal(dq_store_renew(env.store, a.shard, 1, "B", T0 + 1000, LEASE_MS),
                     DQ_STORE_STALE);
    assert_int_equal(dq_store_renew(env.store, a.shard, 2, "A", T0 + 1000, LEASE_MS),
                     DQ_STORE_STALE);
    assert_int_equal(dq_store_renew(env.store, 999, 1, "A", T0, LEASE_MS), DQ_STORE_NOT_FOUND);
    char long_node[300];
    memset(long_node, 'n', sizeof long_node - 1);
    long_node[sizeof long_node - 1] = '\0';
    int n_long = -1;
    assert_int_equal(dq_store_lease(env.store, long_node, 1, T0, LEASE_MS, &b, &n_long),
                     DQ_STORE_INVALID);
    assert_int_equal(n_long, 0);
    assert_non_null(strstr(dq_store_errmsg(env.store), "1..255 bytes"));
    dq_result_t r = {
        .job = job, .line = 1, .image = 0, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 1};
    assert_int_equal(dq_store_commit_result(env.store, &r, T0 + 2000), DQ_STORE_OK);
    /* The renewed lease runs to T0+31000: nothing expires before, attempt 2 after. */
    int n = -1;
    assert_int_equal(dq_store_expire(env.store, T0 + 1000 + LEASE_MS - 1, &n), DQ_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dq_store_expire(env.store, T0 + 1000 + LEASE_MS, &n), DQ_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dq_store_renew(env.store, a.shard, 1, "A", T0 + 40000, LEASE_MS),
                     DQ_STORE_STALE);
    assert_non_null(strstr(dq_store_errmsg(env.store), "not leased to node A"));
    assert_int_equal(tu_lease1(env.store, "B", T0 + 40000, &b), 1);
    assert_int_equal(b.shard, a.shard);
    assert_int_equal(b.attempt, 2);
    /* Old attempt: the image it already committed is a duplicate; a new one is refused. */
    assert_int_equal(dq_store_commit_result(env.store, &r, T0 + 41000), DQ_STORE_DUPLICATE);
    r.image = 1;
    assert_int_equal(dq_store_commit_result(env.store, &r, T0 + 41000), DQ_STORE_STALE);
    assert_int_equal(dq_store_fail(env.store, a.shard, 1, "A", "internal", "x", T0 + 41000),
                     DQ_STORE_STALE);
    r.attempt = 2;
    assert_int_equal(dq_store_commit_result(env.store, &r, T0 + 42000), DQ_STORE_OK);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0 + 42000, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_DONE);
    assert_int_equal(st.images_committed, 2);
    tu_env_end(&env);
}

static void test_expiry_up_to_max_attempts(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL); /* max_attempts 3 */
    int64_t job = tu_job(env.store, "e", 0, 1, 1, 1, false, T0);
    dq_lease_t l;
    int64_t now = T0;
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(tu_lease1(env.store, "A", now, &l), 1);
        assert_int_equal(l.attempt, attempt);
        now += LEASE_MS;
        int n = 0;
        assert_int_equal(dq_store_expire(env.store, now, &n), DQ_STORE_OK);
        assert_int_equal(n, 1);
    }
    assert_int_equal(tu_lease1(env.store, "A", now, &l), 0);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, now, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_FAILED);
    assert_int_equal(st.requests_failed, 1);
    assert_int_equal(tu_count_events(env.store, job, "expire"), 3);
    assert_int_equal(tu_count_events(env.store, job, "fail"), 1);
    /* retry: fresh attempts, the next attempt number, the job runs again. */
    int n = 0;
    assert_int_equal(dq_store_retry(env.store, job, now, &n), DQ_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dq_store_job_status(env.store, job, now, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_RUNNING);
    assert_int_equal(st.requests_queued, 1);
    for (int attempt = 4; attempt <= 6; attempt++) {
        assert_int_equal(tu_lease1(env.store, "A", now, &l), 1);
        assert_int_equal(l.attempt, attempt);
        if (attempt == 6) break;
        now += LEASE_MS;
        assert_int_equal(dq_store_expire(env.store, now, NULL), DQ_STORE_OK);
    }
    assert_int_equal(tu_commit_shard(env.store, &l, now), 1);
    assert_int_equal(dq_store_job_status(env.store, job, now, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_DONE);
    assert_int_equal(dq_store_retry(env.store, job, now, NULL), DQ_STORE_INVALID);
    tu_env_end(&env);
}

static void test_failures_block_a_node(void **state) {
    (void)state;
    tu_env_t env;
    dq_store_params_t p;
    dq_store_params_init(&p);
    p.max_attempts = 5;
    tu_env_begin(&env, &p);
    int64_t job = tu_job(env.store, "b", 0, 1, 2, 1, false, T0);
    int64_t other = tu_job(env.store, "o", 0, 1, 1, 1, false, T0);
    dq_lease_t l1, l2, l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l1), 1);
    assert_int_equal(l1.job, job);
    assert_int_equal(dq_store_fail(env.store, l1.shard, 1, "A", "oom", "CUDA out of memory", T0),
                     DQ_STORE_OK);
    assert_false(dq_store_node_blocked(env.store, job, "A"));
    /* Fair share sends A to the other job first (job has 0 leased, other 0: FIFO -> job). */
    assert_int_equal(tu_lease1(env.store, "A", T0, &l2), 1);
    assert_int_equal(l2.job, job);
    assert_true(l2.shard != l1.shard); /* prefers the shard it has not failed */
    assert_int_equal(dq_store_fail(env.store, l2.shard, 1, "A", "model", "bad weights", T0),
                     DQ_STORE_OK);
    assert_true(dq_store_node_blocked(env.store, job, "A"));
    assert_int_equal(tu_count_events(env.store, job, "block"), 1);
    /* A gets only the other job now; B gets job's shards with attempt 2. */
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(l.job, other);
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 0);
    assert_int_equal(tu_lease1(env.store, "B", T0, &l), 1);
    assert_int_equal(l.job, job);
    assert_int_equal(l.shard, l1.shard);
    assert_int_equal(l.attempt, 2);
    /* retry clears the blocklist. */
    assert_int_equal(dq_store_retry(env.store, job, T0, NULL), DQ_STORE_OK);
    assert_false(dq_store_node_blocked(env.store, job, "A"));
    assert_int_equal(dq_store_fail(env.store, l.shard, 2, "B", "", "x", T0), DQ_STORE_INVALID);
    tu_env_end(&env);
}

static void test_fail_at_max_attempts_keeps_error(void **state) {
    (void)state;
    tu_env_t env;
    dq_store_params_t p;
    dq_store_params_init(&p);
    p.max_attempts = 2;
    p.block_after_failures = 10;
    tu_env_begin(&env, &p);
    int64_t job = tu_job(env.store, "x", 0, 1, 1, 1, false, T0);
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(dq_store_fail(env.store, l.shard, 1, "A", "internal", "first", T0), 0);
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(l.attempt, 2);
    assert_int_equal(dq_store_fail(env.store, l.shard, 2, "A", "oom", "second", T0), 0);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_FAILED);
    tu_env_end(&env);
}

static void test_priority_fifo_and_fair_share(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t a = tu_job(env.store, "a", 0, 1, 4, 1, false, T0);
    int64_t b = tu_job(env.store, "b", 0, 1, 4, 1, false, T0 + 1);
    int64_t c = tu_job(env.store, "c", 5, 1, 3, 1, false, T0 + 2);
    dq_lease_t l[16];
    int n = 0;
    assert_int_equal(dq_store_lease(env.store, "N", 7, T0, LEASE_MS, l, &n), DQ_STORE_OK);
    assert_int_equal(n, 7);
    int64_t want[7] = {c, c, c, a, b, a, b}; /* priority, then fewest leased, then oldest */
    for (int i = 0; i < 7; i++)
        assert_int_equal(l[i].job, want[i]);
    for (int i = 0; i < 3; i++)
        assert_true(l[i].shard < l[i + 1].shard || i == 2); /* FIFO */
    /* a finishes one shard: it now has fewer leased shards than b and goes first. */
    assert_int_equal(tu_commit_shard(env.store, &l[3], T0), 1);
    assert_int_equal(tu_lease1(env.store, "N", T0, &l[8]), 1);
    assert_int_equal(l[8].job, a);
    /* A higher priority job submitted later jumps ahead. */
    int64_t d = tu_job(env.store, "d", 9, 1, 1, 1, false, T0 + 3);
    assert_int_equal(tu_lease1(env.store, "N", T0, &l[9]), 1);
    assert_int_equal(l[9].job, d);
    tu_env_end(&env);
}

static void test_prefers_a_different_node(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    tu_job(env.store, "j", 0, 1, 2, 1, false, T0);
    dq_lease_t l1, l2, l3;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l1), 1);
    assert_int_equal(dq_store_expire(env.store, T0 + LEASE_MS, NULL), DQ_STORE_OK);
    /* A attempted shard 1: it gets shard 2 though shard 1 is older. */
    assert_int_equal(tu_lease1(env.store, "A", T0 + LEASE_MS, &l2), 1);
    assert_true(l2.shard != l1.shard);
    /* Only shard 1 is left: A may still take it (where possible, not always). */
    assert_int_equal(tu_lease1(env.store, "A", T0 + LEASE_MS, &l3), 1);
    assert_int_equal(l3.shard, l1.shard);
    assert_int_equal(l3.attempt, 2);
    tu_env_end(&env);
}

static void test_node_forget_requeues(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "j", 0, 1, 3, 1, false, T0);
    dq_lease_t l[3];
    int n = 0;
    assert_int_equal(dq_store_lease(env.store, "A", 2, T0, LEASE_MS, l, &n), DQ_STORE_OK);
    assert_int_equal(dq_store_lease(env.store, "B", 1, T0, LEASE_MS, l + 2, &n), DQ_STORE_OK);
    assert_int_equal(dq_store_node_forget(env.store, "A", T0, &n), DQ_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(tu_count_events(env.store, job, "requeue"), 2);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.requests_queued, 2);
    assert_int_equal(st.requests_running, 1);
    assert_int_equal(dq_store_renew(env.store, l[0].shard, 1, "A", T0, LEASE_MS), DQ_STORE_STALE);
    dq_lease_t x;
    assert_int_equal(tu_lease1(env.store, "C", T0, &x), 1);
    assert_int_equal(x.shard, l[0].shard);
    assert_int_equal(x.attempt, 2);
    assert_int_equal(dq_store_node_forget(env.store, "nobody", T0, &n), DQ_STORE_OK);
    assert_int_equal(n, 0);
    tu_env_end(&env);
}

static void test_restart_grace_and_reclaim(void **state) {
    (void)state;
    tu_env_t env;
    dq_store_params_t p;
    dq_store_params_init(&p);
    p.max_attempts = 1; /* a lost lease must not use up the only attempt */
    tu_env_begin(&env, &p);
    int64_t job = tu_job(env.store, "g", 0, 1, 3, 1, false, T0);
    dq_lease_t l[3];
    int n = 0;
    assert_int_equal(dq_store_lease(env.store, "A", 3, T0, LEASE_MS, l, &n), DQ_STORE_OK);
    assert_int_equal(n, 3);
    /* The broker is killed (no close) and restarts 5 s later on the same file. */
    dq_store_t *s2 = tu_reopen(&env, &p);
    int64_t now = T0 + 5000, grace_end = now + 60000;
    assert_int_equal(dq_store_recover(s2, now, now - 1, &n), DQ_STORE_INVALID);
    assert_int_equal(dq_store_recover(s2, now, grace_end, &n), DQ_STORE_OK);
    assert_int_equal(n, 3);
    /* Leases are held through the grace period even past their own expiry. */
    assert_int_equal(dq_store_expire(s2, T0 + LEASE_MS + 1, &n), DQ_STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dq_store_reclaim(s2, "A", l[0].shard, 1, now, 120000), DQ_STORE_OK);
    assert_int_equal(dq_store_reclaim(s2, "A", l[1].shard, 2, now, 120000), DQ_STORE_STALE);
    assert_int_equal(dq_store_reclaim(s2, "B", l[1].shard, 1, now, 120000), DQ_STORE_STALE);
    assert_int_equal(dq_store_renew(s2, l[1].shard, 1, "A", now, 120000), DQ_STORE_OK);
    assert_int_equal(tu_count_events(s2, job, "reclaim"), 1);
    /* Grace over: the unheld shard goes back to the queue (attempt 2, not failed). */
    assert_int_equal(dq_store_expire(s2, grace_end, &n), DQ_STORE_OK);
    assert_int_equal(n, 1);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(s2, job, grace_end, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.requests_queued, 1);
    assert_int_equal(st.requests_running, 2);
    assert_int_equal(st.requests_failed, 0);
    dq_lease_t x;
    assert_int_equal(tu_lease1(s2, "B", grace_end, &x), 1);
    assert_int_equal(x.shard, l[2].shard);
    assert_int_equal(x.attempt, 2);
    assert_int_equal(tu_commit_shard(s2, &l[0], grace_end), 1);
    assert_int_equal(tu_commit_shard(s2, &l[1], grace_end), 1);
    assert_int_equal(tu_commit_shard(s2, &x, grace_end), 1);
    assert_int_equal(dq_store_job_status(s2, job, grace_end, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_DONE);
    dq_store_destroy(&s2);
    tu_env_end(&env);
}

/* One integer or text from the database file, read on a connection of its own. */
static int64_t s_db_int(const char *path, const char *sql, int64_t shard) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, shard);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

typedef struct {
    int64_t shard;
    int requeues, lost_details;
} s_requeue_seen_t;

static int s_on_event(void *arg, const dq_event_t *ev) {
    s_requeue_seen_t *seen = arg;
    if (strcmp(ev->kind, "requeue") != 0 || ev->shard != seen->shard) return 0;
    seen->requeues++;
    seen->lost_details += strstr(ev->detail, "ASSIGN lost") != NULL && strcmp(ev->node, "A") == 0;
    return 0;
}

static void test_lost_assign_costs_no_attempt(void **state) {
    (void)state;
    tu_env_t env;
    dq_store_params_t p;
    dq_store_params_init(&p);
    p.max_attempts = 1; /* a lost ASSIGN must not use up the only attempt */
    tu_env_begin(&env, &p);
    int64_t job = tu_job(env.store, "l", 0, 1, 1, 1, false, T0);
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    assert_int_equal(l.attempt, 1);
    assert_int_equal(dq_store_lease_held(env.store, l.shard, 1, "A"), DQ_STORE_OK);
    assert_int_equal(dq_store_lease_held(env.store, l.shard, 1, "B"), DQ_STORE_STALE);
    assert_int_equal(dq_store_lease_held(env.store, l.shard + 99, 1, "A"), DQ_STORE_NOT_FOUND);
    /* Only the node holding this very attempt can say its ASSIGN was lost. */
    assert_int_equal(dq_store_assign_lost(env.store, l.shard, 2, "A", T0), DQ_STORE_STALE);
    assert_int_equal(dq_store_assign_lost(env.store, l.shard, 1, "B", T0), DQ_STORE_STALE);
    assert_int_equal(dq_store_assign_lost(env.store, l.shard + 99, 1, "A", T0),
                     DQ_STORE_NOT_FOUND);
    assert_int_equal(dq_store_assign_lost(env.store, l.shard, 1, NULL, T0), DQ_STORE_INVALID);
    assert_int_equal(s_db_int(env.path, "SELECT attempts_used FROM shards WHERE id = ?", l.shard),
                     1);
    assert_int_equal(dq_store_assign_lost(env.store, l.shard, 1, "A", T0 + 10), DQ_STORE_OK);
    /* Requeued at once with the next attempt number; the attempt is not counted. */
    assert_int_equal(s_db_int(env.path, "SELECT attempts_used FROM shards WHERE id = ?", l.shard),
                     0);
    assert_int_equal(s_db_int(env.path, "SELECT attempt FROM shards WHERE id = ?", l.shard), 2);
    assert_int_equal(s_db_int(env.path,
                              "SELECT count(*) FROM attempts WHERE shard = ? AND attempt = 1"
                              " AND outcome = 'lost' AND end_ms IS NOT NULL",
                              l.shard),
                     1);
    assert_int_equal(dq_store_lease_held(env.store, l.shard, 1, "A"), DQ_STORE_STALE);
    assert_int_equal(dq_store_renew(env.store, l.shard, 1, "A", T0, LEASE_MS), DQ_STORE_STALE);
    /* A repeated report (the node names a lost ASSIGN in several heartbeats) changes nothing. */
    assert_int_equal(dq_store_assign_lost(env.store, l.shard, 1, "A", T0 + 20), DQ_STORE_STALE);
    s_requeue_seen_t seen = {.shard = l.shard};
    assert_int_equal(dq_store_events(env.store, job, s_on_event, &seen), DQ_STORE_OK);
    assert_int_equal(seen.requeues, 1);
    assert_int_equal(seen.lost_details, 1);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.requests_queued, 1);
    assert_int_equal(st.requests_failed, 0);
    assert_string_equal(st.last_error, ""); /* not the shard's failure */
    /* Lost again and again: still never counted (max_attempts is 1). */
    int64_t now = T0 + 100;
    for (int attempt = 2; attempt <= 4; attempt++, now += 10) {
        assert_int_equal(tu_lease1(env.store, "A", now, &l), 1);
        assert_int_equal(l.attempt, attempt);
        assert_int_equal(dq_store_assign_lost(env.store, l.shard, attempt, "A", now),
                         DQ_STORE_OK);
    }
    assert_int_equal(tu_count_events(env.store, job, "fail"), 0);
    /* The one counted attempt: its lease expires and the shard fails (1 of 1 used). */
    assert_int_equal(tu_lease1(env.store, "A", now, &l), 1);
    assert_int_equal(l.attempt, 5);
    int n = 0;
    assert_int_equal(dq_store_expire(env.store, now + LEASE_MS, &n), DQ_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(dq_store_job_status(env.store, job, now + LEASE_MS, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.state, DQ_STORE_JOB_FAILED);
    assert_non_null(strstr(st.last_error, "lease expired"));
    tu_env_end(&env);
}

static void test_hot_queries_use_indexes(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    /* Exercise every operation so each statement is prepared, then check all plans. */
    int64_t job = tu_job(env.store, "j", 0, 2, 4, 1, true, T0);
    dq_lease_t l[2];
    int n;
    assert_int_equal(dq_store_lease(env.store, "A", 2, T0, LEASE_MS, l, &n), DQ_STORE_OK);
    assert_int_equal(dq_store_renew(env.store, l[0].shard, 1, "A", T0, LEASE_MS), DQ_STORE_OK);
    assert_int_equal(tu_commit_shard(env.store, &l[0], T0), 2);
    dq_result_t r = {
        .job = job, .line = 3, .image = 0, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 1};
    assert_int_equal(dq_store_commit_results(env.store, &r, 1, T0), DQ_STORE_OK);
    assert_int_equal(dq_store_fail(env.store, l[1].shard, 1, "A", "oom", "m", T0), DQ_STORE_OK);
    assert_int_equal(dq_store_lease(env.store, "B", 1, T0, LEASE_MS, l, &n), DQ_STORE_OK);
    assert_int_equal(dq_store_node_forget(env.store, "B", T0, NULL), DQ_STORE_OK);
    assert_int_equal(dq_store_expire(env.store, T0, NULL), DQ_STORE_OK);
    assert_int_equal(dq_store_recover(env.store, T0, T0, NULL), DQ_STORE_OK);
    assert_int_equal(dq_store_reclaim(env.store, "B", 1, 1, T0, LEASE_MS), DQ_STORE_STALE);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(dq_store_pause(env.store, job, T0), DQ_STORE_OK);
    assert_int_equal(dq_store_resume(env.store, job, T0), DQ_STORE_OK);
    assert_int_equal(dq_store_retry(env.store, job, T0, NULL), DQ_STORE_OK);
    assert_int_equal(dq_store_cancel(env.store, job, T0), DQ_STORE_OK);
    char report[4096];
    int bad = dq_store_check_plans(env.store, report, sizeof report);
    if (bad != 0) fail_msg("%d statements scan or sort:\n%s", bad, report);
    tu_env_end(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fencing_refuses_older_attempts),
        cmocka_unit_test(test_expiry_up_to_max_attempts),
        cmocka_unit_test(test_failures_block_a_node),
        cmocka_unit_test(test_fail_at_max_attempts_keeps_error),
        cmocka_unit_test(test_priority_fifo_and_fair_share),
        cmocka_unit_test(test_prefers_a_different_node),
        cmocka_unit_test(test_node_forget_requeues),
        cmocka_unit_test(test_restart_grace_and_reclaim),
        cmocka_unit_test(test_lost_assign_costs_no_attempt),
        cmocka_unit_test(test_hot_queries_use_indexes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
