/* tests/unit/cuda_emul.h: just enough of CUDA, emulated on the CPU, to run one of our kernels'
 * device code here, where there is no GPU: a block is one OS thread per CUDA thread, with real
 * barriers for __syncthreads and __syncwarp and a real exchange for __shfl_xor_sync; __half is
 * _Float16 (the same round-to-nearest-even rounding); WMMA 16x16x16 tiles are computed whole by
 * every lane of the warp (as the hardware's collective ops give every lane the same tile), and
 * stored by lane 0 only. What it checks: indexing, masking, tiling and the arithmetic of a
 * kernel. What it cannot: timing, shared-memory size limits, a missing barrier that a real GPU
 * would expose (threads here run in whatever order the OS picks). C++20. */
#ifndef DQ_TESTS_CUDA_EMUL_H
#define DQ_TESTS_CUDA_EMUL_H

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

/* The current emulated thread's coordinates and its block's shared state. */
struct dq_emul_block {
    unsigned char *smem;
    std::barrier<> *block_bar;
    std::barrier<> **warp_bar; /* one per warp */
    float *shfl;              /* 32 slots per warp */
};
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
inline thread_local dq_emul_block *dq_emul_cur;

#define DQ_CUDA_DYNAMIC_SMEM(name) unsigned char *name = dq_emul_cur->smem

inline unsigned dq_emul_warp() { return threadIdx.x / 32; }
inline void __syncthreads() { dq_emul_cur->block_bar->arrive_and_wait(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void) mask;
    dq_emul_cur->warp_bar[dq_emul_warp()]->arrive_and_wait();
}
inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    (void) mask;
    float *slots = dq_emul_cur->shfl + 32 * dq_emul_warp();
    unsigned lane = threadIdx.x % 32;
    slots[lane] = v;
    __syncwarp();
    float r = slots[lane ^ (unsigned) lane_mask];
    __syncwarp();
    return r;
}

struct __half {
    _Float16 v;
};
inline __half __float2half_rn(float x) { return __half{(_Float16) x}; }
inline float __half2float(__half h) { return (float) h.v; }

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

template <class Use, class T, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout> &f, const T *p, unsigned ldm) {
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            bool row = std::is_same<Layout, row_major>::value;
            const T &e = row ? p[r * ldm + c] : p[c * ldm + r];
            if constexpr (std::is_same<T, __half>::value)
                f.x[r][c] = __half2float(e);
            else
                f.x[r][c] = (float) e;
        }
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p,
                             unsigned ldm, layout_t l) {
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.x[r][c] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f,
                              unsigned ldm, layout_t l) {
    if (threadIdx.x % 32 != 0) return; /* every lane holds the same tile: one writes it */
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r][c];
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float v) {
    for (auto &row : f.x)
        for (float &e : row) e = v;
}
template <class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, __half, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, __half, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
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

/* Runs body (a kernel call with its arguments bound) on every block of grid, one block at a
 * time, each with block.x threads (a multiple of 32) and smem_bytes of shared memory filled with
 * 0xff bytes (NaN as f32 and as f16), so a read of a value the kernel never wrote shows. */
inline void dq_emul_launch(dim3 grid, dim3 block, size_t smem_bytes,
                           const std::function<void()> &body) {
    unsigned n = block.x, warps = n / 32;
    /* Exactly smem_bytes, 128-byte aligned, so ASan reports an access past the block's share. */
    std::unique_ptr<unsigned char, void (*)(unsigned char *)> smem(
        static_cast<unsigned char *>(::operator new(smem_bytes, std::align_val_t(128))),
        [](unsigned char *p) { ::operator delete(p, std::align_val_t(128)); });
    unsigned char *base = smem.get();
    std::vector<float> shfl(32 * warps);
    for (unsigned by = 0; by < grid.y; by++)
        for (unsigned bx = 0; bx < grid.x; bx++) {
            std::memset(base, 0xff, smem_bytes);
            std::barrier<> block_bar((std::ptrdiff_t) n);
            std::vector<std::unique_ptr<std::barrier<>>> owned;
            std::vector<std::barrier<> *> warp_bars;
            for (unsigned w = 0; w < warps; w++) {
                owned.push_back(std::make_unique<std::barrier<>>(32));
                warp_bars.push_back(owned.back().get());
            }
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < n; t++)
                threads.emplace_back([&, t] {
                    dq_emul_block blk{base, &block_bar, warp_bars.data(), shfl.data()};
                    dq_emul_cur = &blk;
                    threadIdx = dim3{t, 0, 0};
                    blockIdx = dim3{bx, by, 0};
                    blockDim = block;
                    gridDim = grid;
                    body();
                });
            for (auto &th : threads) th.join();
        }
}

#endif
