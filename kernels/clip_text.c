/* kernels/clip_text.c: the CLIP text encoder (transformers CLIPTextModel) on the engine runtime.
 *
 * Follows transformers 5.x models/clip/modeling_clip.py: CLIPTextEmbeddings (token + position),
 * CLIPEncoderLayer (x + attn(ln1(x)), then x + mlp(ln2(x))), CLIPAttention (q/k/v/out with bias,
 * scale head_dim^-0.5, causal mask), CLIPMLP (fc1, act, fc2), final_layer_norm. */
#include "kernels/clip_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/ops.h"
#include "kernels/weights.h"

/* One CLIPEncoderLayer's parameters (borrowed from the weights). */
typedef struct {
    const dq_tensor_t *ln1_w, *ln1_b;
    const dq_tensor_t *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    const dq_tensor_t *ln2_w, *ln2_b;
    const dq_tensor_t *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} s_layer_t;

struct dq_clip_text {
    dq_backend_t *be;      /* borrowed: where the weights live and the ops run */
    dq_weights_t *weights; /* owned */
    dq_clip_config_t cfg;
    bool quick_gelu;                      /* hidden_act: quick_gelu (SD 1.x) or exact gelu */
    const dq_tensor_t *tok_emb, *pos_emb; /* borrowed: [vocab, D], [seq, D] */
    const dq_tensor_t *final_w, *final_b; /* borrowed: final_layer_norm [D] */
    s_layer_t *layers;                    /* owned: num_hidden_layers entries */
    int32_t *pos_ids;                     /* owned: 0 .. seq-1, transformers' position_ids */
};

/* Temporaries dq_clip_text_encode takes: ids, positions, x, pos_emb rows, then per layer
 * h, q, k, v, attn, mlp. */
#define S_TENSORS 10

static size_t s_al(size_t n) {
    return (n + 63) & ~(size_t) 63;
}

#define S_GET(field, ...)                                                                          \
    do {                                                                                           \
        if (!((field) = dq_weights_getf(self->weights, __VA_ARGS__))) {                            \
            snprintf(err, errlen, "clip text encoder: missing weight " __VA_ARGS__);               \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

dq_clip_text_t *dq_clip_text_new(dq_backend_t *be, const dq_model_t *model, dq_dtype_t matrix_dtype,
                                 char *err, size_t errlen) {
    dq_clip_text_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "clip text encoder: out of memory");
        return NULL;
    }
    self->be = be;
    self->cfg = model->cfg.clip;
    if (dq_clip_config_check(&self->cfg, model->path, err, errlen) < 0) goto fail;
    if (self->cfg.hidden_size % self->cfg.num_attention_heads) {
        snprintf(err, errlen, "clip text encoder: hidden_size %d is not a multiple of %d heads",
                 self->cfg.hidden_size, self->cfg.num_attention_heads);
        goto fail;
    }
    self->quick_gelu = strcmp(self->cfg.hidden_act, "quick_gelu") == 0;
    self->weights = dq_weights_new(be, model, DQ_PART_TEXT_ENCODER, matrix_dtype, err, errlen);
    if (!self->weights) goto fail;
    int n = self->cfg.num_hidden_layers, seq = self->cfg.max_position_embeddings;
    self->layers = calloc((size_t) n, sizeof *self->layers);
    self->pos_ids = calloc((size_t) seq, sizeof *self->pos_ids);
    if (!self->layers || !self->pos_ids) {
        snprintf(err, errlen, "clip text encoder: out of memory");
        goto fail;
    }
    for (int i = 0; i < seq; i++)
        self->pos_ids[i] = i;
    S_GET(self->tok_emb, "text_model.embeddings.token_embedding.weight");
    S_GET(self->pos_emb, "text_model.embeddings.position_embedding.weight");
    S_GET(self->final_w, "text_model.final_layer_norm.weight");
    S_GET(self->final_b, "text_model.final_layer_norm.bias");
    for (int i = 0; i < n; i++) {
        s_layer_t *l = &self->layers[i];
#define P "text_model.encoder.layers.%d."
        S_GET(l->ln1_w, P "layer_norm1.weight", i);
        S_GET(l->ln1_b, P "layer_norm1.bias", i);
        S_GET(l->q_w, P "self_attn.q_proj.weight", i);
        S_GET(l->q_b, P "self_attn.q_proj.bias", i);
        S_GET(l->k_w, P "self_attn.k_proj.weight", i);
        S_GET(l->k_b, P "self_attn.k_proj.bias", i);
        S_GET(l->v_w, P "self_attn.v_proj.weight", i);
        S_GET(l->v_b, P "self_attn.v_proj.bias", i);
        S_GET(l->o_w, P "self_attn.out_proj.weight", i);
        S_GET(l->o_b, P "self_attn.out_proj.bias", i);
        S_GET(l->ln2_w, P "layer_norm2.weight", i);
        S_GET(l->ln2_b, P "layer_norm2.bias", i);
        S_GET(l->fc1_w, P "mlp.fc1.weight", i);
        S_GET(l->fc1_b, P "mlp.fc1.bias", i);
        S_GET(l->fc2_w, P "mlp.fc2.weight", i);
        S_GET(l->fc2_b, P "mlp.fc2.bias", i);
#undef P
    }
    return self;
fail:
    dq_clip_text_destroy(&self);
    return NULL;
}

