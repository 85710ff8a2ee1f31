/* tests/unit/test_step_graph.c: the step-graph policy (kernels/step_graph.h) against a fake
 * backend whose graph hooks count their calls, model "recorded, not run", and fail on demand:
 * eager first, record on the first ready call, replay after, drop on a new key, eager for good
 * after any failure, DQ_CUDA_GRAPHS=0, and a backend without hooks. In every case the step's work
 * must happen exactly once per call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/step_graph.h"

/* The fake backend's state: hook counters, failure switches, and the step's work. */
typedef struct {
    int begins, ends, launches, destroys;
    int live;            /* graphs made and not destroyed */
    bool recording;
    bool fail_begin, fail_end, fail_launch;
    bool spoil;          /* the next recorded step makes graph_end fail (an illegal call) */
    long ran;            /* step work units that ran (eagerly or by a launch) */
    long recorded;       /* step work units recorded and not yet in a graph */
} s_fake_t;

struct dq_backend_graph {
    long work; /* units the graph runs per launch */
};

static s_fake_t *s_fake(dq_backend_t *be) { return be->ctx; }

static int s_begin(dq_backend_t *be) {
    s_fake_t *f = s_fake(be);
    f->begins++;
    if (f->fail_begin) return -1;
    f->recording = true;
    f->recorded = 0;
    return 0;
}

static int s_end(dq_backend_t *be, dq_backend_graph_t **graph) {
    s_fake_t *f = s_fake(be);
    f->ends++;
    assert_true(f->recording); /* end only after a successful begin */
    f->recording = false;
    if (f->fail_end || f->spoil) {
        f->spoil = false;
        return -1;
    }
    *graph = malloc(sizeof **graph);
    assert_non_null(*graph);
    (*graph)->work = f->recorded;
    f->live++;
    return 0;
}

static int s_launch(dq_backend_t *be, dq_backend_graph_t *graph) {
    s_fake_t *f = s_fake(be);
    f->launches++;
    assert_false(f->recording);
    if (f->fail_launch) return -1;
    f->ran += graph->work;
    return 0;
}

static void s_gdestroy(dq_backend_t *be, dq_backend_graph_t *graph) {
    s_fake_t *f = s_fake(be);
    f->destroys++;
    f->live--;
    free(graph);
}

static const dq_backend_ops_t s_graph_ops = {
    .name = "fake",
    .graph_begin = s_begin,
    .graph_end = s_end,
    .graph_launch = s_launch,
    .graph_destroy = s_gdestroy,
};
/* Like the CPU backend: no graph hooks. */
static const dq_backend_ops_t s_plain_ops = {.name = "plain"};

/* The step: one unit of work, recorded while recording, else run; can be told to fail. */
typedef struct {
    s_fake_t *f;
    int calls;
    bool fail;          /* fails whenever called */
    bool fail_recorded; /* fails only while recording (an op illegal during capture) */
} s_step_t;

static int s_step(void *arg) {
    s_step_t *st = arg;
    st->calls++;
    if (st->fail) return -1;
    if (st->f->recording) {
        if (st->fail_recorded) return -1;
        st->f->recorded++;
    } else {
        st->f->ran++;
    }
    return 0;
}

typedef struct {
    s_fake_t f;
    dq_backend_t be;
    s_step_t step;
    dq_step_graph_t *g;
} s_env_t;

static void s_env_init(s_env_t *e, const dq_backend_ops_t *ops) {
    memset(e, 0, sizeof *e);
    e->be.ops = ops;
    e->be.ctx = &e->f;
    e->step.f = &e->f;
    e->g = dq_step_graph_new(&e->be, "test");
    assert_non_null(e->g);
}

static int s_run(s_env_t *e, int64_t n, bool ready) {
    int64_t key[2] = {n, 7};
    return dq_step_graph_run(e->g, key, 2, ready, s_step, &e->step);
}

static dq_step_graph_stats_t s_stats(const s_env_t *e) {
    dq_step_graph_stats_t s;
    dq_step_graph_stats(e->g, &s);
    return s;
}

static void s_env_done(s_env_t *e) {
    dq_step_graph_destroy(&e->g);
    assert_null(e->g);
    dq_step_graph_destroy(&e->g); /* idempotent */
    assert_int_equal(e->f.live, 0);
}

static int s_setup(void **state) {
    (void) state;
    return unsetenv(DQ_STEP_GRAPH_ENV);
}

