/* kernels/weights.c: one network's parameters as backend tensors, made once from a loaded model. */
#include "kernels/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct dq_weights {
    dq_buffer_t *buffer;  /* owned: every tensor's data */
    dq_tensor_t *tensors; /* owned: one per weight, in the model's (sorted) order */
    char **names;         /* owned: full names (a tensor's own name field is truncated) */
    size_t count;
    size_t bytes;
};

static size_t s_align64(size_t n) { return (n + 63) & ~(size_t) 63; }

static dq_dtype_t s_stored_dtype(const dq_weight_t *w, dq_dtype_t matrix_dtype) {
    return w->ndim >= 2 ? matrix_dtype : DQ_DTYPE_F32;
}

/* Converts n elements of w into dst as dtype, through an f32 staging array. */
static int s_convert(void *dst, dq_dtype_t dtype, const dq_weight_t *w, size_t n, float *staging) {
    if (w->dtype == dtype) {
        memcpy(dst, w->data, n * dq_dtype_size(dtype));
        return 0;
    }
    if (dq_convert_to_f32(staging, w->data, w->dtype, n) < 0) return -1;
    if (dtype == DQ_DTYPE_F32) {
        memcpy(dst, staging, n * sizeof(float));
        return 0;
    }
    uint16_t *half = dst;
    for (size_t i = 0; i < n; i++)
        half[i] = dtype == DQ_DTYPE_F16 ? dq_f32_to_f16(staging[i]) : dq_f32_to_bf16(staging[i]);
    return 0;
}

/* src [co, ci, kh, kw] -> dst [co, kh, kw, ci], elements of esz bytes. */
static void s_to_krsc(void *dst, const void *src, const int64_t *shape, size_t esz) {
    const int64_t co = shape[0], ci = shape[1], kk = shape[2] * shape[3];
    const char *s = src;
    char *d = dst;
    for (int64_t o = 0; o < co; o++)
        for (int64_t c = 0; c < ci; c++)
            for (int64_t k = 0; k < kk; k++)
                memcpy(d + (size_t) ((o * kk + k) * ci + c) * esz,
                       s + (size_t) ((o * ci + c) * kk + k) * esz, esz);
}

dq_weights_t *dq_weights_new(dq_backend_t *be, const dq_model_t *model, dq_model_part_t part,
                             dq_dtype_t matrix_dtype, char *err, size_t errlen) {
    return dq_weights_new_layout(be, model, part, matrix_dtype, false, err, errlen);
}

