/* kernels/model_files.h: loads an SD 1.x model, either a diffusers folder (model_index.json,
 * text_encoder/, unet/, vae/, scheduler/, tokenizer/) or a single-file LDM checkpoint
 * (.safetensors), into configs plus zero-copy weights named as diffusers names them, checked
 * against the manifests. */
#ifndef DQ_MODEL_FILES_H
#define DQ_MODEL_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dtype.h"
#include "kernels/model_config.h"
#include "kernels/safetensors.h"

/* One weight, ready for the networks. Everything is borrowed from the dq_model_t. */
typedef struct {
    const char *name; /* borrowed: diffusers/transformers state_dict name */
    dq_dtype_t dtype; /* F32, F16, BF16 or F64: convert with dq_convert_to_f32 */
    int ndim;
    int64_t shape[DQ_ST_MAX_DIMS]; /* as the manifest expects (a squeezed 1x1 conv has 2 dims) */
    const void *data;              /* borrowed: points into the file mapping; may be unaligned */
    size_t nbytes;
} dq_weight_t;

/* The weights of one network. */
typedef struct {
    char *file;           /* owned: the safetensors file they come from */
    dq_weight_t *weights; /* owned: exactly the manifest's parameters, sorted by name */
    size_t count;
    int64_t n_params;   /* elements over all weights */
    size_t n_extra;     /* tensors of the file (or part of it) that the network does not use */
    dq_dtype_t dtype;   /* the dtype of the most weights */
    int mixed_dtypes;   /* 1 when not every weight has `dtype` */
    char **owned_names; /* owned: names built by the LDM mapping (NULL for diffusers folders) */
} dq_model_component_t;

typedef enum { DQ_MODEL_DIFFUSERS, DQ_MODEL_SINGLE_FILE, DQ_MODEL_LAYOUT_COUNT } dq_model_layout_t;

typedef struct {
    dq_model_layout_t layout;
    char *path;             /* owned: the folder or file given */
    dq_model_configs_t cfg; /* from the config files, or inferred (single file) */
    /* The tokenizer's files: vocab.json + merges.txt when the folder has them, else tokenizer.json
     * (transformers 5 saves only that); unused ones and all three for a single file are NULL. */
    char *vocab_path;          /* owned: tokenizer/vocab.json, or NULL */
    char *merges_path;         /* owned: tokenizer/merges.txt, or NULL */
    char *tokenizer_json_path; /* owned: tokenizer/tokenizer.json, or NULL */
    dq_model_component_t parts[DQ_PART_COUNT];
    dq_safetensors_t *files[DQ_PART_COUNT]; /* owned mappings (a single file uses files[0]) */
} dq_model_t;

/* Loads the model at `path` (a folder or a .safetensors file). Every parameter the configs call for
 * must be present with the expected shape and a float dtype; a missing or misshapen tensor fails
 * with a message naming it and its file. Tensors nobody uses are counted and logged as a warning
 * (except known buffers such as text_model.embeddings.position_ids). Returns NULL with err on any
 * problem. */
dq_model_t *dq_model_load(const char *path, char *err, size_t errlen);

/* Like dq_model_load for a single-file checkpoint, but with the configs (and tokenizer files) of
 * the diffusers folder config_dir instead of inferred ones, as diffusers' from_single_file(path,
 * config=DIR) does: needed where the shapes cannot tell, e.g. the number of heads of a small model.
 * config_dir NULL is dq_model_load; a folder `path` with a config_dir is an error. */
dq_model_t *dq_model_load_with_configs(const char *path, const char *config_dir, char *err,
                                       size_t errlen);

/* Unmaps and frees; weights taken from it dangle afterwards. Idempotent; nulls *self_p. */
void dq_model_destroy(dq_model_t **self_p);

/* A weight of a part by diffusers name, or NULL (binary search). */
const dq_weight_t *dq_model_weight(const dq_model_t *self, dq_model_part_t part, const char *name);

/* "diffusers" or "single-file". */
const char *dq_model_layout_name(dq_model_layout_t layout);

/* Configs for a single-file checkpoint: SD 1.5's, with the sizes the tensors show where they differ
 * (widths from embeddings and convs, depths from key names), so smaller models of the same
 * architecture load too. Only weights of the three parts are consulted, by diffusers name; `find`
 * returns NULL for a missing name. Returns 0 or -1 with err when the tensors contradict each other.
 */
typedef const dq_weight_t *(*dq_weight_lookup_fn)(void *ctx, dq_model_part_t part,
                                                  const char *name);
int dq_model_infer_configs(dq_model_configs_t *cfg, dq_weight_lookup_fn find, void *ctx,
                           const char *file, char *err, size_t errlen);

#endif
