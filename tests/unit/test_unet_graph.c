/* tests/unit/test_unet_graph.c: the UNet's forward recorded as a graph and replayed, on the CPU:
 * tests/unit/record_backend records ops as CUDA stream capture would and replays them. A replay
 * must give the bits the plain CPU backend gives for the same inputs, with a new timestep, new
 * sample values and other caller tensors on every call (nothing per call may be baked into the
 * graph), no transfer or allocation may happen while recording, a new size must record anew, and
 * a graph that cannot be made must leave the UNet eager and correct. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/arena.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/model_files.h"
#include "kernels/unet.h"
#include "tests/unit/record_backend.h"

static char s_path[4096];

static const char *s_src(const char *rel) {
    const char *top = getenv("top_srcdir");
    snprintf(s_path, sizeof s_path, "%s/%s", top ? top : ".", rel);
    return s_path;
}

/* Context length of the test calls (any L works; the pipeline uses 77). */
#define S_L 7

/* The caller's tensors of one forward, in an arena of their own (so each set has other
 * addresses). */
typedef struct {
    dq_arena_t *a;
    dq_tensor_t *sample, *ctx, *out;
} s_io_t;

static void s_io_new(s_io_t *io, dq_backend_t *be, int64_t n, int64_t h, int64_t w, int64_t d) {
    io->a = dq_arena_new(be, (size_t) (n * (8 * h * w + S_L * d)) * 4 + 4096, 4);
    assert_non_null(io->a);
    io->sample = dq_arena_tensor(io->a, DQ_DTYPE_F32, 4, (int64_t[]){n, 4, h, w}, "sample");
    io->ctx = dq_arena_tensor(io->a, DQ_DTYPE_F32, 3, (int64_t[]){n, S_L, d}, "context");
    io->out = dq_arena_tensor(io->a, DQ_DTYPE_F32, 4, (int64_t[]){n, 4, h, w}, "out");
    assert_non_null(io->out);
}

/* Deterministic values in [-1, 1) from seed (an LCG: inputs only need to differ per call). */
static void s_fill(float *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float) (seed >> 8) / (float) (1u << 23) - 1.0f;
    }
}

/* Two UNets of the tiny model: on the recording backend and on the plain CPU backend. */
typedef struct {
    dq_backend_t *rb, *cpu;
    dq_unet_t *ur, *uc;
    dq_record_stats_t *rs;
    int64_t d; /* cross_attention_dim */
} s_pair_t;

static void s_pair_new(s_pair_t *p) {
    char err[512] = "";
    dq_model_t *m = dq_model_load(s_src("tests/fixtures/tiny-sd"), err, sizeof err);
    if (!m) fail_msg("load: %s", err);
    p->rb = dq_record_backend_new(0, 0);
    p->cpu = dq_backend_cpu_new(0, 0);
    assert_non_null(p->rb);
    assert_non_null(p->cpu);
    p->rs = dq_record_backend_stats(p->rb);
    p->ur = dq_unet_new(p->rb, m, err, sizeof err);
    if (!p->ur) fail_msg("%s", err);
    p->uc = dq_unet_new(p->cpu, m, err, sizeof err);
    if (!p->uc) fail_msg("%s", err);
    p->d = m->cfg.unet.cross_attention_dim;
    dq_model_destroy(&m);
}

static void s_pair_free(s_pair_t *p) {
    dq_unet_destroy(&p->ur);
    assert_int_equal(p->rs->live, 0); /* the UNet destroyed its graph */
    dq_unet_destroy(&p->uc);
    dq_backend_destroy(&p->rb);
    dq_backend_destroy(&p->cpu);
}

/* `calls` forwards of [n, 4, h, w] with other inputs each time (seeded by seed0 + call), the
 * caller tensors alternating between two sets on the recording side: each output must equal the
 * plain CPU UNet's bit for bit. */
