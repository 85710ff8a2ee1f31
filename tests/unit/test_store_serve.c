/* tests/unit/test_store_serve.c: model-aware leasing and the serving rules (jobs nobody serves,
 * jobs blocked on every node that serves them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tests/unit/test_store_util.h"

#define LEASE_MS    30000
#define UNSERVED_MS 5000

/* A committed job of n one-image requests, one per shard, rendered with `model`. */
static int64_t s_job(dq_store_t *store, const char *model, int n, int64_t now) {
    dq_job_params_t p = {
        .name = model, .model = model, .out_dir = "/out", .priority = 0, .shard_size = 1};
    int64_t job = 0;
    assert_int_equal(dq_store_job_begin(store, &p, now, &job), DQ_STORE_OK);
    for (int i = 1; i <= n; i++) {
        dq_store_request_t q = tu_request(i, 1, 512);
        if (dq_store_job_add(store, job, &q, 1)) fail_msg("add: %s", dq_store_errmsg(store));
    }
    assert_int_equal(dq_store_job_commit(store, job, now), DQ_STORE_OK);
    return job;
}

static int s_lease(dq_store_t *store, const dq_store_node_t *node, int max, int64_t now,
                   dq_lease_t *out) {
    int n = -1;
    dq_store_rc_t rc = dq_store_lease_node(store, node, max, now, LEASE_MS, out, &n);
    if (rc) fail_msg("lease_node: %s", dq_store_errmsg(store));
    return n;
}

static dq_store_job_state_t s_state(dq_store_t *store, int64_t job, dq_job_status_t *st) {
    assert_int_equal(dq_store_job_status(store, job, T0, 1000, st), DQ_STORE_OK);
    return st->state;
}

/* Records the callback's calls. */
typedef struct {
    int calls;
    int64_t job;
    char message[1024];
} s_seen_t;

static void s_on_fail(void *arg, int64_t job, const char *message) {
    s_seen_t *seen = arg;
    seen->calls++;
    seen->job = job;
    snprintf(seen->message, sizeof seen->message, "%s", message);
}

static const char *const s_sd15[] = {"sd15"};
static const char *const s_sd15_and_x[] = {"sd15", "x"};
static const char *const s_x_path[] = {"", "/models/x.safetensors"};
static const char *const s_sd21[] = {"sd21"};

