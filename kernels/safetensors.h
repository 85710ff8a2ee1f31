/* kernels/safetensors.h: zero-copy reader and streaming writer of the safetensors file format.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N
 * bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"k": "v"}}, then the data section; offsets are relative to its start. */
#ifndef DQ_SAFETENSORS_H
#define DQ_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dtype.h"

/* Most dimensions a tensor may have; more is a format error. */
#define DQ_ST_MAX_DIMS 8
/* Largest JSON header accepted, in bytes (the reference implementation's limit is 100 MB). */
#define DQ_ST_MAX_HEADER (100u * 1000u * 1000u)

/* One tensor of a file. Everything is borrowed from the dq_safetensors_t it came from. */
typedef struct {
    const char *name;              /* borrowed: NUL-terminated, unique within the file */
    dq_dtype_t dtype;              /* element type */
    int ndim;                      /* 0..DQ_ST_MAX_DIMS; 0 is a scalar */
    int64_t shape[DQ_ST_MAX_DIMS]; /* sizes, outermost first; unused entries are 0 */
    const void *data;              /* borrowed: points into the mapping; may be unaligned */
    size_t nbytes;                 /* product(shape) * dq_dtype_size(dtype) */
} dq_st_tensor_t;

typedef struct dq_safetensors_t dq_safetensors_t;

/* Maps the file at `path` read-only and validates its header: length bounded and within the file,
 * strict JSON (duplicate names rejected), known dtypes, non-negative shapes whose byte size matches
 * data_offsets, offsets inside the data section, tensors that cover it without overlaps or holes,
 * and __metadata__ (if present) of string -> string. Returns NULL on any problem with a message in
 * err that names the file and what is wrong. */
dq_safetensors_t *dq_safetensors_open(const char *path, char *err, size_t errlen);

/* The same validation over a buffer in memory. `buf` is borrowed and must outlive the result;
 * `label` names the buffer in messages (copied). */
dq_safetensors_t *dq_safetensors_from_memory(const void *buf, size_t len, const char *label,
                                             char *err, size_t errlen);

/* Unmaps and frees; every dq_st_tensor_t taken from it dangles afterwards. Idempotent; nulls
 * *self_p. */
void dq_safetensors_destroy(dq_safetensors_t **self_p);

/* The file's path or the memory label. */
const char *dq_safetensors_path(const dq_safetensors_t *self);
/* Number of tensors. */
size_t dq_safetensors_count(const dq_safetensors_t *self);
/* Tensor i (0 <= i < count), in name order. */
const dq_st_tensor_t *dq_safetensors_at(const dq_safetensors_t *self, size_t i);
/* The tensor named `name`, or NULL when the file has none (binary search). */
const dq_st_tensor_t *dq_safetensors_find(const dq_safetensors_t *self, const char *name);
/* A __metadata__ value, or NULL when absent. */
const char *dq_safetensors_metadata(const dq_safetensors_t *self, const char *key);

/* Elements of a shape (1 for a scalar). The caller has validated it (no overflow). */
int64_t dq_st_numel(const int64_t *shape, int ndim);

/* ---- Writer: header first (it needs every name, dtype and shape), then data tensor by tensor,
 * so a caller can generate a multi-gigabyte file with one tensor in memory at a time. */
typedef struct dq_st_writer_t dq_st_writer_t;

/* Creates `path` and writes the header for `count` tensors (their data/nbytes fields are ignored;
 * sizes come from dtype and shape) plus `n_meta` metadata pairs meta[2k] -> meta[2k+1] (may be 0).
 * The header is padded with spaces to a multiple of 8 bytes so the data section is aligned. Data
 * must then follow in the order given. Returns NULL with a message in err (bad shape, duplicate
 * name, I/O). */
dq_st_writer_t *dq_st_writer_new(const char *path, const dq_st_tensor_t *tensors, size_t count,
                                 const char *const *meta, size_t n_meta, char *err, size_t errlen);

/* Appends `nbytes` of data for the current tensor(s); a tensor's data may come in several pieces.
 * Returns 0, or -1 on I/O error or when more bytes arrive than the header announced. */
int dq_st_writer_write(dq_st_writer_t *self, const void *data, size_t nbytes, char *err,
                       size_t errlen);

/* Finishes the file. Returns 0, or -1 when data is missing or on I/O error; on -1 the partial file
 * is removed. Frees the writer and nulls *self_p in either case (a NULL *self_p is a no-op
 * returning 0). */
int dq_st_writer_close(dq_st_writer_t **self_p, char *err, size_t errlen);

/* One-shot: writes `count` tensors whose data pointers are set. Returns 0 or -1 with err. */
int dq_safetensors_write(const char *path, const dq_st_tensor_t *tensors, size_t count,
                         const char *const *meta, size_t n_meta, char *err, size_t errlen);

#endif
