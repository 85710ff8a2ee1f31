/* kernels/weights.h: one network's parameters as backend tensors, made once from a loaded model. */
#ifndef DQ_WEIGHTS_H
#define DQ_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/backend.h"
#include "kernels/model_files.h"
#include "kernels/tensor.h"

typedef struct dq_weights dq_weights_t;

/* Converts every weight of `part` of `model` and uploads it into one buffer of backend `be`.
 * Weights of 2 or more dimensions (linear and conv matrices, embeddings) are stored as
 * matrix_dtype (F32, F16 or BF16: what the backend's linear/conv2d/get_rows take); 1-D weights
 * (biases, norm scales and shifts) always as F32, since the ops require it. The model may be
 * destroyed afterwards. Returns NULL with err set when a dtype is unsupported or memory runs
 * out. */
dq_weights_t *dq_weights_new(dq_backend_t *be, const dq_model_t *model, dq_model_part_t part,
                             dq_dtype_t matrix_dtype, char *err, size_t errlen);
/* dq_weights_new, with conv_krsc every 4-D weight (a conv's [Co, Ci, kh, kw]) stored permuted as
 * [Co, kh, kw, Ci], the layout dq_op_conv2d_nhwc takes (permuted on the host while converting:
 * no extra memory, no device work). */
dq_weights_t *dq_weights_new_layout(dq_backend_t *be, const dq_model_t *model,
                                    dq_model_part_t part, dq_dtype_t matrix_dtype,
                                    bool conv_krsc, char *err, size_t errlen);

/* Frees the buffer and the tensors. Idempotent; nulls *self_p. */
void dq_weights_destroy(dq_weights_t **self_p);

/* The tensor named `name` (diffusers' state_dict name), or NULL after logging an error that names
 * it: networks look every weight up once when they are built and fail cleanly on NULL. */
const dq_tensor_t *dq_weights_get(const dq_weights_t *self, const char *name);

/* dq_weights_get with a printf-style name: ("down_blocks.%d.resnets.%d.conv1.weight", i, j). */
const dq_tensor_t *dq_weights_getf(const dq_weights_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Bytes of backend memory the weights take. */
size_t dq_weights_bytes(const dq_weights_t *self);

#endif
