/* kernels/cuda/norm.cu: group norm (optionally fused with SiLU; channels in dim 1 or, for the
 * _nhwc entries, last) and layer norm on F32, F16 or BF16 activations; two-pass mean and biased
 * variance accumulated in double, as kernels/cpu/norm.c does, gamma and beta F32. */
#include "kernels/cuda/cuda_internal.h"
#include "kernels/cuda/reduce.h"

/* Mean and 1/sqrt(var + eps) of the n values x[at(i)], i < n, computed by the whole block. */
template <typename T, typename At>
__device__ void s_stats(const T *x, int64_t n, At at, float eps, double *sh, double *mean,
                        double *rstd) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        s += dq_cuda_ld(x + at(i));
    double mu = dq_cuda_block_sum(s, sh) / (double) n, v = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double d = dq_cuda_ld(x + at(i)) - mu;
        v += d * d;
    }
    v = dq_cuda_block_sum(v, sh);
    *mean = mu;
    *rstd = 1.0 / sqrt(v / (double) n + (double) eps);
}

/* One block per (n, group), over the group's cpg channels at each of s positions: x[ng] is
 * contiguous, channel-major, in NCHW (element i: channel i / s); in NHWC the group's channels
 * are cpg contiguous values at each position, c apart (element i: position i / cpg, channel
 * i % cpg). */
template <typename T>
__global__ void s_group_norm_kernel(const T *x, const float *gamma, const float *beta, int64_t c,
                                    int64_t s, int groups, float eps, int silu, int nhwc, T *y) {
    __shared__ double sh[32];
    const int64_t ng = blockIdx.x, cpg = c / groups, len = cpg * s, g = ng % groups;
    /* where the group starts, and its element i's offset from there */
    const int64_t base = nhwc ? (ng / groups) * s * c + g * cpg : ng * len;
    auto at = [=](int64_t i) { return nhwc ? (i / cpg) * c + i % cpg : i; };
    const T *xg = x + base;
    T *yg = y + base;
    double mean, rstd;
    s_stats(xg, len, at, eps, sh, &mean, &rstd);
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        int64_t ch = g * cpg + (nhwc ? i % cpg : i / s);
        /* y = x * a + b per channel, a and b in double (the CPU's fold). */
        double a = rstd * (gamma ? gamma[ch] : 1.0);
        double b = (beta ? beta[ch] : 0.0) - mean * a;
        float v = (float) (dq_cuda_ld(xg + at(i)) * a + b);
        dq_cuda_st(yg + at(i), silu ? v / (1.0f + expf(-v)) : v);
    }
}

template <typename T>
static int s_group_norm_launch(cudaStream_t st, int dev, const void *x, const float *gamma,
                               const float *beta, int64_t n, int64_t c, int64_t s, int groups,
                               float eps, bool silu, bool nhwc, void *y) {
    int64_t blocks = n * groups;
    if (blocks > INT32_MAX) {
        dq_error("group_norm: %lld groups in all, more than one launch takes", (long long) blocks);
        return -1;
    }
    DQ_CUDA_LAUNCH(s_group_norm_kernel<T>, (unsigned) blocks, 512, 0, st, (const T *) x, gamma,
                   beta, c, s, groups, eps, silu ? 1 : 0, nhwc ? 1 : 0, (T *) y);
    DQ_CUDA_LAUNCHED(dev, "group_norm");
    return 0;
}

int dq_cuda_group_norm_launch(cudaStream_t st, int dev, dq_dtype_t dtype, const void *x,
                              const float *gamma, const float *beta, int64_t n, int64_t c,
                              int64_t s, int groups, float eps, bool silu, bool nhwc, void *y) {
    return DQ_CUDA_BY_ACT(dtype, s_group_norm_launch, st, dev, x, gamma, beta, n, c, s, groups, eps,
                          silu, nhwc, y);
}

/* The four group norm entries: channels in dim 1 (x[N, C, S...]) or last (x[N, S..., C]). */
static int s_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                        const dq_tensor_t *beta, int groups, float eps, bool silu, bool nhwc,
                        dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    // x: [N, C, S...] or [N, S..., C], y: same; gamma, beta: [C] or NULL
    int64_t n = x->shape[0], c = x->shape[nhwc ? x->ndim - 1 : 1];
    int64_t s = dq_tensor_nelements(x) / (n * c);
    return dq_cuda_group_norm_launch(
        ctx->stream, ctx->device, x->dtype, x->data, gamma ? (const float *) gamma->data : NULL,
        beta ? (const float *) beta->data : NULL, n, c, s, groups, eps, silu, nhwc, y->data);
}

int dq_cuda_group_norm(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                       const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    return s_group_norm(be, x, gamma, beta, groups, eps, false, false, y);
}

int dq_cuda_group_norm_silu(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                            const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    return s_group_norm(be, x, gamma, beta, groups, eps, true, false, y);
}

int dq_cuda_group_norm_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                            const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    return s_group_norm(be, x, gamma, beta, groups, eps, false, true, y);
}

int dq_cuda_group_norm_silu_nhwc(dq_backend_t *be, const dq_tensor_t *x, const dq_tensor_t *gamma,
                                 const dq_tensor_t *beta, int groups, float eps, dq_tensor_t *y) {
    return s_group_norm(be, x, gamma, beta, groups, eps, true, true, y);
}

/* One block per row of d elements. */
template <typename T>
__global__ void s_layer_norm_kernel(const T *x, const float *gamma, const float *beta,
                                    int64_t d, float eps, T *y) {
    __shared__ double sh[32];
    const T *xr = x + (int64_t) blockIdx.x * d;
    T *yr = y + (int64_t) blockIdx.x * d;
    double mean, rstd;
    auto at = [](int64_t i) { return i; }; /* the row is contiguous */
    s_stats(xr, d, at, eps, sh, &mean, &rstd);
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