static void test_lease_only_served_models(void **state) {
    (void) state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t j15 = s_job(env.store, "sd15", 2, T0);
    int64_t j21 = s_job(env.store, "sd21", 2, T0 + 1);
    int64_t jx = s_job(env.store, "/models/x.safetensors", 1, T0 + 2);
    dq_store_node_t a = {.name = "A", .models = s_sd15, .n_models = 1};
    dq_store_node_t b = {.name = "B", .models = s_sd15_and_x, .paths = s_x_path, .n_models = 2};
    dq_store_node_t none = {.name = "N", .models = NULL, .n_models = 0};
    dq_lease_t l[8];
    /* A serves sd15 only: both sd15 shards, nothing of the other jobs. */
    assert_int_equal(s_lease(env.store, &a, 8, T0, l), 2);
    assert_int_equal(l[0].job, j15);
    assert_int_equal(l[1].job, j15);
    assert_string_equal(l[0].model, "sd15");
    assert_int_equal(s_lease(env.store, &a, 8, T0, l), 0);
    /* A job naming a model by the path a node was given goes to that node. */
    assert_int_equal(s_lease(env.store, &b, 8, T0, l), 1);
    assert_int_equal(l[0].job, jx);
    assert_string_equal(l[0].model, "/models/x.safetensors");
    assert_int_equal(s_lease(env.store, &none, 8, T0, l), 0);
    assert_true(dq_store_node_serves(&b, "x"));
    assert_true(dq_store_node_serves(&b, "/models/x.safetensors"));
    assert_false(dq_store_node_serves(&b, "")); /* "" paths are no path */
    assert_false(dq_store_node_serves(&a, "sd21"));
    /* The sd21 job waited, untouched; a model-blind lease (old callers) still takes it. */
    dq_job_status_t st;
    assert_int_equal(s_state(env.store, j21, &st), DQ_STORE_JOB_QUEUED);
    int n = 0;
    assert_int_equal(dq_store_lease(env.store, "C", 8, T0, LEASE_MS, l, &n), DQ_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(l[0].job, j21);
    /* Too many models is refused, not truncated. */
    dq_store_node_t big = {.name = "Z", .models = s_sd15, .n_models = DQ_STORE_MAX_NODE_MODELS + 1};
    assert_int_equal(dq_store_lease_node(env.store, &big, 1, T0, LEASE_MS, l, &n),
                     DQ_STORE_INVALID);
    assert_int_equal(n, 0);
    assert_non_null(strstr(dq_store_errmsg(env.store), "17 models"));
    tu_env_end(&env);
}

static void test_blocklist_still_applies(void **state) {
    (void) state;
    tu_env_t env;
    tu_env_begin(&env, NULL); /* blocked after 2 failures */
    int64_t job = s_job(env.store, "sd15", 3, T0);
    dq_store_node_t a = {.name = "A", .models = s_sd15, .n_models = 1};
    dq_lease_t l[2];
    assert_int_equal(s_lease(env.store, &a, 2, T0, l), 2);
    assert_int_equal(dq_store_fail(env.store, l[0].shard, 1, "A", "oom", "x", T0), DQ_STORE_OK);
    assert_int_equal(dq_store_fail(env.store, l[1].shard, 1, "A", "oom", "x", T0), DQ_STORE_OK);
    assert_true(dq_store_node_blocked(env.store, job, "A"));
    assert_int_equal(s_lease(env.store, &a, 2, T0, l), 0);
    tu_env_end(&env);
}

static void test_unserved_job_fails_after_timeout(void **state) {
    (void) state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t good = s_job(env.store, "sd15", 1, T0);
    int64_t typo = s_job(env.store, "sd1.5", 3, T0);
    dq_store_node_t nodes[2] = {{.name = "A", .models = s_sd15, .n_models = 1},
                                {.name = "B", .models = s_sd21, .n_models = 1}};
    s_seen_t seen = {0};
    int failed = -1;
    dq_job_status_t st;
    /* No node connected (they may not have started): nothing fails, however long. */
    for (int64_t t = T0; t <= T0 + 10 * UNSERVED_MS; t += UNSERVED_MS)
        assert_int_equal(dq_store_check_serving(env.store, NULL, 0, t, UNSERVED_MS, s_on_fail,
                                                &seen, &failed),
                         DQ_STORE_OK);
    assert_int_equal(failed, 0);
    /* Nodes connect at t1: the clock starts then, not at submit time. */
    int64_t t1 = T0 + 20 * UNSERVED_MS;
    assert_int_equal(dq_store_check_serving(env.store, nodes, 2, t1, UNSERVED_MS, s_on_fail,
                                            &seen, &failed),
                     DQ_STORE_OK);
    assert_int_equal(dq_store_check_serving(env.store, nodes, 2, t1 + UNSERVED_MS - 1,
                                            UNSERVED_MS, s_on_fail, &seen, &failed),
                     DQ_STORE_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(s_state(env.store, typo, &st), DQ_STORE_JOB_QUEUED);
    /* Every node leaves for a moment: the clock starts over when they are back. */
    assert_int_equal(dq_store_check_serving(env.store, NULL, 0, t1 + UNSERVED_MS, UNSERVED_MS,
                                            s_on_fail, &seen, &failed),
                     DQ_STORE_OK);
    int64_t t2 = t1 + UNSERVED_MS + 1;
    assert_int_equal(dq_store_check_serving(env.store, nodes, 2, t2, UNSERVED_MS, s_on_fail,
                                            &seen, &failed),
                     DQ_STORE_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(dq_store_check_serving(env.store, nodes, 2, t2 + UNSERVED_MS, UNSERVED_MS,
                                            s_on_fail, &seen, &failed),
                     DQ_STORE_OK);
    assert_int_equal(failed, 3);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.job, typo);
    assert_string_equal(seen.message, "no connected node serves model 'sd1.5'; nodes serve: sd15,"
                                      " sd21");
    assert_int_equal(s_state(env.store, typo, &st), DQ_STORE_JOB_FAILED);
    assert_int_equal(st.requests_failed, 3);
    assert_string_equal(st.last_error, seen.message);
    assert_int_equal(tu_count_events(env.store, typo, "fail"), 3);
    /* The served job goes on as before. */
    assert_int_equal(s_state(env.store, good, &st), DQ_STORE_JOB_QUEUED);
    assert_string_equal(st.last_error, "");
    /* retry requeues them with a fresh clock: they wait again before failing again. */
    int n = 0;
    assert_int_equal(dq_store_retry(env.store, typo, t2 + UNSERVED_MS, &n), DQ_STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(dq_store_check_serving(env.store, nodes, 2, t2 + UNSERVED_MS + 1,
                                            UNSERVED_MS, NULL, NULL, &failed),
                     DQ_STORE_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(s_state(env.store, typo, &st), DQ_STORE_JOB_RUNNING);
    assert_int_equal(st.requests_queued, 3);
    /* A node that serves it arrives: it leases, nothing fails. */
    static const char *const typo_model[] = {"sd1.5"};
    nodes[1] = (dq_store_node_t){.name = "C", .models = typo_model, .n_models = 1};
    assert_int_equal(dq_store_check_serving(env.store, nodes, 2, t2 + 3 * UNSERVED_MS,
                                            UNSERVED_MS, NULL, NULL, &failed),
                     DQ_STORE_OK);
    assert_int_equal(failed, 0);
    dq_lease_t l[4];
    assert_int_equal(s_lease(env.store, &nodes[1], 4, t2, l), 3);
    tu_env_end(&env);
}

static void test_paused_jobs_wait(void **state) {
    (void) state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = s_job(env.store, "nobody", 1, T0);
    dq_store_node_t a = {.name = "A", .models = s_sd15, .n_models = 1};
    assert_int_equal(dq_store_pause(env.store, job, T0), DQ_STORE_OK);
    int failed = -1;
    for (int64_t t = T0; t <= T0 + 3 * UNSERVED_MS; t += UNSERVED_MS)
        assert_int_equal(dq_store_check_serving(env.store, &a, 1, t, UNSERVED_MS, NULL, NULL,
                                                &failed),
                         DQ_STORE_OK);
    assert_int_equal(failed, 0);
    dq_job_status_t st;
    assert_int_equal(s_state(env.store, job, &st), DQ_STORE_JOB_PAUSED);
    assert_int_equal(dq_store_check_serving(env.store, &a, 1, T0, -1, NULL, NULL, NULL),
                     DQ_STORE_INVALID);
    tu_env_end(&env);
}

/* Counts the messages of "fail" events by the error they carry. */
typedef struct {
    int oom, nan;
} s_details_t;

static int s_fail_details(void *arg, const dq_event_t *ev) {
    s_details_t *d = arg;
    if (strcmp(ev->kind, "fail") != 0) return 0;
    d->oom += strstr(ev->detail, "CUDA out of memory; not retried") == ev->detail;
    d->nan += strstr(ev->detail, "NaN in latents; not retried") == ev->detail;
    return 0;
}

static void test_blocked_everywhere_fails_with_last_error(void **state) {
    (void) state;
    tu_env_t env;
    dq_store_params_t p;
    dq_store_params_init(&p);
    p.max_attempts = 5; /* the blocklist, not the attempt limit, is what stops it here */
    tu_env_begin(&env, &p);
    int64_t job = s_job(env.store, "sd15", 4, T0);
    dq_store_node_t a = {.name = "A", .models = s_sd15, .n_models = 1};
    dq_store_node_t b = {.name = "B", .models = s_sd15, .n_models = 1};
    dq_store_node_t other = {.name = "O", .models = s_sd21, .n_models = 1};
    dq_lease_t l[2], lb;
    assert_int_equal(s_lease(env.store, &a, 2, T0, l), 2);
    assert_int_equal(dq_store_fail(env.store, l[1].shard, 1, "A", "internal", "NaN in latents", T0),
                     DQ_STORE_OK);
    assert_int_equal(dq_store_fail(env.store, l[0].shard, 1, "A", "oom", "CUDA out of memory",
                                   T0 + 10),
                     DQ_STORE_OK);
    assert_true(dq_store_node_blocked(env.store, job, "A"));
    /* B serves it too and is not blocked: nothing fails; B takes a shard. */
    dq_store_node_t ab[2] = {a, b};
    int failed = -1;
    assert_int_equal(dq_store_check_serving(env.store, ab, 2, T0 + 20, UNSERVED_MS, NULL, NULL,
                                            &failed),
                     DQ_STORE_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(s_lease(env.store, &b, 1, T0 + 20, &lb), 1);
    assert_int_equal(lb.shard, l[0].shard); /* the oldest; B has tried none */
    /* B leaves; A (blocked) is the only node left serving sd15: the 3 queued shards fail at
     * once, each with its own last error or the job's; B's leased shard is left alone. */
    dq_store_node_t ao[2] = {a, other};
    s_seen_t seen = {0};
    assert_int_equal(dq_store_check_serving(env.store, ao, 2, T0 + 30, UNSERVED_MS, s_on_fail,
                                            &seen, &failed),
                     DQ_STORE_OK);
    assert_int_equal(failed, 3);
    assert_int_equal(seen.calls, 1);
    assert_non_null(strstr(seen.message, "every connected node serving model 'sd15' is blocked"));
    assert_non_null(strstr(seen.message, "(A)"));
    dq_job_status_t st;
    assert_int_equal(s_state(env.store, job, &st), DQ_STORE_JOB_RUNNING); /* B still runs one */
    assert_int_equal(st.requests_failed, 3);
    assert_non_null(strstr(st.last_error, "is blocked for this job"));
    /* The shard A failed with NaN keeps its own last error; the two that never ran get the
     * job's latest (A's later failure, out of memory). */
    s_details_t d = {0};
    assert_int_equal(dq_store_events(env.store, job, s_fail_details, &d), DQ_STORE_OK);
    assert_int_equal(d.nan, 1);
    assert_int_equal(d.oom, 2);
    /* B finishes its shard: the job ends failed, and retry brings the rest back. */
    assert_int_equal(tu_commit_shard(env.store, &lb, T0 + 40), 1);
    assert_int_equal(s_state(env.store, job, &st), DQ_STORE_JOB_FAILED);
    int n = 0;
    assert_int_equal(dq_store_retry(env.store, job, T0 + 50, &n), DQ_STORE_OK);
    assert_int_equal(n, 3);
    assert_false(dq_store_node_blocked(env.store, job, "A"));
    tu_env_end(&env);
}

static void test_serving_queries_use_indexes(void **state) {
    (void) state;
    tu_env_t env;
    tu_env_begin(&env, NULL);
    int64_t job = s_job(env.store, "sd15", 2, T0);
    s_job(env.store, "nobody", 1, T0);
    dq_store_node_t a = {.name = "A", .models = s_sd15_and_x, .paths = s_x_path, .n_models = 2};
    dq_lease_t l[2];
    assert_int_equal(s_lease(env.store, &a, 2, T0, l), 2);
    assert_int_equal(dq_store_fail(env.store, l[0].shard, 1, "A", "oom", "m", T0), DQ_STORE_OK);
    assert_int_equal(dq_store_fail(env.store, l[1].shard, 1, "A", "oom", "m", T0), DQ_STORE_OK);
    assert_int_equal(dq_store_check_serving(env.store, &a, 1, T0, 0, NULL, NULL, NULL),
                     DQ_STORE_OK);
    dq_job_status_t st;
    assert_int_equal(s_state(env.store, job, &st), DQ_STORE_JOB_FAILED);
    char report[4096];
    int bad = dq_store_check_plans(env.store, report, sizeof report);
    if (bad != 0) fail_msg("%d statements scan or sort:\n%s", bad, report);
    tu_env_end(&env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_only_served_models),
        cmocka_unit_test(test_blocklist_still_applies),
        cmocka_unit_test(test_unserved_job_fails_after_timeout),
        cmocka_unit_test(test_paused_jobs_wait),
        cmocka_unit_test(test_blocked_everywhere_fails_with_last_error),
        cmocka_unit_test(test_serving_queries_use_indexes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
