/* kernels/cuda/layout.cu: ops that move elements: upsample x2 (NCHW or NHWC), concat, strided
 * copy, row gather, on F32, F16 or BF16 activations (cpy and get_rows convert from any of the
 * three). */
#include <limits.h>

#include "kernels/cuda/cuda_internal.h"

/* x: [P, H, W] planes -> y: [P, 2H, 2W], y[p, oh, ow] = x[p, oh/2, ow/2]. */
template <typename T>
__global__ void s_upsample_kernel(const T *x, T *y, int64_t planes, int64_t h, int64_t w) {
    int64_t n = planes * 4 * h * w, w2 = 2 * w;
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t ow = i % w2, r = i / w2; /* r = p * 2H + oh */
        int64_t oh = r % (2 * h), p = r / (2 * h);
        y[i] = x[(p * h + oh / 2) * w + ow / 2];
    }
}

template <typename T>
static int s_upsample_launch(cudaStream_t st, int dev, const void *x, void *y, int64_t planes,
                             int64_t h, int64_t w) {
    DQ_CUDA_LAUNCH(s_upsample_kernel<T>, dq_cuda_blocks(planes * 4 * h * w), DQ_CUDA_THREADS, 0,
                   st, (const T *) x, (T *) y, planes, h, w);
    DQ_CUDA_LAUNCHED(dev, "upsample_nearest2x");
    return 0;
}

int dq_cuda_upsample_nearest2x(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    return DQ_CUDA_BY_ACT(x->dtype, s_upsample_launch, ctx->stream, ctx->device, x->data,
                          y->data, x->shape[0] * x->shape[1], x->shape[2], x->shape[3]);
}

/* x: [N, H, W, C] -> y: [N, 2H, 2W, C], y[n, oh, ow, c] = x[n, oh/2, ow/2, c]. */
template <typename T>
__global__ void s_upsample_nhwc_kernel(const T *x, T *y, int64_t n, int64_t h, int64_t w,
                                       int64_t c) {
    int64_t total = n * 4 * h * w * c, w2 = 2 * w;
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t ch = i % c, r = i / c; /* r = (img * 2H + oh) * 2W + ow */
        int64_t ow = r % w2;
        r /= w2;
        int64_t oh = r % (2 * h), img = r / (2 * h);
        y[i] = x[((img * h + oh / 2) * w + ow / 2) * c + ch];
    }
}

template <typename T>
static int s_upsample_nhwc_launch(cudaStream_t st, int dev, const void *x, void *y, int64_t n,
                                  int64_t h, int64_t w, int64_t c) {
    DQ_CUDA_LAUNCH(s_upsample_nhwc_kernel<T>, dq_cuda_blocks(n * 4 * h * w * c), DQ_CUDA_THREADS, 0,
                   st, (const T *) x, (T *) y, n, h, w, c);
    DQ_CUDA_LAUNCHED(dev, "upsample_nearest2x_nhwc");
    return 0;
}

int dq_cuda_upsample_nearest2x_nhwc(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    // x: [N, H, W, C], y: [N, 2H, 2W, C]
    return DQ_CUDA_BY_ACT(x->dtype, s_upsample_nhwc_launch, ctx->stream, ctx->device, x->data,
                          y->data, x->shape[0], x->shape[1], x->shape[2], x->shape[3]);
}

/* Viewed as [outer, la + lb]: each row of y is a row of a then a row of b. */
template <typename T>
__global__ void s_concat_kernel(const T *a, const T *b, T *y, int64_t outer, int64_t la,
                                int64_t lb) {
    int64_t l = la + lb, n = outer * l;
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t o = i / l, j = i - o * l;
        y[i] = j < la ? a[o * la + j] : b[o * lb + (j - la)];
    }
}

template <typename T>
static int s_concat_launch(cudaStream_t st, int dev, const void *a, const void *b, void *y,
                           int64_t outer, int64_t la, int64_t lb) {
    DQ_CUDA_LAUNCH(s_concat_kernel<T>, dq_cuda_blocks(outer * (la + lb)), DQ_CUDA_THREADS, 0, st,
                   (const T *) a, (const T *) b, (T *) y, outer, la, lb);
    DQ_CUDA_LAUNCHED(dev, "concat");
    return 0;
}

int dq_cuda_concat(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                   dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    int64_t outer = 1;
    for (int i = 0; i < dim; i++) outer *= a->shape[i];
    int64_t la = dq_tensor_nelements(a) / outer, lb = dq_tensor_nelements(b) / outer;
    return DQ_CUDA_BY_ACT(a->dtype, s_concat_launch, ctx->stream, ctx->device, a->data, b->data,
                          y->data, outer, la, lb);
}

/* One float of dtype at p (F32, F16 or BF16). */
__device__ __forceinline__ float s_load(const char *p, int dtype) {
    if (dtype == DQ_DTYPE_F16) return dq_cuda_half_bits(*(const uint16_t *) p);
    if (dtype == DQ_DTYPE_BF16) return dq_cuda_bf16_bits(*(const uint16_t *) p);
    return *(const float *) p;
}

