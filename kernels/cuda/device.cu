/* kernels/cuda/device.cu: the CUDA devices this process can see. */
#include "kernels/cuda/device.h"

#include <cuda_runtime_api.h>
#include <stdio.h>

int dq_cuda_device_count(char *err, size_t errlen) {
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc == cudaErrorNoDevice || rc == cudaErrorInsufficientDriver) return 0;
    if (rc != cudaSuccess) {
        if (err) snprintf(err, errlen, "cudaGetDeviceCount: %s", cudaGetErrorString(rc));
        return 0;
    }
    return count;
}

int dq_cuda_device_info(int index, dq_cuda_device_info_t *info, char *err, size_t errlen) {
    cudaDeviceProp prop;
    cudaError_t rc = cudaGetDeviceProperties(&prop, index);
    if (rc != cudaSuccess) {
        snprintf(err, errlen, "cudaGetDeviceProperties(%d): %s", index, cudaGetErrorString(rc));
        return -1;
    }
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->total_memory = prop.totalGlobalMem;
    info->sm_major = prop.major;
    info->sm_minor = prop.minor;
    info->multiprocessors = prop.multiProcessorCount;
    return 0;
}
