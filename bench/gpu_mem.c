/* bench/gpu_mem.c: used memory of a CUDA device (total - free) or of this process (resident set). */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#ifdef DQ_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "bench/gpu_mem.h"

static int s_rss(size_t *bytes, char *err, size_t errlen) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    int got = f ? fscanf(f, "%lu %lu", &size, &resident) : 0;
    if (f) fclose(f);
    if (got != 2) {
        snprintf(err, errlen, "/proc/self/statm: cannot read the resident set");
        return -1;
    }
    *bytes = (size_t) resident * (size_t) sysconf(_SC_PAGESIZE);
    return 0;
}

int dq_bench_mem_used(int cuda_index, size_t *bytes, char *err, size_t errlen) {
    if (cuda_index < 0) return s_rss(bytes, err, errlen);
#ifdef DQ_HAVE_CUDA
    size_t free_b = 0, total_b = 0;
    cudaError_t rc = cudaSetDevice(cuda_index);
    if (rc == cudaSuccess) rc = cudaMemGetInfo(&free_b, &total_b);
    if (rc != cudaSuccess) {
        snprintf(err, errlen, "cuda:%d: cudaMemGetInfo: %s", cuda_index, cudaGetErrorString(rc));
        return -1;
    }
    *bytes = total_b - free_b;
    return 0;
#else
    snprintf(err, errlen, "cuda:%d: this build has no CUDA (configure --with-cuda)", cuda_index);
    return -1;
#endif
}
