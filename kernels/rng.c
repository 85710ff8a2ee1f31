/* kernels/rng.c: PyTorch's CPU generator (mt19937) and torch.randn, bit for bit, in portable C.
 *
 * What PyTorch does (ATen, read to match behaviour; none of its code is copied here):
 *  - CPUGeneratorImpl seeds at::mt19937 with the low 32 bits of the seed, the reference
 *    init_genrand recurrence (core/MT19937RNGEngine.h); random() is one output, random64() two,
 *    the first in the high half.
 *  - uniform_real_distribution<float>: (random() & (2^24-1)) * 2^-24; <double>: 53 bits of
 *    random64() * 2^-53 (core/TransformationHelper.h).
 *  - normal_kernel (native/cpu/DistributionTemplates.h): a contiguous f32 tensor of >= 16
 *    elements is first filled with uniforms, then Box-Muller runs on blocks of 16 pairing element
 *    j with j+8: u1 = 1 - d[j], r = sqrt(-2 log u1), theta = 2pi * d[j+8], d[j] = r cos theta,
 *    d[j+8] = r sin theta. When n % 16 != 0 the last 16 elements are redrawn (16 fresh uniforms)
 *    and transformed again. Fewer than 16 elements go through normal_distribution<double>, which
 *    caches the second Box-Muller value in the generator for the next call.
 *  - On x86-64 CPUs with AVX2 (and on AVX-512 CPUs, whose dispatch falls back to the AVX2 kernel)
 *    the blocks go through normal_fill_16_AVX2, which uses log256_ps and sincos256_ps from
 *    avx_mathfun.h: Cephes' single-precision logf and sinf/cosf algorithms (the Cephes polynomial
 *    coefficients below are public constants of that library). The PyTorch binary was built with
 *    FMA contraction, so the multiply-adds of the polynomials and of the Cody-Waite reduction are
 *    fused; we write them as fmaf(), which is exact in C99 on every machine. Which operations are
 *    fused was settled against torch 2.15's own output: each candidate was compared with
 *    torch.randn on 4M values, and where those could not tell two candidates apart, the two
 *    were compared over all 2^24 reachable inputs (u = k * 2^-24): the log candidates agree
 *    everywhere, the sincos ones differ on 3 inputs, one of which torch.randn reaches at seed 376
 *    (element 14133 of 16384), where only the fused reduction gives torch's value. That case is
 *    in tests/fixtures/rng/randn.txt and asserted by tests/unit/test_rng.c.
 * This file must be compiled without contraction of its own (-ffp-contract=off, kernels/local.mk):
 * every a*b+c here that is not written fmaf() must round twice, as PyTorch's does. */
#include "kernels/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MT_N      624
#define MT_M      397
#define MT_MATRIX 0x9908b0dfu
#define MT_UPPER  0x80000000u
#define MT_LOWER  0x7fffffffu

struct dq_rng {
    uint32_t state[MT_N]; /* mt19937 state */
    int next;             /* index of the next state word to temper; MT_N: twist first */
    int has_cached;       /* normal_distribution<double>'s cached second value is valid */
    double cached;        /* that value (CPUGeneratorImpl::next_double_normal_sample_) */
};

/* 2*pi rounded to float, as _mm256_set1_ps(2.0f * c10::pi<double>) does. */
static const float s_two_pi_f = (float)(2.0 * 3.14159265358979323846);

void dq_rng_seed(dq_rng_t *self, uint64_t seed) {
    self->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < MT_N; j++) {
        uint32_t prev = self->state[j - 1];
        self->state[j] = 1812433253u * (prev ^ (prev >> 30)) + j;
    }
    self->next = MT_N;
    self->has_cached = 0;
    self->cached = 0.0;
}

dq_rng_t *dq_rng_new(uint64_t seed) {
    dq_rng_t *self = malloc(sizeof(*self));
    if (!self) return NULL;
    dq_rng_seed(self, seed);
    return self;
}

void dq_rng_destroy(dq_rng_t **self_p) {
    if (!self_p || !*self_p) return;
    free(*self_p);
    *self_p = NULL;
}

/* Regenerates all MT_N words (the reference genrand twist). */
static void s_twist(dq_rng_t *self) {
    uint32_t *s = self->state;
    for (int k = 0; k < MT_N; k++) {
        uint32_t y = (s[k] & MT_UPPER) | (s[(k + 1) % MT_N] & MT_LOWER);
        s[k] = s[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX : 0u);
    }
    self->next = 0;
}