void dq_clip_text_destroy(dq_clip_text_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_clip_text_t *self = *self_p;
    *self_p = NULL;
    dq_weights_destroy(&self->weights);
    free(self->layers);
    free(self->pos_ids);
    free(self);
}

int dq_clip_text_seq_len(const dq_clip_text_t *self) {
    return self->cfg.max_position_embeddings;
}
int dq_clip_text_hidden(const dq_clip_text_t *self) {
    return self->cfg.hidden_size;
}
int dq_clip_text_layers(const dq_clip_text_t *self) {
    return self->cfg.num_hidden_layers;
}

size_t dq_clip_text_arena_bytes(const dq_clip_text_t *self, int batch) {
    size_t b = (size_t) (batch > 0 ? batch : 1), L = (size_t) self->cfg.max_position_embeddings;
    size_t D = (size_t) self->cfg.hidden_size, I = (size_t) self->cfg.intermediate_size;
    size_t f = sizeof(float);
    /* host variant's output, ids, positions, x, pos rows; per layer h, q, k, v, attn, mlp */
    return s_al(b * L * D * f) + s_al(b * L * 4) + s_al(L * 4) + s_al(b * L * D * f) +
           s_al(L * D * f) + 5 * s_al(b * L * D * f) + s_al(b * L * I * f);
}

size_t dq_clip_text_arena_tensors(const dq_clip_text_t *self) {
    (void) self;
    return S_TENSORS + 1;
}

/* One CLIPEncoderLayer on x [B, L, D] in place; temporaries from a (released on return). */
static int s_layer(dq_clip_text_t *self, const s_layer_t *l, dq_arena_t *a, dq_tensor_t *x) {
    dq_backend_t *be = self->be;
    const float eps = (float) self->cfg.layer_norm_eps;
    const int64_t B = x->shape[0], L = x->shape[1];
    dq_arena_mark_t m = dq_arena_mark(a);
    dq_tensor_t *h, *q, *k, *v, *att, *f;
    int rc = -1;
    if (!(h = dq_arena_like(a, x, "clip.h")) || !(q = dq_arena_like(a, x, "clip.q")) ||
        !(k = dq_arena_like(a, x, "clip.k")) || !(v = dq_arena_like(a, x, "clip.v")) ||
        !(att = dq_arena_like(a, x, "clip.attn")) ||
        !(f = dq_arena_tensor(a, DQ_DTYPE_F32, 3, (int64_t[]){B, L, self->cfg.intermediate_size},
                              "clip.mlp")))
        goto out;
    /* self-attention block: x = x + out_proj(attn(ln1(x))) */
    if (dq_op_layer_norm(be, x, l->ln1_w, l->ln1_b, eps, h) ||
        dq_op_linear(be, h, l->q_w, l->q_b, q) || dq_op_linear(be, h, l->k_w, l->k_b, k) ||
        dq_op_linear(be, h, l->v_w, l->v_b, v) ||
        dq_op_attention(be, q, k, v, self->cfg.num_attention_heads, true, att) ||
        dq_op_linear_residual(be, att, l->o_w, l->o_b, x, x))
        goto out;
    /* MLP block: x = x + fc2(act(fc1(ln2(x)))) */
    if (dq_op_layer_norm(be, x, l->ln2_w, l->ln2_b, eps, h) ||
        dq_op_linear(be, h, l->fc1_w, l->fc1_b, f) ||
        (self->quick_gelu ? dq_op_gelu_quick(be, f, f) : dq_op_gelu(be, f, f)) ||
        dq_op_linear_residual(be, f, l->fc2_w, l->fc2_b, x, x))
        goto out;
    rc = 0;
out:
    dq_arena_reset(a, m);
    return rc;
}

