/* kernels/vae_decoder.h: the VAE decoder (diffusers AutoencoderKL.decode) on the engine runtime. */
#ifndef DQ_VAE_DECODER_H
#define DQ_VAE_DECODER_H

#include <stddef.h>

#include "kernels/arena.h"
#include "kernels/backend.h"
#include "kernels/model_files.h"
#include "kernels/tensor.h"

/* post_quant_conv + diffusers' Decoder: conv_in, UNetMidBlock2D (resnet, single-head attention
 * over the H*W positions, resnet), UpDecoderBlock2D x n (layers_per_block+1 resnets, then a
 * nearest 2x upsample + 3x3 conv except in the last), GroupNorm, SiLU, conv_out. */
typedef struct dq_vae_decoder dq_vae_decoder_t;

/* Builds the decoder from the VAE part of `model` (the encoder's weights are uploaded too: the
 * part is one unit of dq_weights), matrices stored as matrix_dtype (F32, F16 or BF16), every
 * activation inside the decoder in act_dtype: F32, or F16 or BF16 where the backend takes them
 * for every op (dq_backend_supports_activation_all; CUDA). Latents and
 * image stay F32 either way (converted on the way in and out). The model may be destroyed
 * afterwards. Returns NULL with err set when a weight is missing, the config is unusable, the
 * backend does not take act_dtype, or memory runs out. */
dq_vae_decoder_t *dq_vae_decoder_new(dq_backend_t *be, const dq_model_t *model,
                                     dq_dtype_t matrix_dtype, dq_dtype_t act_dtype, char *err,
                                     size_t errlen);

/* Frees the weights. Idempotent; nulls *self_p. */
void dq_vae_decoder_destroy(dq_vae_decoder_t **self_p);

/* Pixels per latent position along each side (8 for SD 1.x: 2^(blocks-1)). */
int dq_vae_decoder_factor(const dq_vae_decoder_t *self);
/* Channels of the latents the decoder takes (4) and of the images it makes (3). */
int dq_vae_decoder_latent_channels(const dq_vae_decoder_t *self);
int dq_vae_decoder_out_channels(const dq_vae_decoder_t *self);
/* The config's scaling_factor (0.18215 for SD 1.x). */
double dq_vae_decoder_scaling_factor(const dq_vae_decoder_t *self);

/* Arena bytes a decode of n latents of h x w positions needs (its exact peak use when the arena
 * is empty on entry), and the tensor structs it takes. 0 when a size is < 1 or overflows. */
size_t dq_vae_decoder_arena_bytes(const dq_vae_decoder_t *self, int n, int h, int w);
size_t dq_vae_decoder_arena_tensors(const dq_vae_decoder_t *self);

/* What the pipeline calls: vae.decode(latents / scaling_factor). latents: [n, 4, h, w] F32 as the
 * sampler leaves them, on the decoder's backend; image: [n, 3, h*f, w*f] F32 (f: the factor),
 * about [-1, 1]. The division is done in f32 on the host, exactly as torch divides (the latents
 * are small; multiplying by the reciprocal would be 1 ulp off on a fifth of them), then rounded
 * to f16 (bf16) there with F16 (BF16) activations.
 * Temporaries come from `arena` (dq_vae_decoder_arena_bytes free) and are released before
 * returning. Returns 0, or -1 (logged) on a wrong shape, a full arena, or a backend failure. */
int dq_vae_decoder_decode(dq_vae_decoder_t *self, dq_arena_t *arena, const dq_tensor_t *latents,
                          dq_tensor_t *image);

/* The network alone, AutoencoderKL._decode: z [n, 4, h, w] already divided by scaling_factor.
 * Same contract otherwise. */
int dq_vae_decoder_run(dq_vae_decoder_t *self, dq_arena_t *arena, const dq_tensor_t *z,
                       dq_tensor_t *image);

#endif
