/* tests/unit/test_store_durable.c: the store survives restarts and I/O faults, and its event
 * log shows every image committed exactly once, each by an attempt that was assigned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/test_store_util.h"

#define LEASE_MS 30000

/* ---- Restart. ---- */

typedef struct {
    int n;
    dq_job_status_t st[8];
} s_jobs_t;

static int s_take_job(void *arg, const dq_job_status_t *st) {
    s_jobs_t *j = arg;
    if (j->n < 8) j->st[j->n++] = *st;
    return 0;
}

static s_jobs_t s_snapshot(dq_store_t *store, int64_t now) {
    s_jobs_t j = {0};
    assert_int_equal(dq_store_job_list(store, now, 60000, s_take_job, &j), DQ_STORE_OK);
    return j;
}

static void s_assert_same(const s_jobs_t *a, const s_jobs_t *b) {
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const dq_job_status_t *x = &a->st[i], *y = &b->st[i];
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->state, y->state);
        assert_int_equal(x->n_requests, y->n_requests);
        assert_int_equal(x->images_committed, y->images_committed);
        assert_int_equal(x->requests_done, y->requests_done);
        assert_int_equal(x->requests_running, y->requests_running);
        assert_int_equal(x->requests_queued, y->requests_queued);
        assert_int_equal(x->requests_failed, y->requests_failed);
        assert_string_equal(x->name, y->name);
    }
}

static void s_make_history(dq_store_t *store, int64_t *jobs) {
    jobs[0] = tu_job(store, "done", 0, 1, 2, 1, false, T0);
    jobs[1] = tu_job(store, "running", 0, 1, 3, 2, true, T0);
    jobs[2] = tu_job(store, "paused", 1, 2, 2, 1, false, T0);
    dq_lease_t l[8];
    int n = 0;
    assert_int_equal(dq_store_lease(store, "A", 8, T0, LEASE_MS, l, &n), DQ_STORE_OK);
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++)
        if (l[i].job == jobs[0]) assert_int_equal(tu_commit_shard(store, &l[i], T0 + 10), 1);
    dq_result_t r = {.job = jobs[1],
                     .line = 2,
                     .image = 1,
                     .attempt = 1,
                     .path = "/p",
                     .sha256 = SHA_A,
                     .size = 3};
    assert_int_equal(dq_store_commit_result(store, &r, T0 + 20), DQ_STORE_OK);
    assert_int_equal(dq_store_pause(store, jobs[2], T0 + 30), DQ_STORE_OK);
}

static int s_count_all(void *arg, const dq_event_t *ev) {
    (void)ev;
    (*(int *)arg)++;
    return 0;
}

static void test_reopen_after_close_and_after_crash(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t jobs[3];
    s_make_history(env.store, jobs);
    s_jobs_t before = s_snapshot(env.store, T0 + 100);
    assert_int_equal(before.n, 3);
    assert_int_equal(before.st[0].state, DQ_STORE_JOB_DONE);
    assert_int_equal(before.st[1].images_committed, 1);
    assert_int_equal(before.st[2].state, DQ_STORE_JOB_PAUSED);
    int events = 0;
    assert_int_equal(dq_store_events(env.store, 0, s_count_all, &events), DQ_STORE_OK);

    /* Clean close, reopen. */
    dq_store_destroy(&env.store);
    env.store = tu_reopen(&env, NULL);
    s_jobs_t after = s_snapshot(env.store, T0 + 100);
    s_assert_same(&before, &after);
    int events2 = 0;
    assert_int_equal(dq_store_events(env.store, 0, s_count_all, &events2), DQ_STORE_OK);
    assert_int_equal(events2, events);

    /* Crash: the first handle is never closed (its WAL is not checkpointed); a new broker
     * opens the same file and sees every committed transaction, leases included. */
    dq_store_t *s2 = tu_reopen(&env, NULL);
    s_jobs_t crash = s_snapshot(s2, T0 + 100);
    s_assert_same(&before, &crash);
    assert_int_equal(dq_store_recover(s2, T0 + 200, T0 + 60000, &events2), DQ_STORE_OK);
    assert_int_equal(events2, 4); /* running: 3 shards, paused: 1 shard leased */
    dq_result_t r = {.job = jobs[1],
                     .line = 2,
                     .image = 1,
                     .attempt = 1,
                     .path = "/p",
                     .sha256 = SHA_A,
                     .size = 3};
    assert_int_equal(dq_store_commit_result(s2, &r, T0 + 300), DQ_STORE_DUPLICATE);
    r.image = 0;
    assert_int_equal(dq_store_commit_result(s2, &r, T0 + 300), DQ_STORE_OK);
    dq_store_destroy(&s2);
    tu_env_end(&env);
}

