/* tests/unit/record_backend.h: a test backend that is the CPU backend plus graph hooks that
 * behave like CUDA stream capture: between graph_begin and graph_end every op is recorded (its
 * tensors and scalars copied) instead of run, and graph_launch replays the record on the CPU.
 * Transfers, synchronize and buffer alloc/free while recording are counted as illegal and fail,
 * as they would spoil a CUDA capture. Lets CPU tests check that a recorded step is complete,
 * replays correctly with new per-call inputs, and keeps host work outside the recording. */
#ifndef DQ_TEST_RECORD_BACKEND_H
#define DQ_TEST_RECORD_BACKEND_H

#include <stdbool.h>

#include "kernels/backend.h"

/* What the hooks saw; the switches make the next graph_end / every launch fail. */
typedef struct {
    int begins, ends, launches, destroys;
    int live;          /* graphs made and not destroyed */
    int illegal;       /* transfers, syncs, allocs or frees attempted while recording */
    long ops_run;      /* ops run eagerly */
    long ops_replayed; /* ops run by launches */
    bool fail_end;     /* graph_end fails (as an instantiation failure would) */
    bool fail_launch;  /* graph_launch fails */
} dq_record_stats_t;

/* A recording backend over a new CPU backend (workspace and threads as dq_backend_cpu_new).
 * Destroy with dq_backend_destroy. NULL when out of memory. */
dq_backend_t *dq_record_backend_new(size_t workspace_bytes, int n_threads);
/* Its counters and switches (the backend keeps ownership; valid until it is destroyed). */
dq_record_stats_t *dq_record_backend_stats(dq_backend_t *be);

#endif
