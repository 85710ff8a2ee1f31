/* kernels/model_manifest.h: every parameter (name and shape) that diffusers/transformers give
 * CLIPTextModel, UNet2DConditionModel and AutoencoderKL for a config: what a weights file must
 * hold. */
#ifndef DQ_MODEL_MANIFEST_H
#define DQ_MODEL_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/model_config.h"

/* Longest parameter name, NUL included (SD 1.x names stay under 80). */
#define DQ_PARAM_NAME 128
/* Most dimensions of a parameter (conv weights have 4). */
#define DQ_PARAM_DIMS 4

/* How `diffq model init` fills a parameter (diffusers' own init is not reproduced; these are small
 * random weights that keep activations finite). */
typedef enum {
    DQ_INIT_NORMAL, /* weights of linear, conv and embedding layers: N(0, std) */
    DQ_INIT_ZERO,   /* biases, norm shifts */
    DQ_INIT_ONE,    /* norm scales */
    DQ_INIT_COUNT
} dq_param_init_t;

typedef struct {
    char name[DQ_PARAM_NAME]; /* state_dict key, e.g. "down_blocks.0.resnets.1.conv1.weight" */
    int ndim;
    int64_t shape[DQ_PARAM_DIMS];
    dq_param_init_t init;
} dq_param_t;

/* A growable list of parameters, in the order the modules declare them. */
typedef struct {
    dq_param_t *items; /* owned */
    size_t count, cap;
    int failed; /* set when an append ran out of memory */
} dq_param_list_t;

/* Frees the items and zeroes the list. */
void dq_param_list_free(dq_param_list_t *list);
/* Total elements over all parameters. */
int64_t dq_param_list_numel(const dq_param_list_t *list);

/* Append the parameters of each network to `list` (which may start empty or not). Return 0, or -1
 * when out of memory. The config must have passed its _check function. */
int dq_manifest_clip(const dq_clip_config_t *cfg, dq_param_list_t *list);
int dq_manifest_unet(const dq_unet_config_t *cfg, dq_param_list_t *list);
int dq_manifest_vae(const dq_vae_config_t *cfg, dq_param_list_t *list);

#endif
