/* kernels/cuda/graph.cu: the backend's graph hooks as CUDA graphs: stream capture of the backend's
 * stream, instantiation, launch and destruction (kernels/backend.h, kernels/step_graph.h).
 *
 * What may be captured (checked for every op file, docs/cuda.md "CUDA graphs"): kernel launches,
 * cudaMemcpyAsync between device buffers, cuBLAS calls (host-pointer alpha/beta are baked into
 * the graph; cuBLAS works in the explicit workspace set at creation, so it never allocates) and
 * cuDNN's legacy cudnnConvolutionForward (its scratch is the backend's workspace; descriptors and
 * the cached algorithm choice are host work). Not capturable: upload, download, synchronize,
 * buffer alloc/free (they synchronize or allocate) and get_rows (it reads its bad-id flag back);
 * none of them is called inside the UNet's recorded step. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

/* A recorded step: the instantiated executable graph. */
struct dq_backend_graph {
    cudaGraphExec_t exec; /* owned */
    size_t nodes;         /* nodes recorded, for the log */
};

/* "instantiate: <why>" text for a cudaGraphInstantiateResult. */
static const char *s_instantiate_why(cudaGraphInstantiateResult r) {
    switch (r) {
    case cudaGraphInstantiateSuccess: return "success";
    case cudaGraphInstantiateError: return "error (see the CUDA error)";
    case cudaGraphInstantiateInvalidStructure: return "invalid structure (a cycle?)";
    case cudaGraphInstantiateNodeOperationNotSupported: return "a node's operation is not supported";
    case cudaGraphInstantiateMultipleDevicesNotSupported: return "nodes on several devices";
    default: return "unknown result";
    }
}

int dq_cuda_graph_begin(dq_backend_t *be) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    /* Thread-local: only this thread's unsafe calls (cudaMalloc, synchronous copies) spoil the
     * capture, so another thread's backend on another device may keep allocating meanwhile. */
    cudaError_t rc = cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal);
    if (rc != cudaSuccess) {
        cudaGetLastError();
        dq_warn("cuda: cannot start a graph capture on device %d: %s", ctx->device,
                cudaGetErrorString(rc));
        return -1;
    }
    return 0;
}

int dq_cuda_graph_end(dq_backend_t *be, dq_backend_graph_t **out) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    *out = NULL;
    cudaSetDevice(ctx->device);
    cudaGraph_t graph = NULL;
    /* Always called after a begin, even when an op failed: it takes the stream out of capture
     * mode. cudaErrorStreamCaptureInvalidated means a call during the capture was not allowed
     * (its own error was logged by the op that made it). */
    cudaError_t rc = cudaStreamEndCapture(ctx->stream, &graph);
    if (rc != cudaSuccess || !graph) {
        cudaGetLastError();
        if (graph) cudaGraphDestroy(graph);
        dq_warn("cuda: graph capture on device %d failed: %s", ctx->device,
                rc != cudaSuccess ? cudaGetErrorString(rc) : "no graph returned");
        return -1;
    }
    size_t nodes = 0;
    cudaGraphGetNodes(graph, NULL, &nodes);
    cudaGraphInstantiateParams p;
    memset(&p, 0, sizeof p);
    /* Upload now, on the stream: the first launch follows at once and need not do it. */
    p.flags = cudaGraphInstantiateFlagUpload;
    p.uploadStream = ctx->stream;
    cudaGraphExec_t exec = NULL;
    rc = cudaGraphInstantiateWithParams(&exec, graph, &p);
    cudaGraphDestroy(graph); /* the executable graph is independent of it */
    if (rc != cudaSuccess || p.result_out != cudaGraphInstantiateSuccess) {
        cudaGetLastError();
        if (exec) cudaGraphExecDestroy(exec);
        dq_warn("cuda: instantiating a graph of %zu nodes on device %d failed: %s (%s)", nodes,
                ctx->device, cudaGetErrorString(rc), s_instantiate_why(p.result_out));
        return -1;
    }
    dq_backend_graph_t *g = (dq_backend_graph_t *) calloc(1, sizeof *g);
    if (!g) {
        cudaGraphExecDestroy(exec);
        dq_warn("cuda: out of host memory for a graph record");
        return -1;
    }
    g->exec = exec;
    g->nodes = nodes;
    dq_debug("cuda: graph of %zu nodes recorded on device %d", nodes, ctx->device);
    *out = g;
    return 0;
}

int dq_cuda_graph_launch(dq_backend_t *be, dq_backend_graph_t *graph) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    DQ_CUDA_CHECK(ctx->device, cudaGraphLaunch(graph->exec, ctx->stream));
    return 0;
}

void dq_cuda_graph_destroy(dq_backend_t *be, dq_backend_graph_t *graph) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    cudaSetDevice(ctx->device);
    /* Launches still queued read the graph's memory: wait for them first. */
    cudaError_t rc = cudaStreamSynchronize(ctx->stream);
    cudaError_t drc = cudaGraphExecDestroy(graph->exec);
    if (rc == cudaSuccess) rc = drc;
    if (rc != cudaSuccess)
        dq_error("cuda: destroying a graph of %zu nodes on device %d: %s", graph->nodes,
                 ctx->device, cudaGetErrorString(rc));
    free(graph);
}
