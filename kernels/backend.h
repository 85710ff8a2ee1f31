/* kernels/backend.h: the backend interface (buffers, transfers, one function pointer per op). */
#ifndef DQ_BACKEND_H
#define DQ_BACKEND_H

/*
 * The engine's runtime in one page
 * --------------------------------
 * - A tensor (kernels/tensor.h) is a plain struct: dtype, shape in PyTorch order (outermost
 *   first), byte strides, a data pointer and the buffer it lives in.
 * - A backend (this file) is a table of function pointers (dq_backend_ops_t) plus a context.
 *   It allocates buffers in its own memory (host RAM for the CPU, device memory for CUDA), moves
 *   bytes between host and those buffers, and runs ops. The CPU backend is kernels/cpu/; a CUDA
 *   backend fills the same table.
 * - Ops are called through kernels/ops.h (dq_op_linear, dq_op_conv2d, ...). Those wrappers check
 *   shapes, dtypes and contiguity once for every backend, ask the backend's supports_op, and then
 *   call the table entry, so a backend's op may assume valid arguments. Every op writes into an
 *   output tensor the caller allocated (normally from a dq_arena_t, kernels/arena.h); an op never
 *   allocates. Scratch an op needs (im2col columns, attention score blocks, f16->f32 weight
 *   panels) comes from a workspace the backend allocated once when it was created, and the op
 *   tiles its work to fit.
 * - Ops on one backend run in call order; on the CPU they are synchronous and
 *   dq_backend_synchronize is a no-op, on CUDA they are queued on the backend's stream. A backend
 *   is used by one thread at a time.
 * - dtypes: activations (an op's inputs and outputs that are not weights) are F32, F16 or
 *   BF16, all of one op the same dtype; F32 everywhere, F16 and BF16 where the backend's
 *   supports_activation says so (the CPU backend takes F32 only; CUDA takes all three). Two ops
 *   convert: cpy's output may differ from its source (any of the three, any view), and get_rows
 *   writes any of them from its table.
 *   Weight operands (linear and conv2d weights, the get_rows table, cpy's source) may be F32,
 *   F16 or BF16; each backend says what it takes through supports_op. Biases and norm
 *   parameters are F32 whatever the activations (convert them at load time with
 *   dq_convert_to_f32). Reductions and accumulations run in f32 or wider; F16 is storage.
 *
 * How to add an op
 *   1. Add DQ_OP_<NAME> to dq_op_t and its name to the table in backend.c.
 *   2. Add a function pointer to dq_backend_ops_t (outputs last, all tensors explicit).
 *   3. Add dq_op_<name>() to kernels/ops.{h,c}: document the shapes, validate them, then call
 *      s_dispatch and the table entry.
 *   4. Implement it CPU-first in kernels/cpu/<name>.c, set it in the CPU table
 *      (kernels/cpu/backend_cpu.c) and accept it in the CPU supports_op.
 *   5. Test it in tests/unit/test_ops_cpu.c against a naive double-precision reference, and
 *      when a reference module exists, add a case to tests/reference/ops_fixture.py and
 *      tests/unit/test_ops_fixture.c. tests/unit/ops_harness.h (random inputs, guarded outputs,
 *      relative L2 checks) moves data only through upload/download, so a new backend's op test
 *      can reuse it and compare against the CPU backend.
 *
 * How a backend declares support
 *   supports_op(be, op, dtype) answers whether the backend runs op when its weight operand has
 *   the given dtype (F32 for ops without a weight operand). A NULL table entry means the op is
 *   not implemented at all. supports_activation(be, op, dtype) answers whether op runs with
 *   activations of dtype; F32 activations are always taken, and a NULL supports_activation
 *   means F32 only. dq_op_* fails with a clear message rather than running an op a backend
 *   does not support; a scheduler may instead pick another backend.
 */

#include <stdbool.h>
#include <stddef.h>

#include "kernels/tensor.h"

/* Every op of the runtime; see kernels/ops.h for shapes and semantics. */
typedef enum {
    DQ_OP_LINEAR,
    DQ_OP_MATMUL,
    DQ_OP_CONV2D,
    DQ_OP_GROUP_NORM,
    DQ_OP_GROUP_NORM_SILU,
    DQ_OP_LAYER_NORM,
    DQ_OP_SOFTMAX,
    DQ_OP_ATTENTION,
    DQ_OP_GELU,
    DQ_OP_GELU_QUICK,
    DQ_OP_SILU,
    DQ_OP_GEGLU,
    DQ_OP_ADD,
    DQ_OP_MUL,
    DQ_OP_SCALE,
    DQ_OP_UPSAMPLE_NEAREST2X,
    DQ_OP_CONCAT,
    DQ_OP_CPY,
    DQ_OP_GET_ROWS,
    DQ_OP_CONV2D_NHWC,
    DQ_OP_GROUP_NORM_NHWC,
    DQ_OP_GROUP_NORM_SILU_NHWC,
    DQ_OP_UPSAMPLE_NEAREST2X_NHWC,
    DQ_OP_COUNT
} dq_op_t;

