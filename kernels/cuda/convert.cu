/* kernels/cuda/convert.cu: dtype conversion and bias adds shared by the matrix ops (and the f16
 * conv's widening with its bias in one pass). */
#include "kernels/cuda/cuda_internal.h"

__global__ void s_convert_kernel(const void *src, int dtype, int64_t n, float *dst) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        if (dtype == DQ_DTYPE_F16)
            dst[i] = dq_cuda_half_bits(((const uint16_t *) src)[i]);
        else if (dtype == DQ_DTYPE_BF16)
            dst[i] = dq_cuda_bf16_bits(((const uint16_t *) src)[i]);
        else
            dst[i] = ((const float *) src)[i];
    }
}

int dq_cuda_convert_to_f32(cudaStream_t st, int dev, const void *src, dq_dtype_t dtype,
                           int64_t n, float *dst) {
    DQ_CUDA_LAUNCH(s_convert_kernel, dq_cuda_blocks(n), DQ_CUDA_THREADS, 0, st, src, (int) dtype, n,
                   dst);
    DQ_CUDA_LAUNCHED(dev, "convert_to_f32");
    return 0;
}

/* Widening F16/BF16 to f32 is exact, so each element rounds once, to T (a value of T's own
 * dtype comes back unchanged). */
template <typename T>
__global__ void s_to_16_kernel(const void *src, int dtype, int64_t n, T *dst) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        float v;
        if (dtype == DQ_DTYPE_F16)
            v = dq_cuda_half_bits(((const uint16_t *) src)[i]);
        else if (dtype == DQ_DTYPE_BF16)
            v = dq_cuda_bf16_bits(((const uint16_t *) src)[i]);
        else
            v = ((const float *) src)[i];
        dq_cuda_st(dst + i, v);
    }
}

template <typename T>
static int s_to_16_launch(cudaStream_t st, int dev, const void *src, dq_dtype_t dtype, int64_t n,
                          void *dst) {
    DQ_CUDA_LAUNCH(s_to_16_kernel<T>, dq_cuda_blocks(n), DQ_CUDA_THREADS, 0, st, src, (int) dtype,
                   n, (T *) dst);
    DQ_CUDA_LAUNCHED(dev, "convert_to_16");
    return 0;
}

int dq_cuda_convert_to_16(cudaStream_t st, int dev, const void *src, dq_dtype_t dtype, int64_t n,
                          void *dst, dq_dtype_t dst_dtype) {
    return dst_dtype == DQ_DTYPE_BF16
               ? s_to_16_launch<__nv_bfloat16>(st, dev, src, dtype, n, dst)
               : s_to_16_launch<__half>(st, dev, src, dtype, n, dst);
}

/* The residual's index for y's element i (dq_cuda_bcast_t). */
__device__ __forceinline__ int64_t s_res_index(const dq_cuda_bcast_t &b, int64_t i) {
    return b.res_div == 1 ? i : (i / b.res_div) * b.res_mod + i % b.res_mod;
}

/* y[i] = r + bias of element i as b says; r or bias may be NULL (left out) and r may be y.
 * F16/BF16 values are widened, summed in f32 and rounded once. */
template <typename T>
__global__ void s_prefill_kernel(T *y, const T *r, const float *bias, dq_cuda_bcast_t b) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < b.n;
         i += (int64_t) gridDim.x * blockDim.x) {
        float rv = r ? dq_cuda_ld(r + s_res_index(b, i)) : 0.0f, v;
        if (!bias) {
            v = rv;
        } else {
            v = bias[(i / b.bias_div) % b.bias_mod];
            if (r) v = __fadd_rn(rv, v);
        }
        dq_cuda_st(y + i, v);
    }
}

template <typename T>
static int s_prefill_launch(cudaStream_t st, int dev, void *y, const void *r, const float *bias,
                            dq_cuda_bcast_t b) {
    DQ_CUDA_LAUNCH(s_prefill_kernel<T>, dq_cuda_blocks(b.n), DQ_CUDA_THREADS, 0, st, (T *) y,
                   (const T *) r, bias, b);
    DQ_CUDA_LAUNCHED(dev, "prefill");
    return 0;
}

int dq_cuda_prefill(cudaStream_t st, int dev, dq_dtype_t dtype, void *y, const void *residual,
                    const float *bias, dq_cuda_bcast_t b, float *beta) {
    *beta = residual || bias ? 1.0f : 0.0f;
    if (!bias && (!residual || residual == y)) return 0;
    return DQ_CUDA_BY_ACT(dtype, s_prefill_launch, st, dev, y, residual, bias, b);
}

/* dst[i] = f32(src[i]) + bias + res of element i as b says, bias and res each left out when
 * NULL, res may be dst. The widening is exact, so the bias sum rounds once, as widening and then
 * adding the bias in two kernels did. */
__global__ void s_widen_bias_kernel(const __half *src, const float *bias, const float *res,
                                    dq_cuda_bcast_t b, float *dst) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < b.n;
         i += (int64_t) gridDim.x * blockDim.x) {
        float v = __half2float(src[i]);
        if (bias) v = __fadd_rn(v, bias[(i / b.bias_div) % b.bias_mod]);
        dst[i] = res ? __fadd_rn(v, res[s_res_index(b, i)]) : v;
    }
}

int dq_cuda_widen_f16_bias(cudaStream_t st, int dev, const void *src, const float *bias,
                           const float *residual, dq_cuda_bcast_t b, float *dst) {
    DQ_CUDA_LAUNCH(s_widen_bias_kernel, dq_cuda_blocks(b.n), DQ_CUDA_THREADS, 0, st,
                   (const __half *) src, bias, residual, b, dst);
    DQ_CUDA_LAUNCHED(dev, "widen_f16_bias");
    return 0;
}
