/* kernels/dtype.c: element types of tensors and model files, and f16/bf16 conversion. */
#include "kernels/dtype.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} s_types[DQ_DTYPE_COUNT] = {
    [DQ_DTYPE_F32] = {"F32", 4},      [DQ_DTYPE_F16] = {"F16", 2},   [DQ_DTYPE_BF16] = {"BF16", 2},
    [DQ_DTYPE_F64] = {"F64", 8},      [DQ_DTYPE_I64] = {"I64", 8},   [DQ_DTYPE_I32] = {"I32", 4},
    [DQ_DTYPE_I16] = {"I16", 2},      [DQ_DTYPE_I8] = {"I8", 1},     [DQ_DTYPE_U64] = {"U64", 8},
    [DQ_DTYPE_U32] = {"U32", 4},      [DQ_DTYPE_U16] = {"U16", 2},   [DQ_DTYPE_U8] = {"U8", 1},
    [DQ_DTYPE_BOOL] = {"BOOL", 1},    [DQ_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [DQ_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

size_t dq_dtype_size(dq_dtype_t dtype) { return dtype < DQ_DTYPE_COUNT ? s_types[dtype].size : 0; }

const char *dq_dtype_name(dq_dtype_t dtype) {
    return dtype < DQ_DTYPE_COUNT ? s_types[dtype].name : "?";
}

int dq_dtype_parse(const char *name) {
    for (int i = 0; i < DQ_DTYPE_COUNT; i++)
        if (name && strcmp(name, s_types[i].name) == 0) return i;
    return -1;
}

int dq_dtype_is_float(dq_dtype_t dtype) {
    return dtype == DQ_DTYPE_F32 || dtype == DQ_DTYPE_F16 || dtype == DQ_DTYPE_BF16 ||
           dtype == DQ_DTYPE_F64;
}

static float s_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t s_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float dq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return s_bits_to_f32(sign | 0x7f800000u | (mant << 13)); /* inf, NaN */
    if (exp == 0) {
        /* Zero or subnormal: value = mant * 2^-24, exact in f32. */
        float v = (float) mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return s_bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t dq_f32_to_f16(float f) {
    uint32_t u = s_f32_to_bits(f);
    uint16_t sign = (uint16_t) ((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00; /* NaN */
    if (abs >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: infinity */
    if (abs < 0x38800000u) {
        /* Result is subnormal or zero: round abs/2^-24 to nearest even integer. */
        float v = s_bits_to_f32(abs) * 0x1p24f;
        return sign | (uint16_t) nearbyintf(v);
    }
    /* Normal: drop 13 mantissa bits with round to nearest even; a carry may bump the exponent. */
    uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return sign | (uint16_t) ((rounded - 0x38000000u) >> 13);
}

float dq_bf16_to_f32(uint16_t b) { return s_bits_to_f32((uint32_t) b << 16); }

uint16_t dq_f32_to_bf16(float f) {
    uint32_t u = s_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t) ((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t) (u >> 16);
}

void dq_f32_to_16(const float *src, size_t n, dq_dtype_t dtype, uint16_t *dst) {
    if (dtype == DQ_DTYPE_BF16)
        for (size_t i = 0; i < n; i++) dst[i] = dq_f32_to_bf16(src[i]);
    else
        for (size_t i = 0; i < n; i++) dst[i] = dq_f32_to_f16(src[i]);
}

int dq_convert_to_f32(float *dst, const void *src, dq_dtype_t src_type, size_t n) {
    const unsigned char *p = src;
    switch (src_type) {
    case DQ_DTYPE_F32: memcpy(dst, src, n * 4); return 0;
    case DQ_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = dq_f16_to_f32(h);
        }
        return 0;
    case DQ_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, p + 2 * i, 2);
            dst[i] = dq_bf16_to_f32(b);
        }
        return 0;
    case DQ_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float) d;
        }
        return 0;
    default: return -1;
    }
}
