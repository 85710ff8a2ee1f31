/* tests/emul/include/cuda_runtime_api.h: the CUDA runtime API as the emulation provides it (the
 * subset kernels/cuda/ calls; tests/emul/runtime.cpp implements it on the host). */
#ifndef DQ_EMUL_CUDA_RUNTIME_API_H
#define DQ_EMUL_CUDA_RUNTIME_API_H

#include <cstddef>
#include <functional>
#include <tuple>

#include "tests/emul/emul_core.h"

enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

struct CUstream_st;
typedef struct CUstream_st *cudaStream_t;
#define cudaStreamNonBlocking 0x01

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
};

/* Stream capture into graphs: the stream's work is recorded instead of run, and a launch of the
 * instantiated graph runs the records in order. Inside a capture the synchronising calls
 * (cudaStreamSynchronize, cudaMemcpy, cudaMalloc) fail with cudaErrorStreamCaptureUnsupported
 * and spoil it, as they do on a GPU. */
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2,
};
struct CUgraph_st;
typedef struct CUgraph_st *cudaGraph_t;
struct CUgraphExec_st;
typedef struct CUgraphExec_st *cudaGraphExec_t;
struct CUgraphNode_st;
typedef struct CUgraphNode_st *cudaGraphNode_t;
enum cudaGraphInstantiateResult {
    cudaGraphInstantiateSuccess = 0,
    cudaGraphInstantiateError = 1,
    cudaGraphInstantiateInvalidStructure = 2,
    cudaGraphInstantiateNodeOperationNotSupported = 3,
    cudaGraphInstantiateMultipleDevicesNotSupported = 4,
};
#define cudaGraphInstantiateFlagUpload 2
struct cudaGraphInstantiateParams {
    unsigned long long flags;
    cudaStream_t uploadStream;
    cudaGraphNode_t errNode_out;
    cudaGraphInstantiateResult result_out;
};

enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t st);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *st, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t st);
cudaError_t cudaStreamSynchronize(cudaStream_t st);
cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph);
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2,
};
cudaError_t cudaStreamIsCapturing(cudaStream_t st, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count);
cudaError_t cudaGraphInstantiateWithParams(cudaGraphExec_t *exec, cudaGraph_t graph,
                                           cudaGraphInstantiateParams *params);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

/* Work queued on a stream: recorded when the stream is capturing, else run now. The library
 * emulations (cuBLAS, cuDNN) queue their calls through it too. Returns cudaSuccess. */
cudaError_t dq_emul_stream_op(cudaStream_t st, std::function<void()> op);
/* For the library emulations' synchronising calls: true (and the capture spoiled, the call to
 * fail) when this thread is capturing a graph. */
bool dq_emul_refused_in_capture(void);

/* Opting a kernel into more than 48 KiB of dynamic shared memory (the launch checks it). */
cudaError_t dq_emul_func_set_max_smem(const void *fn, int bytes);
template <class F>
cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
    return dq_emul_func_set_max_smem(reinterpret_cast<const void *>(fn), value);
}

/* A launch: checks the shape as a GPU would (threads per block, grid limits, dynamic shared
 * memory within 48 KiB or what the kernel opted into), then runs it at once; a refused launch
 * leaves its error for cudaGetLastError. */
void dq_emul_launch_kernel(const void *fn, dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                           std::function<void()> body);
/* The kernel's address, whether it is named (a function) or held in a function pointer (as a
 * launcher does for a template-id with several arguments, which a macro argument cannot hold):
 * what cudaFuncSetAttribute recorded. */
template <class F>
inline const void *dq_emul_kernel_addr(F *fn) {
    return reinterpret_cast<const void *>(fn);
}
/* The arguments are evaluated at the launch, as a GPU launch does (a graph records their
 * values): a launch recorded now and run later must not read the launcher's locals then. */
#define DQ_EMUL_LAUNCH(kernel, grid, block, smem, stream, ...)                                   \
    dq_emul_launch_kernel(dq_emul_kernel_addr(kernel), dim3(grid), dim3(block), (smem),          \
                          (stream), [fn = kernel, args = std::make_tuple(__VA_ARGS__)] {         \
                              std::apply(fn, args);                                              \
                          })

#endif
