/* kernels/clip_text.h: the CLIP text encoder (transformers CLIPTextModel) on the engine runtime. */
#ifndef DQ_CLIP_TEXT_H
#define DQ_CLIP_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/arena.h"
#include "kernels/backend.h"
#include "kernels/model_files.h"
#include "kernels/tensor.h"

/* The network (weights on a backend plus its config). It follows transformers' CLIPTextModel as
 * SD 1.x uses it: token + position embeddings, pre-LN encoder layers with causal self-attention
 * (no padding mask: the pipeline passes none, so padding positions get states too) and a
 * quick_gelu (or gelu) MLP, then final_layer_norm. */
typedef struct dq_clip_text dq_clip_text_t;

/* Builds the encoder from the text encoder part of `model` (either layout; weight names are
 * diffusers/transformers' "text_model.*"), storing matrices as matrix_dtype (F32, F16 or BF16,
 * see dq_weights_new). The model may be destroyed afterwards. Returns NULL with err set when a
 * weight is missing or misshapen, the config is unusable, or memory runs out. */
dq_clip_text_t *dq_clip_text_new(dq_backend_t *be, const dq_model_t *model, dq_dtype_t matrix_dtype,
                                 char *err, size_t errlen);

/* Frees the weights. Idempotent; nulls *self_p. */
void dq_clip_text_destroy(dq_clip_text_t **self_p);

/* Tokens per prompt (max_position_embeddings, 77 for SD 1.x) and the width of the states. */
int dq_clip_text_seq_len(const dq_clip_text_t *self);
int dq_clip_text_hidden(const dq_clip_text_t *self);
/* Encoder layers (the largest clip_skip is this number). */
int dq_clip_text_layers(const dq_clip_text_t *self);

/* Arena bytes dq_clip_text_encode needs for `batch` prompts (exactly its peak use when the arena
 * is empty on entry), and the tensor structs it takes. */
size_t dq_clip_text_arena_bytes(const dq_clip_text_t *self, int batch);
size_t dq_clip_text_arena_tensors(const dq_clip_text_t *self);

/* Encodes `batch` prompts of token ids (ids[batch * seq_len], host memory, as the tokenizer pads
 * them) into out ([batch, seq_len, hidden] F32 on the encoder's backend).
 * clip_skip 0 gives last_hidden_state; k > 0 gives final_layer_norm(hidden_states[-(k+1)]), i.e.
 * the last k layers are skipped, as diffusers' encode_prompt(clip_skip=k) computes it.
 * Temporaries come from `arena` and are released before returning (it must have
 * dq_clip_text_arena_bytes free). Returns 0, or -1 (logged) on an id outside the vocabulary, a
 * clip_skip outside 0..layers, a wrong out shape, a full arena or a backend failure. */
int dq_clip_text_encode(dq_clip_text_t *self, dq_arena_t *arena, const int32_t *ids, int batch,
                        int clip_skip, dq_tensor_t *out);

/* dq_clip_text_encode into host memory: out[batch * seq_len * hidden] floats. */
int dq_clip_text_encode_host(dq_clip_text_t *self, dq_arena_t *arena, const int32_t *ids, int batch,
                             int clip_skip, float *out);

#endif
