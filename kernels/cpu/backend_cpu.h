/* kernels/cpu/backend_cpu.h: the CPU backend (f32 compute, OpenBLAS sgemm, OpenMP). */
#ifndef DQ_BACKEND_CPU_H
#define DQ_BACKEND_CPU_H

#include <stddef.h>

#include "kernels/backend.h"

/* Workspace when dq_backend_cpu_new gets 0: 128 MiB holds the Winograd-transformed weights of
 * the SD 1.5 UNet's widest 3x3 convolution that takes that path (1920 -> 640 channels at 32x32:
 * 16 x 640 x 1920 floats, 79 MiB) next to a chunk of 300 input and output tiles, so they are
 * transformed once per call (with 64 MiB: twice per chunk, and that convolution was only 8%
 * faster than im2col); 3x3 im2col bands of several output rows for 512 input channels at width
 * 512 (the VAE decoder's last blocks at 512x512); the packed K and V of attention at 4096
 * tokens (6 MiB for 16 heads of 40). Pages never touched are never backed by memory. */
#define DQ_CPU_DEFAULT_WORKSPACE ((size_t) 128 << 20)

/* Creates the CPU backend. workspace_bytes (0: the default) is allocated once now and reused by
 * every op that needs scratch; ops tile their work to fit and fail with a message naming the
 * size they need when even one tile does not fit. n_threads > 0 sets the OpenMP and OpenBLAS
 * thread counts (process-wide settings); 0 keeps what the environment says.
 * Weight operands may be F32, F16 or BF16: linear and conv2d convert F16/BF16 weights block by
 * block into the workspace during the op (half the resident memory, a conversion per call);
 * loaders that prefer speed convert to F32 once with dq_convert_to_f32.
 * Threads: OpenMP runs the elementwise loops and the attention tiles; sgemm threads itself
 * (OpenBLAS's OpenMP build shares the pool), except where Winograd convolution calls it inside
 * an OpenMP region, one single-threaded product per thread (with the pthread build of OpenBLAS
 * that path is not taken). Set OMP_WAIT_POLICY=passive in the environment of the process
 * (libgomp reads it at load time, so the library cannot): otherwise OpenMP workers spin after
 * each loop and steal the cores from the sgemm that follows; measured on 2 cores, a 320->2560
 * linear ran 2.8x slower without it. Logs one info line when it is unset.
 * Returns NULL (logged) when out of memory. Destroy with dq_backend_destroy. */
dq_backend_t *dq_backend_cpu_new(size_t workspace_bytes, int n_threads);

#endif
