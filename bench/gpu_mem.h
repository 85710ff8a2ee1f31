/* bench/gpu_mem.h: how much memory a device has in use, for the benchmarks' peak-memory column.
 * On CUDA it is the device's total minus its free memory (cudaMemGetInfo: every allocation on the
 * device, the CUDA context, cuBLAS/cuDNN handles and loaded kernels included), the same number
 * bench/diffusers_gpu.py reads with torch.cuda.mem_get_info; on the CPU it is this process's
 * resident set. Subtract a baseline taken before the pipeline is made to get what it costs. */
#ifndef DQ_BENCH_GPU_MEM_H
#define DQ_BENCH_GPU_MEM_H

#include <stddef.h>

/* Bytes in use on CUDA device `cuda_index`, or by this process when cuda_index < 0 (the CPU).
 * Returns 0, or -1 with the reason in err (no such device, a build without CUDA, /proc missing).
 * The first CUDA call of a process creates its context, so take the baseline with this too. */
int dq_bench_mem_used(int cuda_index, size_t *bytes, char *err, size_t errlen);

#endif
