/* node/backend.c: the render-backend registry and the forwarding calls. */
#include "node/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dq_render_backend_t {
    const dq_render_ops_t *ops; /* static */
    void *ctx;                  /* owned; freed by ops->destroy */
};

static const char *s_rc_names[DQ_RENDER_RC_COUNT] = {"ok",    "stopped", "oom",
                                                     "model", "input",   "internal"};

const char *dq_render_rc_name(int rc) {
    return rc >= 0 && rc < DQ_RENDER_RC_COUNT ? s_rc_names[rc] : "unknown";
}

const char *dq_render_backend_names(void) {
    return "engine, null";
}

dq_render_backend_t *dq_render_backend_new(const char *name, const dq_render_params_t *params,
                                           char *err, size_t errlen) {
    const dq_render_ops_t *ops = NULL;
    void *ctx = NULL;
    if (strcmp(name, "null") == 0) {
        if (dq_render_null_create(params, &ops, &ctx, err, errlen) != 0) return NULL;
    } else if (strcmp(name, "engine") == 0) {
        if (dq_render_engine_create(params, &ops, &ctx, err, errlen) != 0) return NULL;
    } else {
        snprintf(err, errlen, "unknown backend '%s' (known: %s)", name, dq_render_backend_names());
        return NULL;
    }
    dq_render_backend_t *self = calloc(1, sizeof *self);
    if (!self) {
        ops->destroy(ctx);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->ops = ops;
    self->ctx = ctx;
    return self;
}

void dq_render_backend_destroy(dq_render_backend_t **self_p) {
    if (!self_p || !*self_p) return;
    (*self_p)->ops->destroy((*self_p)->ctx);
    free(*self_p);
    *self_p = NULL;
}

const char *dq_render_backend_name(const dq_render_backend_t *self) {
    return self->ops->name;
}

int dq_render_backend_load(dq_render_backend_t *self, const char *spec, char *err, size_t errlen) {
    return self->ops->load(self->ctx, spec, err, errlen);
}

int dq_render_backend_render(dq_render_backend_t *self, const dq_render_req_t *reqs, size_t n,
                             const dq_render_cb_t *cb, char *err, size_t errlen) {
    return self->ops->render(self->ctx, reqs, n, cb, err, errlen);
}
