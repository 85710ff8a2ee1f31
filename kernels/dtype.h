/* kernels/dtype.h: element types of tensors and model files, and f16/bf16 conversion. */
#ifndef DQ_DTYPE_H
#define DQ_DTYPE_H

#include <stddef.h>
#include <stdint.h>

/* Every element type a safetensors file may hold. The engine computes in f32 on the CPU and
 * stores weights as f32, f16 or bf16; the others appear in checkpoints (position ids are i64). */
typedef enum {
    DQ_DTYPE_F32,
    DQ_DTYPE_F16,
    DQ_DTYPE_BF16,
    DQ_DTYPE_F64,
    DQ_DTYPE_I64,
    DQ_DTYPE_I32,
    DQ_DTYPE_I16,
    DQ_DTYPE_I8,
    DQ_DTYPE_U64,
    DQ_DTYPE_U32,
    DQ_DTYPE_U16,
    DQ_DTYPE_U8,
    DQ_DTYPE_BOOL,
    DQ_DTYPE_F8_E4M3,
    DQ_DTYPE_F8_E5M2,
    DQ_DTYPE_COUNT
} dq_dtype_t;

/* Bytes per element. */
size_t dq_dtype_size(dq_dtype_t dtype);
/* The safetensors spelling ("F32", "BF16", ...). */
const char *dq_dtype_name(dq_dtype_t dtype);
/* Parses a safetensors dtype name. Returns -1 when unknown. */
int dq_dtype_parse(const char *name);
/* True for F32, F16, BF16 and F64: the types a weight can be converted from. */
int dq_dtype_is_float(dq_dtype_t dtype);

/* IEEE half and bfloat16 to and from f32. f32 -> half/bf16 round to nearest even, as PyTorch does;
 * NaN stays NaN and overflow becomes infinity. */
float dq_f16_to_f32(uint16_t h);
uint16_t dq_f32_to_f16(float f);
float dq_bf16_to_f32(uint16_t b);
uint16_t dq_f32_to_bf16(float f);
/* dst[i] = src[i] rounded to BF16 when dtype is BF16, else to F16, for n elements: host values
 * for a 16-bit activation tensor. */
void dq_f32_to_16(const float *src, size_t n, dq_dtype_t dtype, uint16_t *dst);

/* Converts n elements of a float type (F32, F16, BF16, F64) to f32. Returns 0, or -1 when src_type
 * is not a float type. src may be unaligned (it often points into an mmapped file). */
int dq_convert_to_f32(float *dst, const void *src, dq_dtype_t src_type, size_t n);

#endif
