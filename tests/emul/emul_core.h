/* tests/emul/emul_core.h: the device side of the CUDA emulation (see tests/emul/README.md): just
 * enough of CUDA C++ to run our kernels on the CPU, where there is no GPU.
 * - A block runs as one OS thread per CUDA thread, with real barriers for __syncthreads and
 *   __syncwarp and a real exchange for __shfl_xor_sync; blocks run one after another, so a
 *   function-local static is exactly one block's __shared__ variable.
 * - __half is _Float16 (the same round-to-nearest-even conversions).
 * - The tensor-core product mma.sync m16n8k16 and ldmatrix (kernels/cuda/mma.cuh) are warp
 *   exchanges with the PTX ISA's fragment layouts; the product sums in double. An asynchronous
 *   copy (cp.async) lands when its thread waits for it.
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
#include <vector>

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

/* A 16-byte cp.async copy not yet landed (dq_emul_copy16_async). */
struct dq_emul_copy {
    void *dst;
    const void *src;
};

/* The running block's shared state, and each emulated thread's coordinates (the fibers of a
 * block share the host thread; the scheduler sets threadIdx before it resumes one). */
struct dq_emul_block {
    unsigned char *smem; /* dynamic shared memory */
    double *shfl;        /* __shfl_xor_sync: 2 x 32 slots per warp */
    unsigned *shfl_turn; /* per thread: its shuffles so far (which half of its warp's slots) */
    uint32_t *mma;       /* dq_emul_mma_m16n8k16: 6 x 32 registers per warp */
    const void **rows;   /* dq_emul_ldmatrix_x4_trans: 32 row addresses per warp */
    std::vector<dq_emul_copy> *async; /* per thread: its cp.async copies not yet landed */
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
inline unsigned short __half_as_ushort(__half h) {
    unsigned short u;
    std::memcpy(&u, &h, sizeof u);
    return u;
}
inline __half __ushort_as_half(unsigned short u) {
    __half h;
    std::memcpy(&h, &u, sizeof h);
    return h;
}

/* __nv_bfloat16: an f32's top 16 bits, rounded to nearest even (a NaN stays a quiet NaN). */
struct __nv_bfloat16 {
    uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(uint16_t) ((u >> 16) | 0x40)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{(uint16_t) (u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) {
    uint32_t u = (uint32_t) b.bits << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16{u}; }

/* PTX mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 (kernels/cuda/mma.cuh), which every
 * lane of a warp calls with its own fragments: each posts its A and B registers, then computes
 * its four elements of C from the whole tiles, summed in double and rounded once. The fragment
 * layout is the PTX ISA's (g = lane / 4, t = lane % 4; a pair's first element in the low half):
 * A[r][k] is in lane (r % 8) * 4 + (k % 8) / 2, register (r >= 8) + 2 * (k >= 8); B[k][n] in lane
 * n * 4 + (k % 8) / 2, register (k >= 8); c[i] is C[g + 8 * (i >= 2)][2t + i % 2]. */
inline float dq_emul_pair_elem(uint32_t pair, int k, bool bf16) {
    unsigned short bits = (unsigned short) (pair >> (16 * (k & 1)));
    return bf16 ? __bfloat162float(__ushort_as_bfloat16(bits))
                : __half2float(__ushort_as_half(bits));
}
/* bf16: the .bf16 variant (same layout). */
inline void dq_emul_mma_m16n8k16(float c[4], const uint32_t a[4], const uint32_t b[2],
                                 bool bf16) {
    uint32_t *slots = dq_emul_cur->mma + 6 * 32 * (threadIdx.x / 32); /* per lane: a[4], b[2] */
    unsigned lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; i++) slots[6 * lane + i] = a[i];
    slots[6 * lane + 4] = b[0];
    slots[6 * lane + 5] = b[1];
    __syncwarp();
    float out[4];
    for (int i = 0; i < 4; i++) {
        int r = (int) g + 8 * (i >= 2), n = (int) (2 * t) + i % 2;
        double sum = c[i];
        for (int k = 0; k < 16; k++) {
            uint32_t ar = slots[6 * ((r % 8) * 4 + (k % 8) / 2) + (r >= 8) + 2 * (k >= 8)];
            uint32_t br = slots[6 * (n * 4 + (k % 8) / 2) + 4 + (k >= 8)];
            sum += (double) dq_emul_pair_elem(ar, k, bf16) * dq_emul_pair_elem(br, k, bf16);
        }
        out[i] = (float) sum;
    }
    __syncwarp(); /* every lane has read the slots before any posts its next product's */
    std::memcpy(c, out, sizeof out);
}

/* PTX cp.async.cg.shared.global of 16 bytes and cp.async.wait_all (kernels/cuda/mma.cuh): the
 * copy lands only when its thread waits, the latest a GPU allows, so a read of the destination
 * before the wait (and the barrier after it, for other threads) sees the poison left there. */
inline void dq_emul_copy16_async(void *dst, const void *src) {
    dq_emul_cur->async[threadIdx.x].push_back({dst, src});
}
inline void dq_emul_async_wait_all() {
    std::vector<dq_emul_copy> &pending = dq_emul_cur->async[threadIdx.x];
    for (const dq_emul_copy &c : pending) std::memcpy(c.dst, c.src, 16);
    pending.clear();
}

/* PTX ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 (kernels/cuda/mma.cuh): each lane posts
 * the row address it gives (lanes 8j..8j+7: rows 0..7 of matrix j), then takes from each matrix
 * j the elements [2t][g] and [2t+1][g] into r[j] (g = lane / 4, t = lane % 4). */
inline void dq_emul_ldmatrix_x4_trans(uint32_t r[4], const void *row) {
    const void **slots = dq_emul_cur->rows + 32 * (threadIdx.x / 32);
    unsigned lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    slots[lane] = row;
    __syncwarp();
    for (int j = 0; j < 4; j++) {
        const uint16_t *r0 = (const uint16_t *) slots[8 * j + 2 * t];
        const uint16_t *r1 = (const uint16_t *) slots[8 * j + 2 * t + 1];
        r[j] = (uint32_t) r0[g] | (uint32_t) r1[g] << 16;
    }
    __syncwarp(); /* every lane has read the addresses before any posts its next */
}

#endif
