/* kernels/step_graph.c: when a repeated step (the UNet's forward) runs op by op, is recorded as
 * a backend graph, or replays its recording; re-recorded when it changes, eager after a failure. */
#include "kernels/step_graph.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct dq_step_graph {
    dq_backend_t *be;                   /* borrowed */
    char name[32];                      /* for log lines */
    dq_backend_graph_t *graph;          /* owned: the recording, NULL when none */
    int64_t key[DQ_STEP_GRAPH_MAX_KEY]; /* the key the graph (or the last call) had */
    int nkey;                           /* -1 before the first call */
    dq_step_graph_stats_t stats;
};

dq_step_graph_t *dq_step_graph_new(dq_backend_t *be, const char *name) {
    dq_step_graph_t *g = calloc(1, sizeof *g);
    if (!g) {
        dq_error("step graph %s: out of memory", name);
        return NULL;
    }
    g->be = be;
    snprintf(g->name, sizeof g->name, "%s", name);
    g->nkey = -1;
    const char *env = getenv(DQ_STEP_GRAPH_ENV);
    if (!dq_backend_graph_supported(be)) {
        snprintf(g->stats.why_off, sizeof g->stats.why_off, "the %s backend has no graphs",
                 dq_backend_name(be));
    } else if (env && strcmp(env, "0") == 0) {
        snprintf(g->stats.why_off, sizeof g->stats.why_off, "%s=0", DQ_STEP_GRAPH_ENV);
        dq_info("step graph %s: graphs off (%s=0): every step runs op by op", g->name,
                DQ_STEP_GRAPH_ENV);
    } else {
        g->stats.enabled = true;
    }
    return g;
}

void dq_step_graph_destroy(dq_step_graph_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_step_graph_t *g = *self_p;
    *self_p = NULL;
    dq_backend_graph_destroy(g->be, &g->graph);
    free(g);
}

void dq_step_graph_invalidate(dq_step_graph_t *self) {
    if (!self->graph) return;
    dq_backend_graph_destroy(self->be, &self->graph);
    self->stats.drops++;
}

bool dq_step_graph_enabled(const dq_step_graph_t *self) { return self->stats.enabled; }

void dq_step_graph_stats(const dq_step_graph_t *self, dq_step_graph_stats_t *out) {
    *out = self->stats;
}

/* Graphs off for good: one warning with the reason, the graph (if any) freed. */
static void s_fall_back(dq_step_graph_t *g, const char *why) {
    dq_backend_graph_destroy(g->be, &g->graph);
    g->stats.enabled = false;
    snprintf(g->stats.why_off, sizeof g->stats.why_off, "%s", why);
    dq_warn("step graph %s: %s; running op by op from now on (the step itself is unaffected)",
            g->name, why);
}

static int s_eager(dq_step_graph_t *g, dq_step_fn fn, void *arg) {
    g->stats.eager++;
    return fn(arg);
}

/* Records fn and launches the recording. Returns fn's eager result when recording failed. */
static int s_capture(dq_step_graph_t *g, dq_step_fn fn, void *arg) {
    if (dq_backend_graph_begin(g->be) != 0) {
        s_fall_back(g, "the backend could not start recording");
        return s_eager(g, fn, arg);
    }
    int frc = fn(arg);
    dq_backend_graph_t *graph = NULL;
    int erc = dq_backend_graph_end(g->be, &graph); /* always: it ends the recording */
    if (frc != 0) {
        /* Nothing recorded ran, so running fn again is safe. If it fails eagerly too the error
         * is the step's own (bad input, out of memory), not the recording's. */
        dq_backend_graph_destroy(g->be, &graph);
        int rc = s_eager(g, fn, arg);
        if (rc == 0) s_fall_back(g, "an op failed while being recorded but not when run");
        return rc;
    }
    if (erc != 0) {
        s_fall_back(g, "the recording could not be turned into a graph");
        return s_eager(g, fn, arg);
    }
    g->graph = graph;
    g->stats.captures++;
    if (dq_backend_graph_launch(g->be, g->graph) != 0) {
        s_fall_back(g, "launching the new graph failed");
        return s_eager(g, fn, arg);
    }
    g->stats.launches++;
    return 0;
}

int dq_step_graph_run(dq_step_graph_t *self, const int64_t *key, int nkey, bool ready,
                      dq_step_fn fn, void *arg) {
    assert(nkey >= 0 && nkey <= DQ_STEP_GRAPH_MAX_KEY); /* a longer key is the caller's bug */
    if (!self->stats.enabled) return s_eager(self, fn, arg);
    if (nkey != self->nkey || (nkey && memcmp(key, self->key, (size_t) nkey * sizeof *key))) {
        dq_step_graph_invalidate(self);
        if (nkey) memcpy(self->key, key, (size_t) nkey * sizeof *key);
        self->nkey = nkey;
    }
    if (!ready) {
        dq_step_graph_invalidate(self);
        return s_eager(self, fn, arg);
    }
    if (!self->graph) return s_capture(self, fn, arg);
    if (dq_backend_graph_launch(self->be, self->graph) != 0) {
        s_fall_back(self, "launching the graph failed");
        return s_eager(self, fn, arg);
    }
    self->stats.launches++;
    return 0;
}
