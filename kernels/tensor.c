/* kernels/tensor.c: the tensor struct (dtype, shape, byte strides, data) and view helpers. */
#include "kernels/tensor.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

/* Row-major strides for t->shape, dimensions past ndim included. */
static void s_contiguous_strides(dq_tensor_t *t) {
    size_t step = dq_dtype_size(t->dtype);
    for (int i = DQ_TENSOR_MAX_DIMS - 1; i >= 0; i--) {
        t->strides[i] = step;
        step *= (size_t) t->shape[i];
    }
}

static int s_set_shape(dq_tensor_t *t, int ndim, const int64_t *shape, const char *what) {
    if (ndim < 1 || ndim > DQ_TENSOR_MAX_DIMS) {
        dq_error("%s: tensor '%s' ndim=%d, expected 1..%d", what, t->name, ndim,
                 DQ_TENSOR_MAX_DIMS);
        return -1;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) {
            dq_error("%s: tensor '%s' dim %d is %lld, expected >= 1", what, t->name, i,
                     (long long) shape[i]);
            return -1;
        }
    }
    t->ndim = ndim;
    for (int i = 0; i < DQ_TENSOR_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    return 0;
}

int dq_tensor_init(dq_tensor_t *t, dq_dtype_t dtype, int ndim, const int64_t *shape, void *data,
                   struct dq_buffer *buffer, const char *name) {
    memset(t, 0, sizeof *t);
    dq_tensor_set_name(t, name);
    t->dtype = dtype;
    if (dq_dtype_size(dtype) == 0) {
        dq_error("tensor init: '%s' has unknown dtype %d", t->name, (int) dtype);
        return -1;
    }
    if (s_set_shape(t, ndim, shape, "tensor init") != 0) return -1;
    s_contiguous_strides(t);
    t->data = data;
    t->buffer = buffer;
    return 0;
}

void dq_tensor_set_name(dq_tensor_t *t, const char *name) {
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
}

int64_t dq_tensor_nelements(const dq_tensor_t *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t dq_tensor_nbytes(const dq_tensor_t *t) {
    return (size_t) dq_tensor_nelements(t) * dq_dtype_size(t->dtype);
}

bool dq_tensor_is_contiguous(const dq_tensor_t *t) {
    size_t step = dq_dtype_size(t->dtype);
    for (int i = t->ndim - 1; i >= 0; i--) {
        /* A dimension of size 1 never advances, so its stride is irrelevant. */
        if (t->shape[i] != 1 && t->strides[i] != step) return false;
        step *= (size_t) t->shape[i];
    }
    return true;
}

bool dq_tensor_same_shape(const dq_tensor_t *a, const dq_tensor_t *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

int64_t dq_tensor_nrows(const dq_tensor_t *t) {
    return dq_tensor_nelements(t) / t->shape[t->ndim - 1];
}

const char *dq_tensor_describe(const dq_tensor_t *t, char *buf, size_t len) {
    if (len == 0) return buf;
    int off = snprintf(buf, len, "%s[", t->name);
    for (int i = 0; i < t->ndim && off >= 0 && (size_t) off < len; i++)
        off += snprintf(buf + off, len - (size_t) off, "%s%lld", i ? ", " : "",
                        (long long) t->shape[i]);
    if (off >= 0 && (size_t) off < len)
        snprintf(buf + off, len - (size_t) off, "] %s", dq_dtype_name(t->dtype));
    return buf;
}

int dq_tensor_reshape(dq_tensor_t *dst, const dq_tensor_t *src, int ndim, const int64_t *shape) {
    char d[96];
    if (!dq_tensor_is_contiguous(src)) {
        dq_error("reshape: %s is not contiguous", dq_tensor_describe(src, d, sizeof d));
        return -1;
    }
    dq_tensor_t v = *src;
    if (s_set_shape(&v, ndim, shape, "reshape") != 0) return -1;
    if (dq_tensor_nelements(&v) != dq_tensor_nelements(src)) {
        dq_error("reshape: %s has %lld elements, new shape has %lld",
                 dq_tensor_describe(src, d, sizeof d), (long long) dq_tensor_nelements(src),
                 (long long) dq_tensor_nelements(&v));
        return -1;
    }
    s_contiguous_strides(&v);
    *dst = v;
    return 0;
}

int dq_tensor_permute(dq_tensor_t *dst, const dq_tensor_t *src, const int *perm) {
    char d[96];
    unsigned seen = 0;
    for (int i = 0; i < src->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= src->ndim || (seen & (1u << perm[i]))) {
            dq_error("permute: bad permutation for %s at position %d",
                     dq_tensor_describe(src, d, sizeof d), i);
            return -1;
        }
        seen |= 1u << perm[i];
    }
    dq_tensor_t v = *src;
    for (int i = 0; i < src->ndim; i++) {
        v.shape[i] = src->shape[perm[i]];
        v.strides[i] = src->strides[perm[i]];
    }
    *dst = v;
    return 0;
}

int dq_tensor_slice(dq_tensor_t *dst, const dq_tensor_t *src, int dim, int64_t start,
                    int64_t len) {
    char d[96];
    if (dim < 0 || dim >= src->ndim || start < 0 || len < 1 || start + len > src->shape[dim]) {
        dq_error("slice: dim=%d start=%lld len=%lld does not fit %s", dim, (long long) start,
                 (long long) len, dq_tensor_describe(src, d, sizeof d));
        return -1;
    }
    dq_tensor_t v = *src;
    v.shape[dim] = len;
    v.data = (char *) src->data + (size_t) start * src->strides[dim];
    *dst = v;
    return 0;
}