/* "linear", "conv2d", ...; "?" when out of range. */
const char *dq_op_name(dq_op_t op);

typedef struct dq_backend dq_backend_t;
/* A recorded sequence of queued ops that can be replayed (a CUDA graph); each backend with graph
 * hooks defines the struct. */
typedef struct dq_backend_graph dq_backend_graph_t;

/* A block of backend memory. Tensors point into it; it outlives them. */
typedef struct dq_buffer {
    dq_backend_t *backend; /* borrowed: the backend that allocated it */
    void *base;            /* owned by the backend: start of the memory (a device pointer on
                              CUDA, never dereferenced on the host there) */
    size_t size;           /* bytes usable from base */
} dq_buffer_t;

/* Activation functions that share one elementwise signature. */
typedef int (*dq_unary_fn)(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y);
/* Broadcasting binary elementwise ops. */
typedef int (*dq_binary_fn)(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b,
                            dq_tensor_t *y);

/* The table a backend fills. Ops return 0, or -1 after logging what failed. Arguments have been
 * validated by kernels/ops.c (shapes, dtypes, contiguity), see the dq_op_* contracts there. */
typedef struct dq_backend_ops {
    const char *name; /* "cpu", "cuda" */
    /* Frees the context and everything the backend owns (not buffers handed out: free those
     * first). */
    void (*destroy)(dq_backend_t *be);

    /* Returns a buffer of at least size bytes, 64-byte aligned, or NULL (logged). */
    dq_buffer_t *(*buffer_alloc)(dq_backend_t *be, size_t size);
    void (*buffer_free)(dq_backend_t *be, dq_buffer_t *buf);
    /* Copies bytes between host memory and a tensor's (contiguous) data at byte offset. */
    int (*upload)(dq_backend_t *be, dq_tensor_t *dst, size_t offset, const void *src, size_t n);
    int (*download)(dq_backend_t *be, const dq_tensor_t *src, size_t offset, void *dst, size_t n);
    /* Waits until every queued op has finished. */
    int (*synchronize)(dq_backend_t *be);
    /* See "How a backend declares support" above. */
    bool (*supports_op)(const dq_backend_t *be, dq_op_t op, dq_dtype_t weight_dtype);
    /* May be NULL (F32 activations only). See "How a backend declares support" above. */
    bool (*supports_activation)(const dq_backend_t *be, dq_op_t op, dq_dtype_t act_dtype);

    /* One entry per op (see kernels/ops.h for shapes). */
    /* linear and conv2d take the residual of dq_op_*_residual: NULL, y itself (residual->data
     * == y->data), or a tensor not overlapping y. */
    int (*linear)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, const dq_tensor_t *residual, dq_tensor_t *y);
    int (*matmul)(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, bool trans_b,
                  float alpha, dq_tensor_t *y);
    int (*conv2d)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                  const dq_tensor_t *bias, int stride, int padding, const dq_tensor_t *residual,
                  dq_tensor_t *y);
    int (*group_norm)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
    int (*group_norm_silu)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                           const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
    int (*layer_norm)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                      const dq_tensor_t *beta, float eps, dq_tensor_t *y);
    dq_unary_fn softmax;
    int (*attention)(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                     const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y);
    dq_unary_fn gelu;
    dq_unary_fn gelu_quick;
    dq_unary_fn silu;
    dq_unary_fn geglu;
    dq_binary_fn add;
    dq_binary_fn mul;
    int (*scale)(dq_backend_t *be, const dq_tensor_t *x, float s, float b, dq_tensor_t *y);
    dq_unary_fn upsample_nearest2x;
    int (*concat)(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                  dq_tensor_t *y);
    dq_unary_fn cpy;
    int (*get_rows)(dq_backend_t *be, const dq_tensor_t *table, const dq_tensor_t *ids,
                    dq_tensor_t *y);
    /* The channels-last variants (NULL where the backend has none; see kernels/ops.h). */
    int (*conv2d_nhwc)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *w,
                       const dq_tensor_t *bias, int stride, int padding,
                       const dq_tensor_t *residual, dq_tensor_t *y);
    int (*group_norm_nhwc)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                           const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
    int (*group_norm_silu_nhwc)(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                                const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y);
    dq_unary_fn upsample_nearest2x_nhwc;

    /* Optional graph hooks (NULL where the backend has none, as on the CPU): record the ops
     * queued between graph_begin and graph_end instead of running them, then replay the
     * recording. Contracts at dq_backend_graph_* below. */
    int (*graph_begin)(dq_backend_t *be);
    int (*graph_end)(dq_backend_t *be, dq_backend_graph_t **graph);
    int (*graph_launch)(dq_backend_t *be, dq_backend_graph_t *graph);
    void (*graph_destroy)(dq_backend_t *be, dq_backend_graph_t *graph);
} dq_backend_ops_t;

