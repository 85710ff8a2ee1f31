/* kernels/step_graph.h: when a repeated step (the UNet's forward) runs op by op, is recorded as
 * a backend graph, or replays its recording; re-recorded when it changes, eager after a failure. */
#ifndef DQ_STEP_GRAPH_H
#define DQ_STEP_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend.h"

/*
 * The policy, per call of dq_step_graph_run(g, key, ready, fn, arg):
 *   - graphs off (the backend has no graph hooks, DQ_CUDA_GRAPHS=0, or an earlier failure):
 *     fn runs eagerly (op by op), always;
 *   - a key unlike the last call's drops the recorded graph (a new size: new memory);
 *   - not ready (the step's memory is not final yet, e.g. the UNet's first call of a size, which
 *     measures its arena and then re-allocates it): the graph is dropped and fn runs eagerly;
 *   - ready and no graph: fn is recorded (begin, fn, end) and the graph launched at once (the
 *     recording ran nothing);
 *   - ready with a graph: the graph is launched and fn is not called.
 * fn must queue the same ops with the same arguments on every ready call with the same key, and
 * everything that differs per call (uploads of host data, the caller's own tensors) must stay
 * outside it. If recording or launching fails, one warning names the reason, fn runs eagerly
 * for this call, and the step stays eager from then on: a graph that cannot be made never fails
 * the work. Recording an fn that fails because of its own arguments (a real error) is told apart
 * by the eager retry failing too; graphs stay on then and the error is returned.
 */

/* Environment variable: "0" turns graphs off for every step graph created afterwards. */
#define DQ_STEP_GRAPH_ENV "DQ_CUDA_GRAPHS"
/* Most int64 values in a key. */
#define DQ_STEP_GRAPH_MAX_KEY 8

typedef struct dq_step_graph dq_step_graph_t;

/* The step: queues its ops on the backend; returns 0, or -1 after logging what failed. */
typedef int (*dq_step_fn)(void *arg);

/* What a step graph did so far, for logs and benchmarks. */
typedef struct {
    bool enabled;     /* graphs are in use (false: off from the start, or after a failure) */
    long eager;       /* calls that ran fn op by op */
    long captures;    /* graphs recorded */
    long launches;    /* graph launches (the recording call's own launch included) */
    long drops;       /* recorded graphs dropped because the key changed or memory moved */
    char why_off[160]; /* when !enabled: why ("" while enabled) */
} dq_step_graph_stats_t;

/* A step graph for backend be (borrowed; it must outlive the step graph); name (copied) labels
 * its log lines ("unet"). Graphs are on when be has graph hooks and DQ_CUDA_GRAPHS is not "0".
 * Returns NULL (logged) when out of memory. */
dq_step_graph_t *dq_step_graph_new(dq_backend_t *be, const char *name);
/* Destroys the recorded graph (waiting for its launches) and the step graph; nulls *self_p.
 * NULL or *self_p NULL is fine. */
void dq_step_graph_destroy(dq_step_graph_t **self_p);

/* Runs one call of the step as the policy above says. key: nkey (0..DQ_STEP_GRAPH_MAX_KEY)
 * values that change whenever the step's shapes or memory do. Returns fn's result: 0, or -1
 * when the step failed (eagerly; the graph machinery's own failures are not returned). */
int dq_step_graph_run(dq_step_graph_t *self, const int64_t *key, int nkey, bool ready,
                      dq_step_fn fn, void *arg);
/* Drops the recorded graph now (its memory is about to be freed); the next ready call records
 * again. */
void dq_step_graph_invalidate(dq_step_graph_t *self);

/* True while graphs are in use: the caller may then stage per-call inputs in fixed memory. */
bool dq_step_graph_enabled(const dq_step_graph_t *self);
/* Copies the counters into *out. */
void dq_step_graph_stats(const dq_step_graph_t *self, dq_step_graph_stats_t *out);

#endif