uint32_t dq_rng_u32(dq_rng_t *self) {
    if (self->next >= MT_N) s_twist(self);
    uint32_t y = self->state[self->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t dq_rng_u64(dq_rng_t *self) {
    uint64_t hi = dq_rng_u32(self);
    uint64_t lo = dq_rng_u32(self);
    return (hi << 32) | lo;
}

/* uniform_real_distribution<float>(0, 1): 24 random bits, exact in float. */
static float s_uniform_f32(dq_rng_t *self) {
    return (float)(dq_rng_u32(self) & 0xffffffu) * 0x1p-24f;
}

/* uniform_real_distribution<double>(0, 1): 53 random bits. */
static double s_uniform_f64(dq_rng_t *self) {
    return (double)(dq_rng_u64(self) & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

static uint32_t s_bits(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof(b));
    return b;
}

static float s_float(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof(x));
    return x;
}

/* Cephes logf as avx_mathfun's log256_ps evaluates it, for x in (0, 1] (all Box-Muller needs:
 * u1 >= 2^-24, so the denormal clamp and the NaN mask of the vector code never act). */
static float s_log_cephes(float x) {
    uint32_t b = s_bits(x);
    int expo = (int)(b >> 23) - 0x7f;
    x = s_float((b & 0x807fffffu) | 0x3f000000u); /* mantissa in [0.5, 1) */
    float e = (float)expo + 1.0f;
    if (x < 0.707106781186547524f) { /* sqrt(1/2) */
        e = e - 1.0f;
        x = (x - 1.0f) + x;
    } else {
        x = x - 1.0f;
    }
    float z = x * x;
    float y = 7.0376836292e-2f;
    y = fmaf(y, x, -1.1514610310e-1f);
    y = fmaf(y, x, 1.1676998740e-1f);
    y = fmaf(y, x, -1.2420140846e-1f);
    y = fmaf(y, x, 1.4249322787e-1f);
    y = fmaf(y, x, -1.6668057665e-1f);
    y = fmaf(y, x, 2.0000714765e-1f);
    y = fmaf(y, x, -2.4999993993e-1f);
    y = fmaf(y, x, 3.3333331174e-1f);
    y = y * x;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    return fmaf(e, 0.693359375f, x);
}

/* Cephes sinf/cosf as avx_mathfun's sincos256_ps evaluates them, for x >= 0 (theta = 2pi u). */
static void s_sincos_cephes(float x, float *s_out, float *c_out) {
    float y = x * 1.27323954473516f; /* 4/pi */
    int32_t j = (int32_t)y;          /* truncation, as cvttps */
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t sign_sin = ((uint32_t)j & 4u) << 29;
    int sin_poly = (j & 2) == 0; /* octant picks which polynomial gives the sine */
    uint32_t sign_cos = (~((uint32_t)j - 2u) & 4u) << 29;
    /* Extended-precision reduction x - j*pi/4, pi/4 split in three (Cody-Waite). */
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    float z = x * x;
    float yc = 2.443315711809948e-5f;
    yc = fmaf(yc, z, -1.388731625493765e-3f);
    yc = fmaf(yc, z, 4.166664568298827e-2f);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = -1.9515295891e-4f;
    ys = fmaf(ys, z, 8.3321608736e-3f);
    ys = fmaf(ys, z, -1.6666654611e-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    float s = sin_poly ? ys : yc;
    float c = sin_poly ? yc : ys;
    *s_out = s_float(s_bits(s) ^ sign_sin);
    *c_out = s_float(s_bits(c) ^ sign_cos);
}

/* Box-Muller on one block of 16 uniforms, in place (normal_fill_16_AVX2 with mean 0, std 1:
 * its final fmadd(n, 1, 0) returns n unchanged). */
static void s_box_muller_16(float *d) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float radius = sqrtf(-2.0f * s_log_cephes(u1));
        float theta = s_two_pi_f * d[j + 8];
        float s, c;
        s_sincos_cephes(theta, &s, &c);
        d[j] = radius * c;
        d[j + 8] = radius * s;
    }
}

/* normal_distribution<double>(0, 1), one value, with the generator's cache. */
static double s_normal_f64(dq_rng_t *self) {
    if (self->has_cached) {
        self->has_cached = 0;
        return self->cached;
    }
    double u1 = s_uniform_f64(self);
    double u2 = s_uniform_f64(self);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    self->cached = r * sin(theta);
    self->has_cached = 1;
    return r * cos(theta);
}

void dq_rng_randn(dq_rng_t *self, float *out, size_t n) {
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)s_normal_f64(self);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = s_uniform_f32(self);
    for (size_t i = 0; i + 16 <= n; i += 16)
        s_box_muller_16(out + i);
    if (n % 16 != 0) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = s_uniform_f32(self);
        s_box_muller_16(tail);
    }
}
