/* tests/emul/include/cuda_runtime_api.h: the CUDA runtime API as the emulation provides it (the
 * subset kernels/cuda/ calls; tests/emul/runtime.cpp implements it on the host). */
#ifndef DQ_EMUL_CUDA_RUNTIME_API_H
#define DQ_EMUL_CUDA_RUNTIME_API_H

#include <cstddef>

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
                           const std::function<void()> &body);
/* The kernel's address, whether it is named (a function) or held in a function pointer (as a
 * launcher does for a template-id with several arguments, which a macro argument cannot hold):
 * what cudaFuncSetAttribute recorded. */
template <class F>
inline const void *dq_emul_kernel_addr(F *fn) {
    return reinterpret_cast<const void *>(fn);
}
#define DQ_EMUL_LAUNCH(kernel, grid, block, smem, stream, ...)                                   \
    dq_emul_launch_kernel(dq_emul_kernel_addr(kernel), dim3(grid), dim3(block), (smem),          \
                          (stream), [&] { kernel(__VA_ARGS__); })

#endif
