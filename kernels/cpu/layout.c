/* kernels/cpu/layout.c: ops that move elements: upsample x2, concat, strided copy, row gather. */
#include <string.h>

#include "common/log.h"
#include "kernels/cpu/cpu_internal.h"
#include "kernels/dtype.h"

int dq_cpu_upsample_nearest2x(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    // x: [N, C, H, W] -> y: [N, C, 2H, 2W], y[.., 2h+dy, 2w+dx] = x[.., h, w]
    int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for if (planes * h * w >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < planes * h; r++) {
        const float *xr = xd + r * w;
        float *y0 = yd + r * 4 * w, *y1 = y0 + 2 * w;
        for (int64_t j = 0; j < w; j++) y0[2 * j] = y0[2 * j + 1] = xr[j];
        memcpy(y1, y0, (size_t) (2 * w) * sizeof *y1);
    }
    return 0;
}

int dq_cpu_upsample_nearest2x_nhwc(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    // x: [N, H, W, C] -> y: [N, 2H, 2W, C], y[n, 2h+dy, 2w+dx, :] = x[n, h, w, :]
    int64_t rows = x->shape[0] * x->shape[1], w = x->shape[2], c = x->shape[3];
    const float *xd = x->data;
    float *yd = y->data;
    size_t px = (size_t) c * sizeof *yd;
#pragma omp parallel for if (rows * w * c >= DQ_CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = xd + r * w * c;
        float *y0 = yd + r * 4 * w * c, *y1 = y0 + 2 * w * c;
        for (int64_t j = 0; j < w; j++) {
            memcpy(y0 + 2 * j * c, xr + j * c, px);
            memcpy(y0 + (2 * j + 1) * c, xr + j * c, px);
        }
        memcpy(y1, y0, (size_t) (2 * w) * px);
    }
    return 0;
}

int dq_cpu_concat(dq_backend_t *be, const dq_tensor_t *a, const dq_tensor_t *b, int dim,
                  dq_tensor_t *y) {
    (void) be;
    /* Viewed as [outer, len] blocks: a's and b's blocks alternate in y. */
    int64_t outer = 1;
    for (int i = 0; i < dim; i++) outer *= a->shape[i];
    int64_t la = dq_tensor_nelements(a) / outer, lb = dq_tensor_nelements(b) / outer;
    const float *ad = a->data, *bd = b->data;
    float *yd = y->data;
#pragma omp parallel for if (outer * (la + lb) >= DQ_CPU_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        memcpy(yd + o * (la + lb), ad + o * la, (size_t) la * sizeof *yd);
        memcpy(yd + o * (la + lb) + la, bd + o * lb, (size_t) lb * sizeof *yd);
    }
    return 0;
}

static inline float s_load(const char *p, dq_dtype_t t) {
    uint16_t h;
    switch (t) {
    case DQ_DTYPE_F16:
        memcpy(&h, p, 2);
        return dq_f16_to_f32(h);
    case DQ_DTYPE_BF16:
        memcpy(&h, p, 2);
        return dq_bf16_to_f32(h);
    default: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    }
}

int dq_cpu_cpy(dq_backend_t *be, const dq_tensor_t *x, dq_tensor_t *y) {
    (void) be;
    // x: any view [S0, S1, S2, S3] with byte strides; y: same shape, contiguous F32
    int64_t s[4];
    size_t st[4];
    int off = 4 - x->ndim;
    for (int i = 0; i < 4; i++) {
        s[i] = i < off ? 1 : x->shape[i - off];
        st[i] = i < off ? 0 : x->strides[i - off];
    }
    const char *xd = x->data;
    float *yd = y->data;
    int64_t outer = s[0] * s[1] * s[2];
#pragma omp parallel for if (outer * s[3] >= DQ_CPU_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        int64_t i2 = o % s[2], i1 = (o / s[2]) % s[1], i0 = o / (s[2] * s[1]);
        const char *src = xd + (size_t) i0 * st[0] + (size_t) i1 * st[1] + (size_t) i2 * st[2];
        float *dst = yd + o * s[3];
        for (int64_t j = 0; j < s[3]; j++) dst[j] = s_load(src + (size_t) j * st[3], x->dtype);
    }
    return 0;
}

int dq_cpu_get_rows(dq_backend_t *be, const dq_tensor_t *table, const dq_tensor_t *ids,
                    dq_tensor_t *y) {
    (void) be;
    // table: [V, D], ids: n I32, y: [n, D]
    int64_t v = table->shape[0], d = table->shape[1], n = dq_tensor_nelements(ids);
    const int32_t *id = ids->data;
    for (int64_t r = 0; r < n; r++) {
        if (id[r] < 0 || id[r] >= v) {
            dq_error("get_rows: id %d at position %lld outside table '%s' of %lld rows", id[r],
                     (long long) r, table->name, (long long) v);
            return -1;
        }
    }
    size_t row_bytes = (size_t) d * dq_dtype_size(table->dtype);
    float *yd = y->data;
    for (int64_t r = 0; r < n; r++)
        dq_convert_to_f32(yd + r * d, (const char *) table->data + (size_t) id[r] * row_bytes,
                          table->dtype, (size_t) d);
    return 0;
}