static void s_calls(s_pair_t *p, int64_t n, int64_t h, int64_t w, int calls, uint32_t seed0) {
    s_io_t io[2], ref;
    s_io_new(&io[0], p->rb, n, h, w, p->d);
    s_io_new(&io[1], p->rb, n, h, w, p->d);
    s_io_new(&ref, p->cpu, n, h, w, p->d);
    size_t ns = (size_t) (n * 4 * h * w), nc = (size_t) (n * S_L * p->d);
    float *sample = malloc(ns * 4), *ctx = malloc(nc * 4), *got = malloc(ns * 4),
          *want = malloc(ns * 4);
    assert_non_null(want);
    for (int k = 0; k < calls; k++) {
        const s_io_t *x = &io[k % 2];
        s_fill(sample, ns, seed0 + (uint32_t) k);
        s_fill(ctx, nc, seed0 + 1000u + (uint32_t) (k / 2)); /* context changes every 2 calls */
        float t[2] = {(float) (981 - 97 * k), (float) (11 + 13 * k)}; /* one per item */
        char err[512] = "";
        assert_int_equal(dq_tensor_upload(p->rb, x->sample, 0, sample, ns * 4), 0);
        assert_int_equal(dq_tensor_upload(p->rb, x->ctx, 0, ctx, nc * 4), 0);
        if (dq_unet_forward(p->ur, x->sample, t, (int) n, x->ctx, x->out, err, sizeof err))
            fail_msg("recorded unet, call %d: %s", k, err);
        assert_int_equal(dq_tensor_download(p->rb, x->out, 0, got, ns * 4), 0);
        assert_int_equal(dq_tensor_upload(p->cpu, ref.sample, 0, sample, ns * 4), 0);
        assert_int_equal(dq_tensor_upload(p->cpu, ref.ctx, 0, ctx, nc * 4), 0);
        if (dq_unet_forward(p->uc, ref.sample, t, (int) n, ref.ctx, ref.out, err, sizeof err))
            fail_msg("cpu unet, call %d: %s", k, err);
        assert_int_equal(dq_tensor_download(p->cpu, ref.out, 0, want, ns * 4), 0);
        if (memcmp(got, want, ns * 4) != 0)
            fail_msg("[%lld, 4, %lld, %lld] call %d: the recorded UNet's output differs from the "
                     "CPU backend's", (long long) n, (long long) h, (long long) w, k);
    }
    free(sample);
    free(ctx);
    free(got);
    free(want);
    dq_arena_destroy(&io[0].a);
    dq_arena_destroy(&io[1].a);
    dq_arena_destroy(&ref.a);
}

static dq_step_graph_stats_t s_stats(const dq_unet_t *u) {
    dq_step_graph_stats_t s;
    dq_unet_graph_stats(u, &s);
    return s;
}

static int s_setup(void **state) {
    (void) state;
    return unsetenv("DQ_CUDA_GRAPHS");
}

/* Eager, then recorded, then replayed, giving the CPU's bits throughout; a new size records anew;
 * going back to the first size records again (its memory was re-made). */
static void test_replay_matches_eager(void **state) {
    (void) state;
    s_pair_t p;
    s_pair_new(&p);
    s_calls(&p, 2, 8, 8, 5, 1);
    dq_step_graph_stats_t s = s_stats(p.ur);
    assert_true(s.enabled);
    assert_int_equal(s.eager, 1);
    assert_int_equal(s.captures, 1);
    assert_int_equal(s.launches, 4);
    assert_int_equal(p.rs->begins, 1);
    assert_int_equal(p.rs->illegal, 0);
    assert_int_equal(p.rs->live, 1);
    /* Replays ran whole forwards: 4 launches of the recorded op list, nothing eager in between
     * but the copies in and out. */
    assert_true(p.rs->ops_replayed >= 4 * 50);
    assert_int_equal(p.rs->ops_replayed % 4, 0);
    printf("# [2, 4, 8, 8]: %ld ops per replay\n", p.rs->ops_replayed / 4);

    s_calls(&p, 2, 6, 8, 3, 50);
    s = s_stats(p.ur);
    assert_int_equal(s.eager, 2);
    assert_int_equal(s.captures, 2);
    assert_int_equal(s.launches, 6);
    assert_int_equal(s.drops, 1);
    assert_int_equal(p.rs->live, 1);
    assert_int_equal(p.rs->illegal, 0);

    s_calls(&p, 2, 8, 8, 2, 90);
    s = s_stats(p.ur);
    assert_int_equal(s.eager, 3);
    assert_int_equal(s.captures, 3);
    assert_int_equal(p.rs->illegal, 0);
    s_pair_free(&p);
}