/* The whole life of a size: eager, record + launch, replays; a new size starts over. */
static void test_policy(void **state) {
    (void) state;
    s_env_t e;
    s_env_init(&e, &s_graph_ops);
    assert_true(dq_step_graph_enabled(e.g));
    /* First call of a size: memory not final, eager. */
    assert_int_equal(s_run(&e, 2, false), 0);
    assert_int_equal(e.f.begins, 0);
    assert_int_equal(e.f.ran, 1);
    /* Next call: recorded (nothing ran while recording) and launched once. */
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.f.begins, 1);
    assert_int_equal(e.f.ends, 1);
    assert_int_equal(e.f.launches, 1);
    assert_int_equal(e.step.calls, 2);
    assert_int_equal(e.f.ran, 2);
    /* Replays: fn is not called, the graph runs the work. */
    for (int i = 0; i < 5; i++) assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.step.calls, 2);
    assert_int_equal(e.f.launches, 6);
    assert_int_equal(e.f.begins, 1);
    assert_int_equal(e.f.ran, 7);
    /* A new size drops the graph; its first call is eager again, then recorded anew. */
    assert_int_equal(s_run(&e, 4, false), 0);
    assert_int_equal(e.f.destroys, 1);
    assert_int_equal(e.f.live, 0);
    assert_int_equal(e.f.ran, 8);
    assert_int_equal(s_run(&e, 4, true), 0);
    assert_int_equal(e.f.begins, 2);
    assert_int_equal(e.f.live, 1);
    assert_int_equal(e.f.ran, 9);
    /* A new key that is ready at once (memory already final) records at once. */
    assert_int_equal(s_run(&e, 8, true), 0);
    assert_int_equal(e.f.begins, 3);
    assert_int_equal(e.f.destroys, 2);
    assert_int_equal(e.f.ran, 10);
    /* Invalidation (memory about to move) drops it; the next ready call records again. */
    dq_step_graph_invalidate(e.g);
    assert_int_equal(e.f.live, 0);
    assert_int_equal(s_run(&e, 8, true), 0);
    assert_int_equal(e.f.begins, 4);
    /* Not ready under the same key (the arena was re-made): the graph is dropped, eager. */
    assert_int_equal(s_run(&e, 8, false), 0);
    assert_int_equal(e.f.live, 0);
    assert_int_equal(e.f.ran, 12);
    dq_step_graph_stats_t s = s_stats(&e);
    assert_true(s.enabled);
    assert_string_equal(s.why_off, "");
    assert_int_equal(s.eager, 3);
    assert_int_equal(s.captures, 4);
    assert_int_equal(s.launches, 9);
    assert_int_equal(s.drops, 4);
    /* Destroying the step graph destroys a live graph. */
    assert_int_equal(s_run(&e, 8, true), 0);
    assert_int_equal(e.f.live, 1);
    s_env_done(&e);
}

/* A backend without hooks (the CPU): eager always, no hook touched, the reason recorded. */
static void test_no_hooks(void **state) {
    (void) state;
    s_env_t e;
    s_env_init(&e, &s_plain_ops);
    assert_false(dq_step_graph_enabled(e.g));
    for (int i = 0; i < 3; i++) assert_int_equal(s_run(&e, 2, i > 0), 0);
    assert_int_equal(e.f.ran, 3);
    assert_int_equal(e.step.calls, 3);
    dq_step_graph_stats_t s = s_stats(&e);
    assert_int_equal(s.eager, 3);
    assert_int_equal(s.captures, 0);
    assert_non_null(strstr(s.why_off, "plain backend has no graphs"));
    /* The generic wrappers say "unsupported" without calling anything. */
    dq_backend_graph_t *graph = (dq_backend_graph_t *) &e; /* must be overwritten with NULL */
    assert_int_equal(dq_backend_graph_begin(&e.be), DQ_BACKEND_UNSUPPORTED);
    assert_int_equal(dq_backend_graph_end(&e.be, &graph), DQ_BACKEND_UNSUPPORTED);
    assert_null(graph);
    assert_int_equal(dq_backend_graph_launch(&e.be, NULL), DQ_BACKEND_UNSUPPORTED);
    dq_backend_graph_destroy(&e.be, &graph); /* NULL: nothing to do */
    s_env_done(&e);
}

/* DQ_CUDA_GRAPHS=0: hooks present but never used. */
static void test_env_off(void **state) {
    (void) state;
    assert_int_equal(setenv(DQ_STEP_GRAPH_ENV, "0", 1), 0);
    s_env_t e;
    s_env_init(&e, &s_graph_ops);
    assert_int_equal(unsetenv(DQ_STEP_GRAPH_ENV), 0);
    assert_false(dq_step_graph_enabled(e.g));
    for (int i = 0; i < 4; i++) assert_int_equal(s_run(&e, 2, i > 0), 0);
    assert_int_equal(e.f.begins + e.f.ends + e.f.launches, 0);
    assert_int_equal(e.f.ran, 4);
    assert_string_equal(s_stats(&e).why_off, "DQ_CUDA_GRAPHS=0");
    s_env_done(&e);
    /* Any other value leaves them on. */
    assert_int_equal(setenv(DQ_STEP_GRAPH_ENV, "1", 1), 0);
    s_env_init(&e, &s_graph_ops);
    assert_int_equal(unsetenv(DQ_STEP_GRAPH_ENV), 0);
    assert_true(dq_step_graph_enabled(e.g));
    s_env_done(&e);
}