int dq_clip_text_encode(dq_clip_text_t *self, dq_arena_t *arena, const int32_t *ids, int batch,
                        int clip_skip, dq_tensor_t *out) {
    const int64_t L = self->cfg.max_position_embeddings, D = self->cfg.hidden_size;
    const int n_layers = self->cfg.num_hidden_layers;
    char d[96];
    if (batch < 1) {
        dq_error("clip text encoder: batch=%d, must be >= 1", batch);
        return -1;
    }
    if (clip_skip < 0 || clip_skip > n_layers) {
        dq_error("clip text encoder: clip_skip=%d, must be in 0..%d (the number of layers)",
                 clip_skip, n_layers);
        return -1;
    }
    if (out->dtype != DQ_DTYPE_F32 || out->ndim != 3 || out->shape[0] != batch ||
        out->shape[1] != L || out->shape[2] != D) {
        dq_error("clip text encoder: output %s must be [%d, %lld, %lld] F32",
                 dq_tensor_describe(out, d, sizeof d), batch, (long long) L, (long long) D);
        return -1;
    }
    for (int64_t i = 0; i < batch * L; i++) {
        if (ids[i] < 0 || ids[i] >= self->cfg.vocab_size) {
            dq_error("clip text encoder: prompt %lld token %lld has id %d, outside the vocabulary "
                     "[0, %d)",
                     (long long) (i / L), (long long) (i % L), (int) ids[i], self->cfg.vocab_size);
            return -1;
        }
    }
    dq_backend_t *be = self->be;
    dq_arena_mark_t m = dq_arena_mark(arena);
    int rc = -1;
    dq_tensor_t *ids_t, *pos_t, *x, *pe;
    if (!(ids_t = dq_arena_tensor(arena, DQ_DTYPE_I32, 1, (int64_t[]){batch * L}, "clip.ids")) ||
        !(pos_t = dq_arena_tensor(arena, DQ_DTYPE_I32, 1, (int64_t[]){L}, "clip.pos_ids")) ||
        !(x = dq_arena_tensor(arena, DQ_DTYPE_F32, 3, (int64_t[]){batch, L, D}, "clip.x")) ||
        !(pe = dq_arena_tensor(arena, DQ_DTYPE_F32, 2, (int64_t[]){L, D}, "clip.pos_emb")))
        goto out;
    /* embeddings: token_embedding(ids) + position_embedding(arange(L)), broadcast over B */
    if (dq_tensor_upload(be, ids_t, 0, ids, (size_t) (batch * L) * sizeof(int32_t)) ||
        dq_tensor_upload(be, pos_t, 0, self->pos_ids, (size_t) L * sizeof(int32_t)) ||
        dq_op_get_rows(be, self->tok_emb, ids_t, x) ||
        dq_op_get_rows(be, self->pos_emb, pos_t, pe) || dq_op_add(be, x, pe, x))
        goto out;
    /* clip_skip k: hidden_states[-(k+1)] is the output of layer n_layers - k */
    for (int i = 0; i < n_layers - clip_skip; i++)
        if (s_layer(self, &self->layers[i], arena, x) < 0) goto out;
    if (dq_op_layer_norm(be, x, self->final_w, self->final_b, (float) self->cfg.layer_norm_eps,
                         out))
        goto out;
    rc = 0;
out:
    if (rc < 0) dq_error("clip text encoder: encoding %d prompts failed", batch);
    dq_arena_reset(arena, m);
    return rc;
}

int dq_clip_text_encode_host(dq_clip_text_t *self, dq_arena_t *arena, const int32_t *ids, int batch,
                             int clip_skip, float *out) {
    if (batch < 1) {
        dq_error("clip text encoder: batch=%d, must be >= 1", batch);
        return -1;
    }
    dq_arena_mark_t m = dq_arena_mark(arena);
    const int64_t shape[3] = {batch, self->cfg.max_position_embeddings, self->cfg.hidden_size};
    dq_tensor_t *y = dq_arena_tensor(arena, DQ_DTYPE_F32, 3, shape, "clip.out");
    int rc = -1;
    if (y && dq_clip_text_encode(self, arena, ids, batch, clip_skip, y) == 0 &&
        dq_backend_synchronize(self->be) == 0 &&
        dq_tensor_download(self->be, y, 0, out, dq_tensor_nbytes(y)) == 0)
        rc = 0;
    dq_arena_reset(arena, m);
    return rc;
}
