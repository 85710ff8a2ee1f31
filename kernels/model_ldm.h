/* kernels/model_ldm.h: maps the key names of single-file SD 1.x checkpoints (the original
 * CompVis/LDM layout: model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*)
 * to diffusers/transformers state_dict names, as diffusers' single-file loader does. */
#ifndef DQ_MODEL_LDM_H
#define DQ_MODEL_LDM_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/model_config.h"
#include "kernels/safetensors.h"

/* What the mapping needs to know about the checkpoint, found by scanning its key names. */
typedef struct {
    int unet_layers; /* layers_per_block: LDM numbers input/output blocks consecutively */
    int vae_blocks;  /* LDM numbers the decoder's up blocks in reverse */
} dq_ldm_layout_t;

/* Scans the keys of an LDM checkpoint. Returns 0, or -1 when it has no UNet or VAE keys (not an LDM
 * checkpoint) with err naming the file. */
int dq_ldm_layout_scan(const dq_safetensors_t *st, dq_ldm_layout_t *out, char *err, size_t errlen);

/* Maps one key. Returns the part it belongs to and writes its diffusers name to out, or -1 when the
 * key is not a weight of the three networks (EMA copies, schedule buffers, ...). *squeeze is set
 * when the tensor is a 1x1 conv weight [C, C, 1, 1] that diffusers stores as a linear [C, C] (the
 * VAE's mid-block attention q/k/v/proj_out). */
int dq_ldm_map_key(const dq_ldm_layout_t *layout, const char *key, char *out, size_t outlen,
                   bool *squeeze);

/* True when the file looks like an LDM checkpoint (has model.diffusion_model.* keys). */
bool dq_ldm_is_checkpoint(const dq_safetensors_t *st);

#endif
