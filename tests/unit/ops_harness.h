/* tests/unit/ops_harness.h: random tensors, guarded outputs and error norms for op tests. */
#ifndef DQ_OPS_HARNESS_H
#define DQ_OPS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/arena.h"
#include "kernels/backend.h"
#include "kernels/tensor.h"

/* Floats of sentinel on each side of every output tensor. */
#define DQT_GUARD 16

/* One backend and an arena on it; every tensor of a test comes from here. Data moves only
 * through dq_tensor_upload/download so the same tests can run on any backend. */
typedef struct dqt_env dqt_env_t;

/* A CPU backend with workspace_bytes of workspace (small values force the ops to tile). */
dqt_env_t *dqt_env_new(size_t workspace_bytes);
/* Checks every output's guards one last time, then frees everything. */
void dqt_env_free(dqt_env_t **env_p);
dq_backend_t *dqt_backend(dqt_env_t *env);
dq_arena_t *dqt_arena(dqt_env_t *env);

/* An F32 input filled with uniform random values in [lo, hi). */
dq_tensor_t *dqt_input(dqt_env_t *env, int ndim, const int64_t *shape, float lo, float hi);
/* An F32 tensor holding a copy of data (host floats, contiguous). */
dq_tensor_t *dqt_input_from(dqt_env_t *env, int ndim, const int64_t *shape, const float *data);
/* A weight of dtype F32, F16 or BF16, uniform in [-scale, scale). */
dq_tensor_t *dqt_weight(dqt_env_t *env, dq_dtype_t dtype, int ndim, const int64_t *shape,
                        float scale);
/* An F32 output poisoned with NaN and fenced by DQT_GUARD sentinel floats on each side. */
dq_tensor_t *dqt_output(dqt_env_t *env, int ndim, const int64_t *shape);

/* The tensor's values as f32 on the host (any float dtype; freed with the env). */
float *dqt_host(dqt_env_t *env, const dq_tensor_t *t);

/* Asserts that t is finite everywhere, that ||t - ref|| / ||ref|| <= tol, and that no output's
 * guards were touched. what names the case in the failure message. Returns the error. */
double dqt_expect_close(dqt_env_t *env, const dq_tensor_t *t, const double *ref, double tol,
                        const char *what);
/* Asserts that every output's guard floats still hold the sentinel. */
void dqt_check_guards(dqt_env_t *env);

#endif