/* ---- Faults: the nth SQLite step fails; the operation fails whole and can be redone. ---- */

static int s_events(dq_store_t *store) {
    int n = 0;
    assert_int_equal(dq_store_events(store, 0, s_count_all, &n), DQ_STORE_OK);
    return n;
}

static void s_expect_fault(dq_store_t *store, dq_store_rc_t rc) {
    assert_int_equal(rc, DQ_STORE_DB);
    assert_non_null(strstr(dq_store_errmsg(store), "injected fault"));
}

static void test_faults_in_job_creation(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    dq_job_params_t p = {.name = "f", .model = "sd15", .out_dir = "/o", .shard_size = 2};
    dq_store_request_t q[6];
    for (int i = 0; i < 6; i++)
        q[i] = tu_request(i + 1, 1, i < 3 ? 512 : 768);
    for (int i = 0; i < 6; i++)
        q[i].json = "{}";
    int fired = 0;
    for (int nth = 1;; nth++) {
        s_jobs_t before = s_snapshot(env.store, T0);
        int ev = s_events(env.store);
        dq_store_fault_fail_nth(env.store, nth);
        int64_t job = 0;
        int step = 0; /* 0 begin, 1 first piece, 2 second piece, 3 commit, 4 all done */
        dq_store_rc_t rc = dq_store_job_begin(env.store, &p, T0, &job);
        if (!rc) step = 1, rc = dq_store_job_add(env.store, job, q, 3);
        if (!rc) step = 2, rc = dq_store_job_add(env.store, job, q + 3, 3);
        if (!rc) step = 3, rc = dq_store_job_commit(env.store, job, T0);
        if (!rc) step = 4;
        int left = dq_store_fault_fail_nth(env.store, 0);
        if (step == 4) {
            assert_true(left > 0); /* the fault was never reached: all steps covered */
            break;
        }
        fired++;
        s_expect_fault(env.store, rc);
        /* Nothing visible changed: no new job, no event. */
        s_jobs_t after = s_snapshot(env.store, T0);
        s_assert_same(&before, &after);
        assert_int_equal(s_events(env.store), ev);
        /* Still usable: redo the failed step and finish. */
        if (step == 0) assert_int_equal(dq_store_job_begin(env.store, &p, T0, &job), DQ_STORE_OK);
        if (step <= 1) assert_int_equal(dq_store_job_add(env.store, job, q, 3), DQ_STORE_OK);
        if (step <= 2) assert_int_equal(dq_store_job_add(env.store, job, q + 3, 3), DQ_STORE_OK);
        assert_int_equal(dq_store_job_commit(env.store, job, T0), DQ_STORE_OK);
        dq_job_status_t st;
        assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
        assert_int_equal(st.n_requests, 6);
        assert_int_equal(st.n_images, 6);
        assert_int_equal(st.n_shards, 4);
        assert_int_equal(dq_store_cancel(env.store, job, T0), DQ_STORE_OK);
    }
    assert_true(fired > 10);
    tu_env_end(&env);
}

static void test_faults_in_commit_result(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "f", 0, 1, 1, 3, false, T0);
    dq_lease_t l;
    assert_int_equal(tu_lease1(env.store, "A", T0, &l), 1);
    dq_result_t r = {
        .job = job, .line = 1, .image = 0, .attempt = 1, .path = "/p", .sha256 = SHA_A, .size = 3};
    assert_int_equal(dq_store_commit_result(env.store, &r, T0), DQ_STORE_OK);
    /* Single commits of image 1, then a batch with image 2 (which finishes shard and job) and
     * a duplicate of image 0. */
    dq_result_t batch[2] = {r, r};
    batch[0].image = 2;
    int fired = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (int nth = 1;; nth++) {
            s_jobs_t before = s_snapshot(env.store, T0);
            int ev = s_events(env.store);
            dq_store_fault_fail_nth(env.store, nth);
            dq_store_rc_t rc;
            if (phase == 0) {
                r.image = 1;
                rc = dq_store_commit_result(env.store, &r, T0 + 5);
            } else {
                rc = dq_store_commit_results(env.store, batch, 2, T0 + 5);
            }
            int left = dq_store_fault_fail_nth(env.store, 0);
            if (rc == DQ_STORE_OK) {
                assert_true(left > 0);
                break;
            }
            fired++;
            s_expect_fault(env.store, rc);
            if (phase == 1) assert_int_equal(batch[0].rc, DQ_STORE_DB);
            s_jobs_t after = s_snapshot(env.store, T0);
            s_assert_same(&before, &after);
            assert_int_equal(s_events(env.store), ev);
            assert_int_equal(dq_store_renew(env.store, l.shard, 1, "A", T0, LEASE_MS),
                             DQ_STORE_OK); /* the lease is intact */
        }
    }
    assert_int_equal(batch[0].rc, DQ_STORE_OK);
    assert_int_equal(batch[1].rc, DQ_STORE_DUPLICATE);
    dq_job_status_t st;
    assert_int_equal(dq_store_job_status(env.store, job, T0, 1000, &st), DQ_STORE_OK);
    assert_int_equal(st.images_committed, 3);
    assert_int_equal(st.state, DQ_STORE_JOB_DONE);
    assert_true(fired > 10);
    tu_env_end(&env);
}

