/* tests/unit/test_store_util.c: shared helpers for the queue store tests (temp dirs, jobs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/test_store_util.h"

void tu_env_begin(tu_env_t *env, const dq_store_params_t *params) {
    memset(env, 0, sizeof *env);
    snprintf(env->dir, sizeof env->dir, "/tmp/dq-store-XXXXXX");
    assert_non_null(mkdtemp(env->dir));
    snprintf(env->path, sizeof env->path, "%s/queue.db", env->dir);
    env->store = tu_reopen(env, params);
}

dq_store_t *tu_reopen(tu_env_t *env, const dq_store_params_t *params) {
    char err[512] = "";
    dq_store_t *store = dq_store_open(env->path, params, err, sizeof err);
    if (!store) fail_msg("open %s: %s", env->path, err);
    return store;
}

void tu_env_end(tu_env_t *env) {
    dq_store_destroy(&env->store);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s%s", env->path, suffix[i]);
        unlink(p);
    }
    rmdir(env->dir);
}

dq_store_request_t tu_request(int64_t line, int num_images, int width) {
    static char json[128];
    snprintf(json, sizeof json, "{\"prompt\":\"p%lld\",\"seed\":%lld}", (long long)line,
             (long long)line * 7);
    dq_store_request_t q = {.line = line,
                      .json = json,
                      .id = NULL,
                      .seed = (uint64_t)line * 7,
                      .num_images = num_images,
                      .width = width,
                      .height = 512,
                      .steps = 20,
                      .scheduler = "euler"};
    return q;
}

int64_t tu_job(dq_store_t *store, const char *name, int priority, int shard_size, int n,
               int num_images, bool with_ids, int64_t now) {
    dq_job_params_t p = {.name = name,
                         .model = "sd15",
                         .out_dir = "/out",
                         .priority = priority,
                         .shard_size = shard_size};
    int64_t job = 0;
    assert_int_equal(dq_store_job_begin(store, &p, now, &job), DQ_STORE_OK);
    for (int i = 1; i <= n; i++) {
        dq_store_request_t q = tu_request(i, num_images, 512);
        char id[32];
        snprintf(id, sizeof id, "r%d", i);
        if (with_ids) q.id = id;
        dq_store_rc_t rc = dq_store_job_add(store, job, &q, 1);
        if (rc) fail_msg("add line %d: %s", i, dq_store_errmsg(store));
    }
    dq_store_rc_t rc = dq_store_job_commit(store, job, now);
    if (rc) fail_msg("commit job: %s", dq_store_errmsg(store));
    return job;
}

typedef struct {
    dq_store_t *store;
    const dq_lease_t *lease;
    int64_t now;
    int ok;
} s_commit_ctx_t;

static int s_commit_req(void *arg, const dq_store_request_t *req) {
    s_commit_ctx_t *c = arg;
    for (int k = 0; k < req->num_images; k++) {
        dq_result_t res = {.job = c->lease->job,
                           .line = req->line,
                           .image = k,
                           .attempt = c->lease->attempt,
                           .path = "/out/x.png",
                           .sha256 = SHA_A,
                           .size = 100};
        if (dq_store_commit_result(c->store, &res, c->now) == DQ_STORE_OK) c->ok++;
    }
    return 0;
}

int tu_commit_shard(dq_store_t *store, const dq_lease_t *lease, int64_t now) {
    s_commit_ctx_t c = {store, lease, now, 0};
    assert_int_equal(dq_store_shard_requests(store, lease->shard, s_commit_req, &c), DQ_STORE_OK);
    return c.ok;
}

int tu_lease1(dq_store_t *store, const char *node, int64_t now, dq_lease_t *out) {
    int n = -1;
    dq_store_rc_t rc = dq_store_lease(store, node, 1, now, 30000, out, &n);
    if (rc) fail_msg("lease: %s", dq_store_errmsg(store));
    return n;
}

typedef struct {
    const char *kind;
    int n;
} s_count_t;

static int s_count_ev(void *arg, const dq_event_t *ev) {
    s_count_t *c = arg;
    if (strcmp(ev->kind, c->kind) == 0) c->n++;
    return 0;
}

int tu_count_events(dq_store_t *store, int64_t job, const char *kind) {
    s_count_t c = {kind, 0};
    assert_int_equal(dq_store_events(store, job, s_count_ev, &c), DQ_STORE_OK);
    return c.n;
}