/* x's shape right-aligned to 4 dims and its byte strides (0 for the padding dims). */
typedef struct {
    int64_t s[4];
    int64_t st[4];
} s_view_t;

/* F16 -> F16 (BF16 -> BF16) goes through f32 too: the widening is exact and the rounding back
 * restores the same bits. */
template <typename T>
__global__ void s_cpy_kernel(const char *x, s_view_t v, int dtype, T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t r = i, off = 0;
        for (int d = 3; d >= 0; d--) {
            off += (r % v.s[d]) * v.st[d];
            r /= v.s[d];
        }
        dq_cuda_st(y + i, s_load(x + off, dtype));
    }
}

template <typename T>
static int s_cpy_launch(cudaStream_t st, int dev, const void *x, const s_view_t *v,
                        dq_dtype_t dtype, void *y, int64_t n) {
    DQ_CUDA_LAUNCH(s_cpy_kernel<T>, dq_cuda_blocks(n), DQ_CUDA_THREADS, 0, st, (const char *) x,
                   *v, (int) dtype, (T *) y, n);
    DQ_CUDA_LAUNCHED(dev, "cpy");
    return 0;
}

int dq_cuda_cpy(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    s_view_t v;
    int off = 4 - x->ndim;
    for (int i = 0; i < 4; i++) {
        v.s[i] = i < off ? 1 : x->shape[i - off];
        v.st[i] = i < off ? 0 : (int64_t) x->strides[i - off];
    }
    return DQ_CUDA_BY_ACT(y->dtype, s_cpy_launch, ctx->stream, ctx->device, x->data, &v, x->dtype,
                          y->data, dq_tensor_nelements(y));
}

/* y[r, :] = table[ids[r], :] in y's type T; an id outside [0, v) leaves its row unwritten and
 * records the smallest such position in *bad (initialised to INT_MAX). */
template <typename T>
__global__ void s_get_rows_kernel(const char *table, int dtype, const int32_t *ids, int64_t v,
                                  int64_t d, int64_t esz, T *y, int64_t nrows, int *bad) {
    int64_t n = nrows * d;
    for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x) {
        int64_t r = i / d, j = i - r * d;
        int32_t id = ids[r];
        if (id < 0 || id >= v) {
            if (j == 0) atomicMin(bad, (int) r);
            continue;
        }
        dq_cuda_st(y + i, s_load(table + ((int64_t) id * d + j) * esz, dtype));
    }
}

template <typename T>
static int s_get_rows_launch(dq_cuda_ctx_t *ctx, const dq_tensor_t *table, const int32_t *ids,
                             int64_t v, int64_t d, void *y, int64_t n) {
    DQ_CUDA_LAUNCH(s_get_rows_kernel<T>, dq_cuda_blocks(n * d), DQ_CUDA_THREADS, 0, ctx->stream,
                   (const char *) table->data, (int) table->dtype, ids, v, d,
                   (int64_t) dq_dtype_size(table->dtype), (T *) y, n, ctx->flag);
    DQ_CUDA_LAUNCHED(ctx->device, "get_rows");
    return 0;
}

int dq_cuda_get_rows(dq_backend_t *be, const dq_tensor_t *table, const dq_tensor_t *ids,
                     dq_tensor_t *y) {
    dq_cuda_ctx_t *ctx = dq_cuda_ctx(be);
    DQ_CUDA_ENTER(ctx);
    int64_t v = table->shape[0], d = table->shape[1], n = dq_tensor_nelements(ids);
    if (n > INT_MAX) {
        dq_error("get_rows: %lld ids, more than the CUDA backend's limit of %d", (long long) n,
                 INT_MAX);
        return -1;
    }
    const int init = INT_MAX;
    DQ_CUDA_CHECK(ctx->device, cudaMemcpyAsync(ctx->flag, &init, sizeof init,
                                               cudaMemcpyHostToDevice, ctx->stream));
    if (DQ_CUDA_BY_ACT(y->dtype, s_get_rows_launch, ctx, table, (const int32_t *) ids->data, v, d,
                       y->data, n))
        return -1;
    /* Bad ids are bad input, reported like the CPU backend does: one sync per call (get_rows runs
     * once per text encoding, so the wait costs nothing that matters). */
    int bad = INT_MAX;
    DQ_CUDA_CHECK(ctx->device, cudaMemcpyAsync(&bad, ctx->flag, sizeof bad,
                                               cudaMemcpyDeviceToHost, ctx->stream));
    DQ_CUDA_CHECK(ctx->device, cudaStreamSynchronize(ctx->stream));
    if (bad != INT_MAX) {
        int32_t id = 0;
        DQ_CUDA_CHECK(ctx->device, cudaMemcpy(&id, (const int32_t *) ids->data + bad, sizeof id,
                                              cudaMemcpyDeviceToHost));
        dq_error("get_rows: id %d at position %d outside table '%s' of %lld rows", id, bad,
                 table->name, (long long) v);
        return -1;
    }
    return 0;
}