dq_weights_t *dq_weights_new_layout(dq_backend_t *be, const dq_model_t *model,
                                    dq_model_part_t part, dq_dtype_t matrix_dtype,
                                    bool conv_krsc, char *err, size_t errlen) {
    if (matrix_dtype != DQ_DTYPE_F32 && matrix_dtype != DQ_DTYPE_F16 &&
        matrix_dtype != DQ_DTYPE_BF16) {
        snprintf(err, errlen, "weights: matrices can be stored as F32, F16 or BF16, not %s",
                 dq_dtype_name(matrix_dtype));
        return NULL;
    }
    const dq_model_component_t *comp = &model->parts[part];
    dq_weights_t *self = calloc(1, sizeof *self);
    if (!self) goto oom;
    self->count = comp->count;
    self->tensors = calloc(comp->count ? comp->count : 1, sizeof *self->tensors);
    self->names = calloc(comp->count ? comp->count : 1, sizeof *self->names);
    if (!self->tensors || !self->names) goto oom;

    /* One buffer for the part: sizes first, then convert tensor by tensor. */
    size_t total = 0, largest = 0;
    for (size_t i = 0; i < comp->count; i++) {
        const dq_weight_t *w = &comp->weights[i];
        if (w->ndim < 1 || w->ndim > DQ_TENSOR_MAX_DIMS) {
            snprintf(err, errlen, "weights: %s has %d dimensions; at most %d are supported",
                     w->name, w->ndim, DQ_TENSOR_MAX_DIMS);
            goto fail;
        }
        if (!dq_dtype_is_float(w->dtype)) {
            snprintf(err, errlen, "weights: %s is %s; expected a float type", w->name,
                     dq_dtype_name(w->dtype));
            goto fail;
        }
        size_t n = (size_t) dq_st_numel(w->shape, w->ndim);
        total += s_align64(n * dq_dtype_size(s_stored_dtype(w, matrix_dtype)));
        if (n > largest) largest = n;
    }
    self->bytes = total;
    self->buffer = dq_backend_buffer_alloc(be, total ? total : 64);
    if (!self->buffer) {
        snprintf(err, errlen, "weights: cannot allocate %zu MiB on the %s backend for the %s",
                 total >> 20, dq_backend_name(be), dq_model_part_name(part));
        goto fail;
    }

    float *staging = malloc((largest ? largest : 1) * sizeof(float));
    void *host = malloc((largest ? largest : 1) * sizeof(float));
    if (!staging || !host) {
        free(staging);
        free(host);
        goto oom;
    }
    size_t offset = 0;
    int rc = 0;
    for (size_t i = 0; i < comp->count && rc == 0; i++) {
        const dq_weight_t *w = &comp->weights[i];
        dq_dtype_t dtype = s_stored_dtype(w, matrix_dtype);
        size_t n = (size_t) dq_st_numel(w->shape, w->ndim);
        dq_tensor_t *t = &self->tensors[i];
        const bool krsc = conv_krsc && w->ndim == 4;
        const int64_t krsc_shape[4] = {w->shape[0], w->shape[2], w->shape[3], w->shape[1]};
        self->names[i] = strdup(w->name);
        if (!self->names[i] ||
            dq_tensor_init(t, dtype, w->ndim, krsc ? krsc_shape : w->shape,
                           (char *) self->buffer->base + offset, self->buffer, w->name) < 0 ||
            s_convert(host, dtype, w, n, staging) < 0) {
            snprintf(err, errlen, "weights: cannot convert %s", w->name);
            rc = -1;
            break;
        }
        /* the staging floats are free again: they hold the permuted copy */
        if (krsc) s_to_krsc(staging, host, w->shape, dq_dtype_size(dtype));
        if (dq_tensor_upload(be, t, 0, krsc ? (const void *) staging : host,
                             n * dq_dtype_size(dtype)) < 0) {
            snprintf(err, errlen, "weights: cannot upload %s", w->name);
            rc = -1;
        }
        offset += s_align64(n * dq_dtype_size(dtype));
    }
    free(staging);
    free(host);
    if (rc < 0) goto fail;
    return self;
oom:
    snprintf(err, errlen, "weights: out of memory");
fail:
    dq_weights_destroy(&self);
    return NULL;
}

void dq_weights_destroy(dq_weights_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_weights_t *self = *self_p;
    dq_buffer_free(&self->buffer);
    if (self->names)
        for (size_t i = 0; i < self->count; i++) free(self->names[i]);
    free(self->names);
    free(self->tensors);
    free(self);
    *self_p = NULL;
}

static int s_compare_name(const void *key, const void *elem) {
    return strcmp(key, *(char *const *) elem);
}

const dq_tensor_t *dq_weights_get(const dq_weights_t *self, const char *name) {
    /* The model's weights are sorted by name, and the names array keeps that order. */
    char **hit = bsearch(name, self->names, self->count, sizeof *self->names, s_compare_name);
    if (!hit) {
        dq_error("weights: no tensor named %s", name);
        return NULL;
    }
    return &self->tensors[hit - self->names];
}

const dq_tensor_t *dq_weights_getf(const dq_weights_t *self, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= sizeof name) {
        dq_error("weights: tensor name too long (%s...)", name);
        return NULL;
    }
    return dq_weights_get(self, name);
}

size_t dq_weights_bytes(const dq_weights_t *self) { return self->bytes; }
