/* kernels/model_presets.c: named model configs for `diffq model init` and the tests. */
#include "config.h"

#include <string.h>

#include "kernels/model_config.h"

/* The tiny preset: SD 1.x's architecture (cross-attention down blocks then a plain one, a 4-block
 * VAE with 8x downsampling) at widths of 32-64, so a whole pipeline is ~2 MB plus the 49408-row
 * token embedding. Keep in sync with PRESETS["tiny"] in tests/reference/manifest.py. */
static void s_tiny(dq_model_configs_t *m) {
    dq_clip_config_sd15(&m->clip);
    m->clip.hidden_size = 32;
    m->clip.intermediate_size = 64;
    m->clip.num_hidden_layers = 2;
    m->clip.num_attention_heads = 4;
    m->clip.projection_dim = 32;

    dq_unet_config_sd15(&m->unet);
    m->unet.sample_size = 8;
    m->unet.n_blocks = 2;
    m->unet.block_out_channels[0] = 32;
    m->unet.block_out_channels[1] = 64;
    strcpy(m->unet.down_block_types[0], "CrossAttnDownBlock2D");
    strcpy(m->unet.down_block_types[1], "DownBlock2D");
    strcpy(m->unet.up_block_types[0], "UpBlock2D");
    strcpy(m->unet.up_block_types[1], "CrossAttnUpBlock2D");
    m->unet.layers_per_block = 1;
    m->unet.cross_attention_dim = 32;

    dq_vae_config_sd15(&m->vae);
    m->vae.sample_size = 64;
    m->vae.layers_per_block = 1;
    static const int ch[4] = {32, 32, 64, 64};
    for (int i = 0; i < 4; i++)
        m->vae.block_out_channels[i] = ch[i];

    dq_scheduler_config_sd15(&m->scheduler);
}

int dq_model_preset(const char *name, dq_model_configs_t *out) {
    memset(out, 0, sizeof *out);
    if (!strcmp(name, "sd15")) {
        dq_clip_config_sd15(&out->clip);
        dq_unet_config_sd15(&out->unet);
        dq_vae_config_sd15(&out->vae);
        dq_scheduler_config_sd15(&out->scheduler);
        return 0;
    }
    if (!strcmp(name, "tiny")) {
        s_tiny(out);
        return 0;
    }
    return -1;
}