static void test_faults_in_lease_and_expire(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = tu_job(env.store, "f", 0, 1, 3, 1, false, T0);
    dq_lease_t l[3];
    int n = -1;
    for (int nth = 1;; nth++) {
        dq_store_fault_fail_nth(env.store, nth);
        dq_store_rc_t rc = dq_store_lease(env.store, "A", 3, T0, LEASE_MS, l, &n);
        int left = dq_store_fault_fail_nth(env.store, 0);
        if (rc == DQ_STORE_OK) {
            assert_true(left > 0);
            break;
        }
        s_expect_fault(env.store, rc);
        assert_int_equal(n, 0);
        assert_int_equal(tu_count_events(env.store, job, "assign"), 0);
    }
    assert_int_equal(n, 3);
    for (int nth = 1;; nth++) {
        dq_store_fault_fail_nth(env.store, nth);
        dq_store_rc_t rc = dq_store_expire(env.store, T0 + LEASE_MS, &n);
        int left = dq_store_fault_fail_nth(env.store, 0);
        if (rc == DQ_STORE_OK) {
            assert_true(left > 0);
            break;
        }
        s_expect_fault(env.store, rc);
        assert_int_equal(tu_count_events(env.store, job, "expire"), 0);
        assert_int_equal(dq_store_renew(env.store, l[0].shard, 1, "A", T0, 1), DQ_STORE_OK);
    }
    assert_int_equal(n, 3);
    assert_int_equal(tu_count_events(env.store, job, "expire"), 3);
    tu_env_end(&env);
}

/* ---- Event-log properties under a chaotic schedule. ---- */

typedef struct {
    dq_lease_t lease;
    char node[8];
} s_held_t;

static uint32_t s_rand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

typedef struct {
    int n;
    dq_event_t ev[4096];
    char kind[4096][12];
    char node[4096][8];
} s_log_t;

static int s_log_ev(void *arg, const dq_event_t *ev) {
    s_log_t *g = arg;
    assert_true(g->n < 4096);
    g->ev[g->n] = *ev;
    snprintf(g->kind[g->n], sizeof g->kind[0], "%s", ev->kind);
    snprintf(g->node[g->n], sizeof g->node[0], "%s", ev->node);
    g->n++;
    return 0;
}

