/* kernels/cuda/mma.cuh: the warp-level tensor-core product the fused attention is built on, PTX
 * `mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32` (and its .bf16 twin; sm_80 and later),
 * and the register and shared memory moves that feed it (`ldmatrix`, `cp.async`). Unlike WMMA,
 * its fragment layout is documented (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating
 * point type"), so a kernel can keep accumulators in registers and hand one product's result to
 * the next. With g = lane / 4, t = lane % 4, a lane holds (a pair's first element in the low 16
 * bits):
 *   A, 16x16 f16:  a[0] = A[g][2t..2t+1]    a[1] = A[g+8][2t..2t+1]
 *                  a[2] = A[g][2t+8..2t+9]  a[3] = A[g+8][2t+8..2t+9]
 *   B, 16x8 f16:   b[0] = B[2t..2t+1][g]    b[1] = B[2t+8..2t+9][g]
 *   C, 16x8 f32:   c[0], c[1] = C[g][2t..2t+1]    c[2], c[3] = C[g+8][2t..2t+1]
 * So the C tiles of key columns [16i, 16i+8) and [16i+8, 16i+16) are, rounded to f16, exactly
 * the A fragment of k-step i: scores become the next product's left operand in place.
 * Under the CUDA emulation (DQ_CUDA_EMUL, tests/emul/) the product, ldmatrix and cp.async are
 * emul_core.h's, which implement these same layouts and rules on the CPU. */
#ifndef DQ_CUDA_MMA_CUH
#define DQ_CUDA_MMA_CUH

#include <stdint.h>
#include <string.h>

#include <type_traits>

namespace dq_mma {

/* c += A B for one 16x8x16 tile of element type M, __half or __nv_bfloat16 (every lane of the
 * warp calls it, with its own fragments; the layout is the same for both). */
template <typename M>
__device__ __forceinline__ void m16n8k16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    constexpr bool bf16 = std::is_same<M, __nv_bfloat16>::value;
    static_assert(bf16 || std::is_same<M, __half>::value, "mma.sync takes f16 or bf16 here");
#ifdef DQ_CUDA_EMUL
    dq_emul_mma_m16n8k16(c, a, b, bf16);
#else
#define S_MMA(T)                                                                                 \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." T "." T ".f32 "                        \
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"         \
                 : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3])                                \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),  \
                   "f"(c[1]), "f"(c[2]), "f"(c[3]))
    if constexpr (bf16)
        S_MMA("bf16");
    else
        S_MMA("f16");
#undef S_MMA
#endif
}

/* Two 16-bit elements at p (4-byte aligned) as one fragment register. */
__device__ __forceinline__ uint32_t load_pair(const void *p) {
#ifdef DQ_CUDA_EMUL
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return u;
#else
    return *reinterpret_cast<const uint32_t *>(p);
#endif
}

/* 16 bytes from global src to shared dst, both 16-byte aligned, without waiting (cp.async.cg,
 * sm_80): this thread sees them after async_wait_all(), the block after a barrier past that. */
__device__ __forceinline__ void copy16_async(void *dst, const void *src) {
#ifdef DQ_CUDA_EMUL
    dq_emul_copy16_async(dst, src);
#else
    unsigned addr = (unsigned) __cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(src));
#endif
}

/* Waits for this thread's copy16_async calls so far (cp.async.wait_all). */
__device__ __forceinline__ void async_wait_all() {
#ifdef DQ_CUDA_EMUL
    dq_emul_async_wait_all();
#else
    asm volatile("cp.async.wait_all;\n" ::);
#endif
}

/* lo and hi as one fragment register, lo in the low half. */
__device__ __forceinline__ uint32_t pack_pair(__half lo, __half hi) {
    return (uint32_t) __half_as_ushort(lo) | (uint32_t) __half_as_ushort(hi) << 16;
}
__device__ __forceinline__ uint32_t pack_pair(__nv_bfloat16 lo, __nv_bfloat16 hi) {
    return (uint32_t) __bfloat16_as_ushort(lo) | (uint32_t) __bfloat16_as_ushort(hi) << 16;
}

/* lo and hi rounded to M (__half or __nv_bfloat16) as one fragment register (one paired
 * conversion on a GPU); adds the two rounded values to *sum. */
template <typename M>
__device__ __forceinline__ uint32_t round_pair(float lo, float hi, float *sum);

template <>
__device__ __forceinline__ uint32_t round_pair<__half>(float lo, float hi, float *sum) {
#ifdef DQ_CUDA_EMUL
    __half a = __float2half_rn(lo), b = __float2half_rn(hi);
    *sum += __half2float(a) + __half2float(b);
    return pack_pair(a, b);
#else
    __half2 h = __floats2half2_rn(lo, hi);
    float2 f = __half22float2(h);
    *sum += f.x + f.y;
    return *reinterpret_cast<const uint32_t *>(&h);
#endif
}

template <>
__device__ __forceinline__ uint32_t round_pair<__nv_bfloat16>(float lo, float hi, float *sum) {
#ifdef DQ_CUDA_EMUL
    __nv_bfloat16 a = __float2bfloat16_rn(lo), b = __float2bfloat16_rn(hi);
    *sum += __bfloat162float(a) + __bfloat162float(b);
    return pack_pair(a, b);
#else
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    float2 f = __bfloat1622float2(h);
    *sum += f.x + f.y;
    return *reinterpret_cast<const uint32_t *>(&h);
#endif
}

/* ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16: four 8x8 16-bit matrices from shared memory,
 * transposed. Lane l gives the address of row l % 8 of matrix l / 8 (16-byte aligned) and
 * receives in r[j] matrix j's elements [2t][g] and [2t+1][g] (PTX ISA, "Warp-level matrix load
 * instruction: ldmatrix"). For a row-major [key][dim] tile: r[j] is the B fragment register of
 * P V for the keys of matrix j. */
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *row) {
#ifdef DQ_CUDA_EMUL
    dq_emul_ldmatrix_x4_trans(r, row);
#else
    unsigned addr = (unsigned) __cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#endif
}

/* 16 bytes from src to dst, both 16-byte aligned: one vector load and store on a GPU. */
__device__ __forceinline__ void copy16(void *dst, const void *src) {
#ifdef DQ_CUDA_EMUL
    memcpy(dst, src, 16);
#else
    *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
#endif
}

} // namespace dq_mma

#endif