/* A backend instance: its table and its private context. */
struct dq_backend {
    const dq_backend_ops_t *ops; /* borrowed: static table of the implementation */
    void *ctx;                   /* owned: implementation state (workspace, streams, ...) */
};

/* Destroys *be_p (through its table) and sets *be_p to NULL. NULL or *be_p NULL is fine. */
void dq_backend_destroy(dq_backend_t **be_p);
/* The backend's name ("cpu"). */
const char *dq_backend_name(const dq_backend_t *be);

/* Allocates a buffer of size bytes (> 0). Returns NULL (logged) when out of memory. */
dq_buffer_t *dq_backend_buffer_alloc(dq_backend_t *be, size_t size);
/* Frees *buf_p and sets it to NULL. NULL is fine. */
void dq_buffer_free(dq_buffer_t **buf_p);

/* Copies n host bytes into tensor dst's data starting at byte offset. dst must be contiguous
 * and [offset, offset+n) inside it. Returns 0, or -1 (logged) on a bad range or device error. */
int dq_tensor_upload(dq_backend_t *be, dq_tensor_t *dst, size_t offset, const void *src, size_t n);
/* Copies n bytes from tensor src at byte offset to host memory. Same rules as upload. */
int dq_tensor_download(dq_backend_t *be, const dq_tensor_t *src, size_t offset, void *dst,
                       size_t n);
/* Waits for the backend's queued work. Returns 0, or -1 on a device fault. */
int dq_backend_synchronize(dq_backend_t *be);
/* True when be implements op for the weight dtype (see above). */
bool dq_backend_supports_op(const dq_backend_t *be, dq_op_t op, dq_dtype_t weight_dtype);
/* True when be runs op with activations of act_dtype: always for F32, otherwise what the
 * backend's supports_activation says (false without one). */
bool dq_backend_supports_activation(const dq_backend_t *be, dq_op_t op, dq_dtype_t act_dtype);
/* True when be runs every op of the runtime with activations of act_dtype: what a network
 * checks before keeping all its activations in that dtype. */
bool dq_backend_supports_activation_all(const dq_backend_t *be, dq_dtype_t act_dtype);
/* The same check with its message: true when act_dtype is an activation dtype (F32, F16, BF16)
 * that be takes for every op; else false with "<who>: activations in ..." in err. */
bool dq_backend_activation_usable(const dq_backend_t *be, dq_dtype_t act_dtype, const char *who,
                                  char *err, size_t errlen);

/* Whether a network on be runs channels last (kernels/ops.h, "Channels last"): by default where
 * its activations are F16 or BF16 and be has the channels-last ops for conv weights of
 * matrix_dtype (CUDA, where cuDNN's tensor-core convolutions take NHWC data as it is);
 * DQ_LAYOUT=nchw or =nhwc in the environment decides instead (nhwc only where be has the ops;
 * for bisecting, and for testing the channels-last networks on the CPU). */
bool dq_backend_use_nhwc(const dq_backend_t *be, dq_dtype_t matrix_dtype, dq_dtype_t act_dtype);

/* Graphs: the ops of a repeated step recorded once and replayed (kernels/step_graph.h decides
 * when). A recording holds every argument as it was (tensor addresses, sizes, scalars), so a
 * replay touches the same memory: keep it allocated and re-record when it moves. */
/* What dq_backend_graph_* return when the backend has no graph hooks (nothing is logged). */
#define DQ_BACKEND_UNSUPPORTED (-2)
/* True when be has the graph hooks. */
bool dq_backend_graph_supported(const dq_backend_t *be);
/* Starts recording on the calling thread: ops queued until dq_backend_graph_end are recorded,
 * not run. While recording, upload, download, synchronize and buffer alloc/free are not allowed
 * (they fail and spoil the recording). Returns 0, -1 (logged), or DQ_BACKEND_UNSUPPORTED. */
int dq_backend_graph_begin(dq_backend_t *be);
/* Stops recording. On success *graph is a replayable graph owned by the caller (free it with
 * dq_backend_graph_destroy) and nothing has run yet. On failure (an op spoiled the recording,
 * the graph could not be built) the recording is ended and dropped, *graph is NULL, the reason
 * is logged, -1 is returned, and the backend works as before. DQ_BACKEND_UNSUPPORTED without
 * hooks. */
int dq_backend_graph_end(dq_backend_t *be, dq_backend_graph_t **graph);
/* Queues one replay of graph after the work already queued. Returns 0, -1 (logged) or
 * DQ_BACKEND_UNSUPPORTED. */
int dq_backend_graph_launch(dq_backend_t *be, dq_backend_graph_t *graph);
/* Waits for queued replays, frees *graph_p and sets it to NULL. NULL or *graph_p NULL is fine. */
void dq_backend_graph_destroy(dq_backend_t *be, dq_backend_graph_t **graph_p);

#endif
