/* kernels/unet.h: diffusers' UNet2DConditionModel for SD 1.x (and the SD 2.x variants of it:
 * linear projections, per-block head counts) on the engine's backends. */
#ifndef DQ_UNET_H
#define DQ_UNET_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/model_config.h"
#include "kernels/model_files.h"
#include "kernels/step_graph.h"
#include "kernels/tensor.h"

typedef struct dq_unet dq_unet_t;

/* Builds the UNet of `model` on backend `be` (borrowed; it must outlive the UNet): uploads its
 * weights as F32 and looks every one up by its diffusers name. The model may be destroyed
 * afterwards. Returns NULL with err set when the config is not one this UNet implements (block
 * types, depth), a weight is missing, or memory runs out. */
dq_unet_t *dq_unet_new(dq_backend_t *be, const dq_model_t *model, char *err, size_t errlen);

/* dq_unet_new with the conv and linear matrices stored as matrix_dtype (F32, F16 or BF16; biases
 * and norms stay F32): F16 halves the weights' memory (1.7 GB for SD 1.5) at the cost of a
 * conversion inside each op on backends that compute in F32 (see kernels/cpu/backend_cpu.h).
 * Exact for checkpoints stored in F16. act_dtype is the dtype of every activation inside the
 * network: F32, or F16 or BF16 where the backend takes them for every op
 * (dq_backend_supports_activation_all; CUDA, as diffusers' f16 and bf16 pipelines keep them);
 * the forward's arguments stay F32 either way and are converted on the way in and out. Fails
 * like dq_unet_new, or on another dtype or an activation dtype the backend does not take. */
dq_unet_t *dq_unet_new_dtype(dq_backend_t *be, const dq_model_t *model, dq_dtype_t matrix_dtype,
                             dq_dtype_t act_dtype, char *err, size_t errlen);

/* Frees the weights and the activation arena. Idempotent; nulls *self_p. */
void dq_unet_destroy(dq_unet_t **self_p);

/* One denoiser evaluation, UNet2DConditionModel(sample, t, context).sample:
 *   sample:    [N, in_channels, h, w] F32, on the UNet's backend (any h, w >= 1; sides that do
 *              not halve evenly are handled as diffusers does, upsampling to the skip's size)
 *   timesteps: host array of n_timesteps values: 1 (broadcast over the batch) or N (one per item,
 *              e.g. a CFG batch of 2N whose halves may even differ)
 *   context:   [N, L, cross_attention_dim] F32 (text encoder states; L is usually 77)
 *   out:       [N, out_channels, h, w] F32, distinct from sample
 * Activations live in an arena owned by the UNet, sized for (N, h, w, L): the first call with a
 * new size runs with a bound computed from the shapes, then the arena is cut to the measured
 * peak, so later calls of that size allocate nothing. On a backend with graphs (CUDA) the
 * second call of a size records the network as a graph and later calls replay it; sample and
 * context are copied into UNet-owned tensors first and the result copied to out, so the graph
 * survives new caller tensors (docs/cuda.md "CUDA graphs"); with F16 activations those copies
 * convert (every call). Returns 0, or -1 with err naming the argument or the block that failed
 * (the op's own message is logged). */
int dq_unet_forward(dq_unet_t *self, const dq_tensor_t *sample, const float *timesteps,
                    int n_timesteps, const dq_tensor_t *context, dq_tensor_t *out, char *err,
                    size_t errlen);

/* How the forward ran so far on a backend with graphs (CUDA): eager calls, graphs recorded and
 * launched, or why graphs are off (kernels/step_graph.h; docs/cuda.md "CUDA graphs"). */
void dq_unet_graph_stats(const dq_unet_t *self, dq_step_graph_stats_t *out);
/* Whether the network runs channels last (dq_backend_use_nhwc, chosen at creation). */
bool dq_unet_channels_last(const dq_unet_t *self);

/* The config the UNet was built from (borrowed). */
const dq_unet_config_t *dq_unet_config(const dq_unet_t *self);
/* Bytes of backend memory held: weights, and the activations (the arena and the per-size I/O
 * tensors; 0 before the first forward). */
size_t dq_unet_weight_bytes(const dq_unet_t *self);
size_t dq_unet_arena_bytes(const dq_unet_t *self);

/* Floating-point operations of one forward (multiply and add counted as 2): convolutions,
 * linear layers and the two attention products; norms and elementwise ops are left out (a few
 * percent of the total at most). n: batch, h x w: latent size, ctx_len x ctx_dim: the context.
 * Used to state a benchmark's throughput against the machine's sgemm rate. */
double dq_unet_flops(const dq_unet_config_t *cfg, int n, int h, int w, int ctx_len);

#endif
