/* kernels/safetensors_write.c: streaming safetensors writer (header first, then data in order). */
#include "config.h"

#include "kernels/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dq_st_writer_t {
    FILE *f;          /* owned */
    char *path;       /* owned */
    uint64_t total;   /* bytes of data the header announced */
    uint64_t written; /* bytes of data written so far */
};

static void s_fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_fail(char *err, size_t errlen, const char *path, const char *fmt, ...) {
    if (!err || !errlen) return;
    int n = snprintf(err, errlen, "%s: ", path);
    if (n < 0 || (size_t) n >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
}

/* Builds the header JSON; returns NULL with err on a bad tensor description. */
static json_t *s_header(const char *path, const dq_st_tensor_t *tensors, size_t count,
                        const char *const *meta, size_t n_meta, uint64_t *total, char *err,
                        size_t errlen) {
    json_t *root = json_object();
    uint64_t at = 0;
    if (n_meta) {
        json_t *m = json_object();
        json_object_set_new(root, "__metadata__", m);
        for (size_t i = 0; i < n_meta; i++)
            json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1]));
    }
    for (size_t i = 0; i < count; i++) {
        const dq_st_tensor_t *t = &tensors[i];
        if (!t->name || !strcmp(t->name, "__metadata__") || json_object_get(root, t->name)) {
            s_fail(err, errlen, path, "tensor %zu: missing, reserved or duplicate name '%s'", i,
                   t->name ? t->name : "(null)");
            goto fail;
        }
        if (t->ndim < 0 || t->ndim > DQ_ST_MAX_DIMS || (unsigned) t->dtype >= DQ_DTYPE_COUNT) {
            s_fail(err, errlen, path, "tensor '%s': bad dtype or rank", t->name);
            goto fail;
        }
        json_t *shape = json_array();
        uint64_t bytes = dq_dtype_size(t->dtype);
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) {
                json_decref(shape);
                s_fail(err, errlen, path, "tensor '%s': negative dimension", t->name);
                goto fail;
            }
            bytes *= (uint64_t) t->shape[d];
            json_array_append_new(shape, json_integer(t->shape[d]));
        }
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(dq_dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[II]", (json_int_t) at, (json_int_t) (at + bytes)));
        json_object_set_new(root, t->name, e);
        at += bytes;
    }
    *total = at;
    return root;
fail:
    json_decref(root);
    return NULL;
}

dq_st_writer_t *dq_st_writer_new(const char *path, const dq_st_tensor_t *tensors, size_t count,
                                 const char *const *meta, size_t n_meta, char *err, size_t errlen) {
    uint64_t total = 0;
    json_t *root = s_header(path, tensors, count, meta, n_meta, &total, err, errlen);
    if (!root) return NULL;
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) {
        s_fail(err, errlen, path, "out of memory building the header");
        return NULL;
    }
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t) 7; /* the format allows trailing spaces in the header */
    dq_st_writer_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(path))) {
        free(self);
        free(text);
        s_fail(err, errlen, path, "out of memory");
        return NULL;
    }
    self->total = total;
    self->f = fopen(path, "wb");
    if (!self->f) {
        s_fail(err, errlen, path, "cannot create: %s", strerror(errno));
        free(text);
        free(self->path);
        free(self);
        return NULL;
    }
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t) ((uint64_t) padded >> (8 * i));
    int ok = fwrite(lenbuf, 1, 8, self->f) == 8 && fwrite(text, 1, len, self->f) == len;
    for (size_t i = len; ok && i < padded; i++)
        ok = fputc(' ', self->f) != EOF;
    free(text);
    if (!ok) {
        s_fail(err, errlen, path, "write failed: %s", strerror(errno));
        fclose(self->f);
        self->f = NULL;
        dq_st_writer_close(&self, NULL, 0);
        return NULL;
    }
    return self;
}

int dq_st_writer_write(dq_st_writer_t *self, const void *data, size_t nbytes, char *err,
                       size_t errlen) {
    if (nbytes > self->total - self->written) {
        s_fail(err, errlen, self->path, "%zu bytes written beyond the %llu the header announced",
               nbytes, (unsigned long long) self->total);
        return -1;
    }
    if (nbytes && fwrite(data, 1, nbytes, self->f) != nbytes) {
        s_fail(err, errlen, self->path, "write failed: %s", strerror(errno));
        return -1;
    }
    self->written += nbytes;
    return 0;
}

int dq_st_writer_close(dq_st_writer_t **self_p, char *err, size_t errlen) {
    if (!self_p || !*self_p) return 0;
    dq_st_writer_t *self = *self_p;
    int rc = self->f ? 0 : -1; /* no file: a failed header write already reported */
    if (rc == 0 && self->written != self->total) {
        s_fail(err, errlen, self->path, "only %llu of %llu data bytes written",
               (unsigned long long) self->written, (unsigned long long) self->total);
        rc = -1;
    }
    if (self->f && fclose(self->f) != 0 && rc == 0) {
        s_fail(err, errlen, self->path, "close failed: %s", strerror(errno));
        rc = -1;
    }
    if (rc < 0) unlink(self->path);
    free(self->path);
    free(self);
    *self_p = NULL;
    return rc;
}

int dq_safetensors_write(const char *path, const dq_st_tensor_t *tensors, size_t count,
                         const char *const *meta, size_t n_meta, char *err, size_t errlen) {
    dq_st_writer_t *w = dq_st_writer_new(path, tensors, count, meta, n_meta, err, errlen);
    if (!w) return -1;
    for (size_t i = 0; i < count; i++) {
        size_t n = (size_t) dq_st_numel(tensors[i].shape, tensors[i].ndim) *
                   dq_dtype_size(tensors[i].dtype);
        if (dq_st_writer_write(w, tensors[i].data, n, err, errlen) < 0) {
            dq_st_writer_close(&w, NULL, 0);
            return -1;
        }
    }
    return dq_st_writer_close(&w, err, errlen);
}