/* Shared by the failure cases: after the failing call, graphs are off, the work ran once per
 * call, and later calls are eager without touching a hook. */
static void s_check_fell_back(s_env_t *e, long calls_before, const char *why) {
    long ran = e->f.ran;
    assert_int_equal(ran, calls_before + 1);
    dq_step_graph_stats_t s = s_stats(e);
    assert_false(s.enabled);
    assert_false(dq_step_graph_enabled(e->g));
    assert_non_null(strstr(s.why_off, why));
    assert_int_equal(e->f.live, 0);
    int hooks = e->f.begins + e->f.ends + e->f.launches;
    e->f.fail_begin = e->f.fail_end = e->f.fail_launch = false;
    for (int i = 0; i < 3; i++) assert_int_equal(s_run(e, 2, true), 0);
    assert_int_equal(e->f.begins + e->f.ends + e->f.launches, hooks);
    assert_int_equal(e->f.ran, ran + 3);
    s_env_done(e);
}

static void test_begin_fails(void **state) {
    (void) state;
    s_env_t e;
    s_env_init(&e, &s_graph_ops);
    assert_int_equal(s_run(&e, 2, false), 0);
    e.f.fail_begin = true;
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.f.ends, 0); /* nothing to end */
    s_check_fell_back(&e, 1, "could not start recording");
}

/* Instantiation (or the capture as a whole) fails: the recorded work is dropped and run eagerly. */
static void test_end_fails(void **state) {
    (void) state;
    s_env_t e;
    s_env_init(&e, &s_graph_ops);
    assert_int_equal(s_run(&e, 2, false), 0);
    e.f.fail_end = true;
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.f.ends, 1);
    assert_int_equal(e.step.calls, 3); /* recorded, then run eagerly */
    s_check_fell_back(&e, 1, "could not be turned into a graph");
}

/* An op fails only while recording (a call not allowed during capture): the capture is still
 * ended, the step reruns eagerly and succeeds, graphs go off. */
static void test_op_fails_while_recording(void **state) {
    (void) state;
    s_env_t e;
    s_env_init(&e, &s_graph_ops);
    assert_int_equal(s_run(&e, 2, false), 0);
    e.step.fail_recorded = true;
    e.f.spoil = true;
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.f.ends, 1);
    assert_false(e.f.recording);
    s_check_fell_back(&e, 1, "failed while being recorded");
}

/* The step fails for its own reasons (bad input): recorded or eager, the error is returned, the
 * capture is ended and dropped, and graphs stay on. */
static void test_step_error_keeps_graphs(void **state) {
    (void) state;
    s_env_t e;
    s_env_init(&e, &s_graph_ops);
    e.step.fail = true;
    assert_int_equal(s_run(&e, 2, false), -1);
    assert_int_equal(s_run(&e, 2, true), -1);
    assert_int_equal(e.f.begins, 1);
    assert_int_equal(e.f.ends, 1);
    assert_int_equal(e.f.live, 0);
    assert_true(dq_step_graph_enabled(e.g));
    e.step.fail = false;
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.f.begins, 2);
    assert_int_equal(e.f.live, 1);
    assert_int_equal(e.f.ran, 1);
    s_env_done(&e);
}

/* The first launch of a new graph fails, or a replay does: eager for that call and after. */
static void test_launch_fails(void **state) {
    (void) state;
    s_env_t e;
    s_env_init(&e, &s_graph_ops);
    e.f.fail_launch = true;
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.f.destroys, 1);
    s_check_fell_back(&e, 0, "launching the new graph failed");

    s_env_init(&e, &s_graph_ops);
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(s_run(&e, 2, true), 0);
    e.f.fail_launch = true;
    assert_int_equal(s_run(&e, 2, true), 0);
    assert_int_equal(e.step.calls, 2); /* the recording, then the eager retry */
    s_check_fell_back(&e, 2, "launching the graph failed");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_no_hooks),
        cmocka_unit_test(test_env_off),
        cmocka_unit_test(test_begin_fails),
        cmocka_unit_test(test_end_fails),
        cmocka_unit_test(test_op_fails_while_recording),
        cmocka_unit_test(test_step_error_keeps_graphs),
        cmocka_unit_test(test_launch_fails),
    };
    return cmocka_run_group_tests_name("step_graph", tests, s_setup, NULL);
}
