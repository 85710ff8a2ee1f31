/* tests/emul/emul_core.h: the device side of the CUDA emulation (see tests/emul/README.md): just
 * enough of CUDA C++ to run our kernels on the CPU, where there is no GPU.
 * - A block runs as one OS thread per CUDA thread, with real barriers for __syncthreads and
 *   __syncwarp and a real exchange for __shfl_xor_sync; blocks run one after another, so a
 *   function-local static is exactly one block's __shared__ variable.
 * - __half is _Float16 (the same round-to-nearest-even conversions).
 * - WMMA 16x16x16 fragments are whole tiles held by lane 0 of the warp, which alone loads,
 *   multiplies and stores them; the other lanes' calls do nothing. Exact for kernels that touch
 *   fragments only through the WMMA calls (ours: their element mapping is opaque anyway).
 * - Shared memory starts filled with 0xff bytes (NaN as f32 and f16), so a read of a value the
 *   kernel never wrote shows in its output; dynamic shared memory is allocated exactly, so ASan
 *   reports an access past it.
 * What it checks: indexing, masks, tiling, launch shapes and the arithmetic of a kernel. What it
 * cannot: speed, hardware limits, a race or missing barrier that a GPU's scheduling would expose,
 * or a kernel reading host memory (device and host pointers are the same here). C++20. */
#ifndef DQ_TESTS_EMUL_CORE_H
#define DQ_TESTS_EMUL_CORE_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
/* One block at a time: a function-local static is the block's shared variable. */
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

/* The running block's shared state, and each emulated thread's coordinates (the fibers of a
 * block share the host thread; the scheduler sets threadIdx before it resumes one). */
struct dq_emul_block {
    unsigned char *smem; /* dynamic shared memory */
    double *shfl;        /* __shfl_xor_sync: 2 x 32 slots per warp */
    unsigned *shfl_turn; /* per thread: its shuffles so far (which half of its warp's slots) */
};
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
inline thread_local dq_emul_block *dq_emul_cur;

#define DQ_CUDA_DYNAMIC_SMEM(name) unsigned char *name = dq_emul_cur->smem

/* The barriers: the running fiber waits until every unfinished thread of its block (or warp)
 * has arrived (tests/emul/runtime.cpp). */
void dq_emul_syncthreads();
void dq_emul_syncwarp();
inline void __syncthreads() { dq_emul_syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void) mask;
    dq_emul_syncwarp();
}
/* Every lane of the warp calls it (our kernels do): the value of lane ^ lane_mask. Successive
 * shuffles alternate between two slot sets, so one barrier per shuffle is enough: a lane can
 * overwrite a set only after every lane passed the next shuffle's barrier, having read it. */
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    (void) mask;
    unsigned turn = dq_emul_cur->shfl_turn[threadIdx.x]++ & 1;
    double *slots = dq_emul_cur->shfl + 64 * (threadIdx.x / 32) + 32 * turn;
    unsigned lane = threadIdx.x % 32;
    slots[lane] = (double) v;
    __syncwarp();
    return (T) slots[lane ^ (unsigned) lane_mask];
}

/* Fibers never preempt each other: a read-modify-write is atomic as it stands. */
inline int atomicMin(int *p, int v) {
    int old = *p;
    if (v < old) *p = v;
    return old;
}

inline float __expf(float x) { return expf(x); }
/* An f32 add rounded once (what nvcc may not contract into an FMA). */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __uint_as_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

struct __half {
    _Float16 v;
};
inline __half __float2half_rn(float x) { return __half{(_Float16) x}; }
inline float __half2float(__half h) { return (float) h.v; }
inline __half __ushort_as_half(unsigned short u) {
    __half h;
    std::memcpy(&h, &u, sizeof h);
    return h;
}

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

/* Only the 16x16x16 shape; the element type of a/b is __half, of the accumulator float. */
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "emulated WMMA knows 16x16x16 only");
    float x[16][16];
};

template <class Use, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, __half, Layout> &f, const __half *p,
                             unsigned ldm) {
    if (threadIdx.x % 32 != 0) return;
    bool row = std::is_same<Layout, row_major>::value;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.x[r][c] = __half2float(row ? p[r * ldm + c] : p[c * ldm + r]);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p,
                             unsigned ldm, layout_t l) {
    if (threadIdx.x % 32 != 0) return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.x[r][c] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f,
                              unsigned ldm, layout_t l) {
    if (threadIdx.x % 32 != 0) return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r][c];
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float v) {
    if (threadIdx.x % 32 != 0) return;
    for (auto &row : f.x)
        for (float &e : row) e = v;
}
template <class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, __half, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, __half, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    if (threadIdx.x % 32 != 0) return;
    float out[16][16];
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 16; n++) {
            float s = c.x[r][n];
            for (int k = 0; k < 16; k++) s += a.x[r][k] * b.x[k][n];
            out[r][n] = s;
        }
    std::memcpy(d.x, out, sizeof out);
}
} // namespace wmma
} // namespace nvcuda

#endif
