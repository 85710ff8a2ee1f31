/* kernels/cuda/device.h: the CUDA devices this process can see (built only with the CUDA backend). */
#ifndef DQ_CUDA_DEVICE_H
#define DQ_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char name[256];          /* e.g. "NVIDIA H100 80GB HBM3" */
    size_t total_memory;     /* bytes */
    int sm_major, sm_minor;  /* compute capability */
    int multiprocessors;
} dq_cuda_device_info_t;

/* Number of visible CUDA devices; 0 when there is no driver or no device (never an error: a
 * machine without GPUs simply has none). On a driver fault, writes the reason into err. */
int dq_cuda_device_count(char *err, size_t errlen);

/* Fills info for device `index`. Returns 0, or -1 with the CUDA error text in err. */
int dq_cuda_device_info(int index, dq_cuda_device_info_t *info, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