static void test_event_log_properties(void **state) {
    (void)state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    enum { JOBS = 2, REQS = 8, IMGS = 2 };
    int64_t jobs[JOBS];
    for (int j = 0; j < JOBS; j++)
        jobs[j] = tu_job(env.store, "p", 0, 2, REQS, IMGS, false, T0);
    static s_held_t held[512];
    int n_held = 0, ok = 0, stale = 0;
    uint32_t seed = 12345;
    int64_t now = T0;
    const char *nodes[3] = {"A", "B", "C"};
    for (int step = 0; step < 3000; step++) {
        uint32_t x = s_rand(&seed) % 100;
        const char *node = nodes[s_rand(&seed) % 3];
        if (x < 20 && n_held < 512) {
            dq_lease_t l;
            if (tu_lease1(env.store, node, now, &l)) {
                held[n_held].lease = l;
                snprintf(held[n_held].node, sizeof held[0].node, "%s", node);
                n_held++;
            }
        } else if (x < 80 && n_held) {
            /* Any held lease, current or long stale, sends an image, maybe twice. */
            s_held_t *h = &held[s_rand(&seed) % (uint32_t)n_held];
            int64_t base = 0;
            int k = (int)(s_rand(&seed) % (uint32_t)(2 * IMGS));
            base = (h->lease.shard - 1) % (REQS / 2) * 2 + 1; /* first line of the shard */
            dq_result_t r = {.job = h->lease.job,
                             .line = base + k / IMGS,
                             .image = k % IMGS,
                             .attempt = h->lease.attempt,
                             .path = "/p",
                             .sha256 = SHA_A,
                             .size = 1};
            dq_store_rc_t rc = dq_store_commit_result(env.store, &r, now);
            assert_true(rc == DQ_STORE_OK || rc == DQ_STORE_DUPLICATE || rc == DQ_STORE_STALE);
            if (rc == DQ_STORE_OK) ok++;
            if (rc == DQ_STORE_STALE) stale++;
        } else if (x < 88) {
            now += (int64_t)(s_rand(&seed) % 20000);
            assert_int_equal(dq_store_expire(env.store, now, NULL), DQ_STORE_OK);
        } else if (x < 94 && n_held) {
            s_held_t *h = &held[s_rand(&seed) % (uint32_t)n_held];
            dq_store_rc_t rc = dq_store_fail(env.store, h->lease.shard, h->lease.attempt, h->node,
                                             "internal", "chaos", now);
            assert_true(rc == DQ_STORE_OK || rc == DQ_STORE_STALE);
        } else if (x < 96) {
            assert_int_equal(dq_store_node_forget(env.store, node, now, NULL), DQ_STORE_OK);
        } else {
            for (int j = 0; j < JOBS; j++) {
                dq_job_status_t st;
                assert_int_equal(dq_store_job_status(env.store, jobs[j], now, 1000, &st), 0);
                if (st.state == DQ_STORE_JOB_FAILED)
                    assert_int_equal(dq_store_retry(env.store, jobs[j], now, NULL), DQ_STORE_OK);
            }
        }
    }
    /* Drain: a fresh well-behaved node finishes whatever is left. */
    for (int round = 0; round < 50; round++) {
        for (int j = 0; j < JOBS; j++) {
            dq_job_status_t st;
            assert_int_equal(dq_store_job_status(env.store, jobs[j], now, 1000, &st), 0);
            if (st.state == DQ_STORE_JOB_FAILED)
                assert_int_equal(dq_store_retry(env.store, jobs[j], now, NULL), DQ_STORE_OK);
        }
        now += 2 * LEASE_MS;
        assert_int_equal(dq_store_expire(env.store, now, NULL), DQ_STORE_OK);
        dq_lease_t l;
        while (tu_lease1(env.store, "Z", now, &l))
            ok += tu_commit_shard(env.store, &l, now);
    }
    for (int j = 0; j < JOBS; j++) {
        dq_job_status_t st;
        assert_int_equal(dq_store_job_status(env.store, jobs[j], now, 1000, &st), 0);
        assert_int_equal(st.state, DQ_STORE_JOB_DONE);
        assert_int_equal(st.images_committed, REQS * IMGS);
    }
    assert_int_equal(ok, JOBS * REQS * IMGS);

    static s_log_t g;
    g.n = 0;
    assert_int_equal(dq_store_events(env.store, 0, s_log_ev, &g), DQ_STORE_OK);
    int commits[JOBS + 1][REQS + 1][IMGS] = {{{0}}};
    int duplicates = 0;
    for (int i = 0; i < g.n; i++) {
        const dq_event_t *e = &g.ev[i];
        if (strcmp(g.kind[i], "duplicate") == 0) duplicates++;
        if (strcmp(g.kind[i], "commit") != 0) continue;
        commits[e->job][e->line][e->image]++;
        /* The attempt was assigned to this node before, and had not ended since. */
        int assigned = 0;
        for (int k = i - 1; k >= 0; k--) {
            const dq_event_t *a = &g.ev[k];
            if (a->shard != e->shard || a->attempt != e->attempt) continue;
            const char *kind = g.kind[k];
            assert_true(strcmp(kind, "expire") && strcmp(kind, "requeue") && strcmp(kind, "fail") &&
                        strcmp(kind, "cancel"));
            if (strcmp(kind, "assign") == 0) {
                assert_string_equal(g.node[k], g.node[i]);
                assigned = 1;
                break;
            }
        }
        assert_true(assigned);
    }
    for (int j = 1; j <= JOBS; j++)
        for (int line = 1; line <= REQS; line++)
            for (int k = 0; k < IMGS; k++)
                assert_int_equal(commits[j][line][k], 1);
    /* The schedule did exercise duplicates, fenced attempts and expiry. */
    assert_true(duplicates > 0);
    assert_true(stale > 0);
    assert_true(tu_count_events(env.store, 0, "expire") > 0);
    tu_env_end(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_after_close_and_after_crash),
        cmocka_unit_test(test_faults_in_job_creation),
        cmocka_unit_test(test_faults_in_commit_result),
        cmocka_unit_test(test_faults_in_lease_and_expire),
        cmocka_unit_test(test_event_log_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
