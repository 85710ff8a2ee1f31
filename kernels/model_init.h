/* kernels/model_init.h: writes a diffusers-format SD 1.x folder with random weights (for tests and
 * benchmarks: `diffq model init`). */
#ifndef DQ_MODEL_INIT_H
#define DQ_MODEL_INIT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dtype.h"
#include "kernels/model_config.h"

/* Standard deviation of random weights. */
#define DQ_INIT_STD 0.02

/* The random stream of one parameter: SplitMix64 seeded with seed ^ FNV-1a-64(name), so every
 * tensor's values depend only on the seed and its name, not on the order of writing. Normals come
 * from Box-Muller on two 53-bit uniforms (u1 in (0, 1], u2 in [0, 1)): z = sqrt(-2 ln u1) cos(2 pi
 * u2). */
typedef struct {
    uint64_t state;
} dq_init_rng_t;

void dq_init_rng_seed(dq_init_rng_t *rng, uint64_t seed, const char *name);
uint64_t dq_init_rng_next(dq_init_rng_t *rng);
double dq_init_rng_normal(dq_init_rng_t *rng);

/* Creates `dir` (which must not exist or be empty) and writes model_index.json, text_encoder/,
 * unet/, vae/ (config.json + weights), scheduler/scheduler_config.json and tokenizer/ (vocab.json
 * and merges.txt from the CLIP merge file at bpe_path, tokenizer_config.json,
 * special_tokens_map.json). Weights: linear/conv/embedding weights N(0, DQ_INIT_STD), norm scales
 * 1, biases 0, stored as `dtype` (F32, F16 or BF16), written one tensor at a time. Returns 0, or -1
 * with err. */
int dq_model_init_random(const char *dir, const dq_model_configs_t *cfg, uint64_t seed,
                         dq_dtype_t dtype, const char *bpe_path, char *err, size_t errlen);

#endif
