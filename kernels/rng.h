/* kernels/rng.h: PyTorch's CPU generator (mt19937) and torch.randn, bit for bit, in portable C. */
#ifndef DQ_RNG_H
#define DQ_RNG_H

#include <stddef.h>
#include <stdint.h>

/* One generator: the state of torch.Generator("cpu") after manual_seed(seed). Each request owns
 * its own, so that batching never changes a picture. */
typedef struct dq_rng dq_rng_t;

/* A generator seeded like torch.Generator("cpu").manual_seed(seed). PyTorch keeps only the low 32
 * bits of the seed for mt19937 (seed 2^32+5 draws as seed 5). Returns NULL when out of memory. */
dq_rng_t *dq_rng_new(uint64_t seed);
/* Frees *self_p and sets it to NULL; does nothing when it is already NULL. */
void dq_rng_destroy(dq_rng_t **self_p);
/* Reseeds in place, as manual_seed does (also forgets the cached second Box-Muller value). */
void dq_rng_seed(dq_rng_t *self, uint64_t seed);
/* The next 32-bit mt19937 output (CPUGeneratorImpl::random). */
uint32_t dq_rng_u32(dq_rng_t *self);
/* The next 64-bit draw: two outputs, the first one high (CPUGeneratorImpl::random64). */
uint64_t dq_rng_u64(dq_rng_t *self);

/* torch.randn(n elements, generator=self, dtype=torch.float32) for a contiguous tensor: fills
 * out[0..n) and advances the generator exactly as PyTorch does, so later draws (the ancestral
 * samplers' noise) continue the same stream. The shape does not matter, only n. Matches the
 * vectorised kernel that PyTorch runs on every x86-64 CPU with AVX2 (AVX-512 machines use it too);
 * see rng.c. (PyTorch itself gives other numbers on CPUs without AVX2 and on ARM, where it runs
 * a scalar kernel over the C library's logf/cosf/sinf: the reference is x86-64 PyTorch.)
 * Cannot fail. */
void dq_rng_randn(dq_rng_t *self, float *out, size_t n);

#endif