/* The channels-last network (DQ_LAYOUT=nhwc on both sides) records and replays too, giving the
 * CPU's channels-last bits. */
static void test_replay_matches_eager_nhwc(void **state) {
    (void) state;
    s_pair_t p;
    assert_int_equal(setenv("DQ_LAYOUT", "nhwc", 1), 0);
    s_pair_new(&p);
    assert_int_equal(unsetenv("DQ_LAYOUT"), 0);
    s_calls(&p, 2, 6, 8, 3, 7);
    dq_step_graph_stats_t s = s_stats(p.ur);
    assert_true(s.enabled);
    assert_int_equal(s.captures, 1);
    assert_int_equal(s.launches, 2);
    assert_int_equal(p.rs->illegal, 0);
    s_pair_free(&p);
}

/* A graph that cannot be instantiated: the calls still give the CPU's bits, graphs go off and
 * are not tried again. */
static void test_failed_graph_stays_eager(void **state) {
    (void) state;
    s_pair_t p;
    s_pair_new(&p);
    p.rs->fail_end = true;
    s_calls(&p, 2, 8, 8, 4, 7);
    dq_step_graph_stats_t s = s_stats(p.ur);
    assert_false(s.enabled);
    assert_non_null(strstr(s.why_off, "could not be turned into a graph"));
    assert_int_equal(p.rs->begins, 1);
    assert_int_equal(p.rs->launches, 0);
    assert_int_equal(s.eager, 4); /* the first call, the failed one's retry, two more */
    /* A new size after the fall-back: eager as well. */
    s_calls(&p, 2, 5, 7, 2, 8);
    assert_int_equal(p.rs->begins, 1);
    assert_int_equal(p.rs->live, 0);
    s_pair_free(&p);
}

/* DQ_CUDA_GRAPHS=0: the hooks are never called and the result is the CPU's. */
static void test_env_turns_graphs_off(void **state) {
    (void) state;
    assert_int_equal(setenv("DQ_CUDA_GRAPHS", "0", 1), 0);
    s_pair_t p;
    s_pair_new(&p);
    assert_int_equal(unsetenv("DQ_CUDA_GRAPHS"), 0);
    s_calls(&p, 2, 8, 8, 3, 3);
    assert_int_equal(p.rs->begins + p.rs->ends + p.rs->launches, 0);
    dq_step_graph_stats_t s = s_stats(p.ur);
    assert_false(s.enabled);
    assert_string_equal(s.why_off, "DQ_CUDA_GRAPHS=0");
    s_pair_free(&p);
}

/* On the plain CPU backend (no graph hooks) the UNet says why graphs are off. */
static void test_cpu_has_no_graphs(void **state) {
    (void) state;
    s_pair_t p;
    s_pair_new(&p);
    dq_step_graph_stats_t s = s_stats(p.uc);
    assert_false(s.enabled);
    assert_non_null(strstr(s.why_off, "cpu backend has no graphs"));
    s_pair_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_matches_eager),
        cmocka_unit_test(test_replay_matches_eager_nhwc),
        cmocka_unit_test(test_failed_graph_stays_eager),
        cmocka_unit_test(test_env_turns_graphs_off),
        cmocka_unit_test(test_cpu_has_no_graphs),
    };
    return cmocka_run_group_tests_name("unet_graph", tests, s_setup, NULL);
}
