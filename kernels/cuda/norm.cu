/* kernels/cuda/norm.cu: group norm (optionally fused with SiLU) and layer norm on F32 or F16
 * activations; two-pass mean and biased variance accumulated in double, as kernels/cpu/norm.c
 * does, gamma and beta F32. */
#include "kernels/cuda/cuda_internal.h"
#include "kernels/cuda/reduce.h"

/* Mean and 1/sqrt(var + eps) of the n values at x, computed by the whole block. */
template <typename T>
__device__ void s_stats(const T *x, int64_t n, float eps, double *sh, double *mean,
                        double *rstd) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += dq_cuda_ld(x + i);
    double mu = dq_cuda_block_sum(s, sh) / (double) n, v = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double d = dq_cuda_ld(x + i) - mu;
        v += d * d;
    }
    v = dq_cuda_block_sum(v, sh);
    *mean = mu;
    *rstd = 1.0 / sqrt(v / (double) n + (double) eps);
}

/* One block per (n, group): x[ng] holds cpg channels of s elements, contiguous. */
template <typename T>
__global__ void s_group_norm_kernel(const T *x, const float *gamma, const float *beta,
                                    int64_t cpg, int64_t s, int groups, float eps, int silu,
                                    T *y) {
    __shared__ double sh[32];
    int64_t ng = blockIdx.x, len = cpg * s;
    const T *xg = x + ng * len;
    T *yg = y + ng * len;
    double mean, rstd;
    s_stats(xg, len, eps, sh, &mean, &rstd);
    int64_t c0 = (ng % groups) * cpg;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        int64_t c = c0 + i / s;
        /* y = x * a + b per channel, a and b in double (the CPU's fold). */
        double a = rstd * (gamma ? gamma[c] : 1.0);
        double b = (beta ? beta[c] : 0.0) - mean * a;
        float v = (float) (dq_cuda_ld(xg + i) * a + b);
        dq_cuda_st(yg + i, silu ? v / (1.0f + expf(-v)) : v);
    }
}

template <typename T>
static int s_group_norm_launch(cudaStream_t st, int dev, const void *x, const float *gamma,
                               const float *beta, int64_t n, int64_t c, int64_t s, int groups,
                               float eps, bool silu, void *y) {
    int64_t blocks = n * groups;
    if (blocks > INT32_MAX) {
        dq_error("group_norm: %lld groups in all, more than one launch takes", (long long) blocks);
        return -1;
    }
    DQ_CUDA_LAUNCH(s_group_norm_kernel<T>, (unsigned) blocks, 512, 0, st, (const T *) x, gamma,
                   beta, c / groups, s, groups, eps, silu ? 1 : 0, (T *) y);
    DQ_CUDA_LAUNCHED(dev, "group_norm");
    return 0;
}

int dq_cuda_group_norm_launch(cudaStream_t st, int dev, dq_dtype_t dtype, const void *x,
                              const float *gamma, const float *beta, int64_t n, int64_t c,
                              int64_t s, int groups, float eps, bool silu, void *y) {
    return DQ_CUDA_BY_ACT(dtype, s_group_norm_launch, st, dev, x, gamma, beta, n, c, s, groups,
                          eps, silu, y);
}

static int s_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                        const dq_tensor_t *beta, int groups, float eps, bool silu,
                        dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    // x: [N, C, S...], y: same; gamma, beta: [C] or NULL
    int64_t n = x->shape[0], c = x->shape[1], s = dq_tensor_nelements(x) / (n * c);
    return dq_cuda_group_norm_launch(ctx->stream, ctx->device, x->dtype, x->data,
                                     gamma ? (const float *) gamma->data : NULL,
                                     beta ? (const float *) beta->data : NULL, n, c, s, groups,
                                     eps, silu, y->data);
}

int dq_cuda_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    return s_group_norm(be, x, gamma, beta, groups, eps, false, y);
}

int dq_cuda_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                            const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    return s_group_norm(be, x, gamma, beta, groups, eps, true, y);
}

/* One block per row of d elements. */
template <typename T>
__global__ void s_layer_norm_kernel(const T *x, const float *gamma, const float *beta,
                                    int64_t d, float eps, T *y) {
    __shared__ double sh[32];
    const T *xr = x + (int64_t) blockIdx.x * d;
    T *yr = y + (int64_t) blockIdx.x * d;
    double mean, rstd;
    s_stats(xr, d, eps, sh, &mean, &rstd);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        double v = (dq_cuda_ld(xr + i) - mean) * rstd;
        if (gamma) v = v * gamma[i] + beta[i];
        dq_cuda_st(yr + i, (float) v);
    }
}

template <typename T>
static int s_layer_norm_launch(cudaStream_t st, int dev, const void *x, const float *gamma,
                               const float *beta, int64_t rows, int64_t d, float eps, void *y) {
    if (rows > INT32_MAX) {
        dq_error("layer_norm: %lld rows, more than one launch takes", (long long) rows);
        return -1;
    }
    DQ_CUDA_LAUNCH(s_layer_norm_kernel<T>, (unsigned) rows, 256, 0, st, (const T *) x, gamma, beta,
                   d, eps, (T *) y);
    DQ_CUDA_LAUNCHED(dev, "layer_norm");
    return 0;
}

int dq_cuda_layer_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, float eps, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    return DQ_CUDA_BY_ACT(x->dtype, s_layer_norm_launch, ctx->stream, ctx->device, x->data,
                          gamma ? (const float *) gamma->data : NULL,
                          beta ? (const float *) beta->data : NULL, dq_tensor_nrows(x),
                          x->shape[x->ndim - 1], eps, y->data);
}
