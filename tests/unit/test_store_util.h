/* tests/unit/test_store_util.h: shared helpers for the queue store tests (temp dirs, jobs). */
#ifndef DQ_TEST_STORE_UTIL_H
#define DQ_TEST_STORE_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/store.h"

#define T0    1000000000000LL /* a fixed "now" (ms); tests move time by adding to it */
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* A temp directory with one database path in it; removed by tu_env_end. */
typedef struct {
    char dir[64];
    char path[96];
    dq_store_t *store; /* owned */
} tu_env_t;

/* Creates the directory and opens the store (params may be NULL). Fails the test on error. */
void tu_env_begin(tu_env_t *env, const dq_store_params_t *params);
/* Closes the store (if open) and removes the files. */
void tu_env_end(tu_env_t *env);
/* Opens another handle on env's database (as a restarted broker would). */
dq_store_t *tu_reopen(tu_env_t *env, const dq_store_params_t *params);

/* Submits and commits a job of n requests at lines 1..n, num_images each, all with one shard
 * key; ids "r<line>" when with_ids. Returns the job id. */
int64_t tu_job(dq_store_t *store, const char *name, int priority, int shard_size, int n,
               int num_images, bool with_ids, int64_t now);
/* A request for line `line` (shared static text buffers; copy before the next call). */
dq_store_request_t tu_request(int64_t line, int num_images, int width);

/* Commits every image of a leased shard with its attempt; returns how many were OK. */
int tu_commit_shard(dq_store_t *store, const dq_lease_t *lease, int64_t now);
/* Leases one shard to node; returns 1 if one was leased (into *out), else 0. */
int tu_lease1(dq_store_t *store, const char *node, int64_t now, dq_lease_t *out);

/* Counts events of a kind for a job (0 = all). */
int tu_count_events(dq_store_t *store, int64_t job, const char *kind);

#endif
