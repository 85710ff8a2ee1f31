/* node/supervise.h: starting, reaping and stopping the node's rank processes (fork + exec of
 * diffq-node in rank mode, one socketpair each). What the ranks do is node/rank.h. */
#ifndef DQ_NODE_SUPERVISE_H
#define DQ_NODE_SUPERVISE_H

#include <stdint.h>
#include <sys/types.h>

#include "node/flow.h"
#include "node/rankio.h"

typedef enum {
    DQ_RANK_DOWN,     /* no process; restart_at says when to start one */
    DQ_RANK_STARTING, /* started, HELLO sent, waiting for UP */
    DQ_RANK_UP,       /* takes shards */
} dq_rank_state_t;

/* The node's view of one rank. */
typedef struct {
    int index;
    char device[64]; /* "cpu" or "cuda:N" */
    dq_rank_state_t state;
    pid_t pid;            /* 0 when down */
    dq_rankio_t *io;      /* owned; NULL when down */
    uint32_t held;        /* shards given to it and not yet reported back */
    int64_t restart_at;   /* ms (monotonic) when down */
    dq_backoff_t backoff; /* restart delays after crashes */
    int failed_starts;    /* deaths before UP in a row */
} dq_rank_t;

/* What every rank is told at start (HELLO). Strings borrowed. */
typedef struct {
    const char *exe; /* program to exec in rank mode ("/proc/self/exe") */
    const char *backend;
    uint32_t null_step_ms;
    const char *null_fail;
    const char *model_spec; /* loaded at start */
    int cpu_threads;        /* OMP_NUM_THREADS for a "cpu" rank when the environment has none
                               (ranks share the cores); 0: leave it */
    uint32_t max_batch;     /* images per pipeline batch (dq_render_params_t.max_batch) */
} dq_rank_hello_t;

/* Starts rank r: socketpair, fork, exec of hello->exe with "--rank-fd N" in its own process
 * group, and queues HELLO. Returns 0 (state STARTING), or -1 with a message in err (state
 * unchanged, nothing left open). */
int dq_rank_spawn(dq_rank_t *r, const dq_rank_hello_t *hello, char *err, size_t errlen);

/* The rank's pipe closed or broke: closes it, collects the process (SIGKILL if it still runs),
 * describes how it ended in desc ("exited with status 3", "killed by signal 9") and marks it
 * DOWN. */
void dq_rank_reap(dq_rank_t *r, char *desc, size_t desclen);

/* Shutdown: closes every rank's pipe (ranks leave at their next step), waits up to grace_ms for
 * them, then kills what is left with SIGKILL and collects it. */
void dq_rank_stop_all(dq_rank_t *ranks, size_t n, int grace_ms);

/* Monotonic clock in ms. */
int64_t dq_now_ms(void);

#endif
