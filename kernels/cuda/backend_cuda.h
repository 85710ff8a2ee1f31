/* kernels/cuda/backend_cuda.h: the CUDA backend (one device, one stream, cuBLAS, cuDNN). */
#ifndef DQ_BACKEND_CUDA_H
#define DQ_BACKEND_CUDA_H

#include <stddef.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the matrix ops (linear, matmul, conv2d, attention's two products) compute.
 * F32: IEEE f32 products with f32 accumulation on the CUDA cores; TF32 tensor cores are
 *      forbidden (cuBLAS pedantic math, cuDNN FMA math) so results stay within ~1e-6 of the
 *      CPU backend. F16/BF16 weights are widened to f32 in the workspace first.
 * F16: speed mode. F16 linear weights run as f16 x f16 products with f32 accumulation (the
 *      activation is rounded to f16 in the workspace); f32 products may use TF32 tensor cores.
 *      Expect relative errors near 1e-3.
 * Both modes take F16 activations (kernels/backend.h): then every matrix op runs f16 x f16
 * products with f32 accumulation on the f16 data as it is (F32/BF16 weights rounded to f16 in
 * the workspace), under the mode's math rules (f32 mode: no tensor cores, GEMM attention). */
typedef enum {
    DQ_CUDA_PRECISION_F32,
    DQ_CUDA_PRECISION_F16,
    DQ_CUDA_PRECISION_COUNT
} dq_cuda_precision_t;

/* "f32", "f16"; "?" when out of range. */
const char *dq_cuda_precision_name(dq_cuda_precision_t p);

/* Default workspace when dq_backend_cuda_new gets 0: 256 MiB holds attention score blocks of
 * several hundred queries for 8 heads at Lk = 4096 and a 1280x2560x3x3 conv weight widened to
 * f32 (118 MB) plus cuDNN's scratch. */
#define DQ_CUDA_DEFAULT_WORKSPACE ((size_t) 256 << 20)

/* Creates a CUDA backend on device `device`: one non-blocking stream, a cuBLAS and a cuDNN
 * handle bound to it, and workspace_bytes (0: the default) of device memory allocated once for
 * op scratch (ops tile to fit and fail naming the size they need when one tile does not).
 * Buffers come from cudaMalloc (never managed memory); upload and download copy on the stream
 * and wait for it. Ops are queued on the stream; dq_backend_synchronize waits for them.
 * Weight operands: linear, conv2d, cpy and get_rows take F32, F16 and BF16; activations F32 and
 * F16 (every op).
 * Returns NULL with the reason in err (device missing, out of memory, library init failure);
 * never aborts. Destroy with dq_backend_destroy (free buffers first). */
dq_backend_t *dq_backend_cuda_new(int device, size_t workspace_bytes,
                                  dq_cuda_precision_t precision, char *err, size_t errlen);

/* True when be is a CUDA backend (its table is this file's). */
int dq_backend_is_cuda(const dq_backend_t *be);

#ifdef __cplusplus
}
#endif
#endif
