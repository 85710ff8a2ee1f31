/* kernels/cuda/attention_flash_kernel.cuh: the device code of the fused attention (see
 * attention_flash.cu, which launches it). Kept apart so tests/unit/test_flash_emul.cpp can call
 * it directly on the CPU through the CUDA emulation (tests/emul/). Needs, from the includer:
 * __half, __nv_bfloat16 and their conversions, the thread built-ins, __shfl_xor_sync,
 * exp2f/fmaxf/INFINITY, and DQ_CUDA_DYNAMIC_SMEM. */
#ifndef DQ_CUDA_ATTENTION_FLASH_KERNEL_CUH
#define DQ_CUDA_ATTENTION_FLASH_KERNEL_CUH

#include <stdint.h>

#include "kernels/cuda/mma.cuh"

namespace dq_flash {

constexpr int kBK = 64; /* keys per tile */

/* q, k, v and y are F32, F16 or BF16 activations (T float, __half or __nv_bfloat16). The tiles
 * and the tensor-core products use M, bf16 for BF16 activations (whose range f16 lacks) and f16
 * otherwise: loads round to M (data already of type M is copied unchanged), y rounds once. */
template <typename T>
struct Mma {
    using type = __half;
};
template <>
struct Mma<__nv_bfloat16> {
    using type = __nv_bfloat16;
};

__device__ __forceinline__ void to16(float x, __half *d) { *d = __float2half_rn(x); }
__device__ __forceinline__ void to16(float x, __nv_bfloat16 *d) { *d = __float2bfloat16_rn(x); }
__device__ __forceinline__ void to16(__half x, __half *d) { *d = x; }
__device__ __forceinline__ void to16(__nv_bfloat16 x, __nv_bfloat16 *d) { *d = x; }
__device__ __forceinline__ void store(float *p, float v) { *p = v; }
__device__ __forceinline__ void store(__half *p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* Eight consecutive elements at src (global, 16-byte aligned) as M at dst (shared, 16-byte
 * aligned): data of type M is copied without waiting (dq_mma::async_wait_all), f32 converted. */
template <typename M>
__device__ __forceinline__ void load8(M *dst, const M *src) {
    dq_mma::copy16_async(dst, src);
}
template <typename M>
__device__ __forceinline__ void load8(M *dst, const float *src) {
    alignas(16) float f[8];
    alignas(16) M h[8];
    dq_mma::copy16(f, src);
    dq_mma::copy16(f + 4, src + 4);
    for (int e = 0; e < 8; e++) to16(f[e], &h[e]);
    dq_mma::copy16(dst, h);
}

/* Whether the tiles may be loaded eight elements at a time: every row of every head starts on
 * 16 bytes (the launcher and the test decide alike). */
template <typename T>
__host__ __device__ inline bool vector_loads(const T *q, const T *k, const T *v, int d) {
    return d % 8 == 0 && ((uintptr_t) q | (uintptr_t) k | (uintptr_t) v) % 16 == 0;
}

/* Warps per block for head dimension DP: each warp owns 16 queries, so a block takes 16 * W
 * queries and every K/V tile it loads serves them all. 8 warps halve the K/V traffic of 4 but
 * need more registers per block: used up to DP 80 (SD 1.x's 40 and 80). */
template <int DP>
struct Warps {
    static constexpr int n = DP <= 80 ? 8 : 4;
    static constexpr int threads = n * 32;
    static constexpr int queries = n * 16;
    /* Blocks per SM the registers must allow (65536 of them): up to DP 128, 12 warps or more. */
    static constexpr int min_blocks = n == 8 ? 2 : DP <= 128 ? 3 : 1;
};

/* Shared memory of one block for a head dimension padded to DP (a multiple of 16): the block's
 * queries and two key and value tiles (one computed on while the next arrives), a row per
 * token. Rows are padded by 8 halves: the eight rows a fragment load or an ldmatrix phase
 * touches then fall on distinct banks, and rows stay 16-byte aligned for the vector loads and
 * ldmatrix. */
template <int DP>
struct Layout {
    static constexpr int ldh = DP + 8; /* halves per row */
    static constexpr int kBQ = Warps<DP>::queries;
    static constexpr size_t tile = (size_t) kBK * ldh * 2; /* bytes of one K or V tile */
    static constexpr size_t q = 0;
    static constexpr size_t k = q + (size_t) kBQ * ldh * 2; /* two K tiles */
    static constexpr size_t v = k + 2 * tile;               /* two V tiles */
    static constexpr size_t bytes = v + 2 * tile;
};

/* Rows [row0, row0 + rows) of one head of src (row stride ld elements) as M into dst (row
 * stride ldd). Columns [0, DP) are written: past d, and for rows past `total`, zeros. vec:
 * vector_loads() holds; then 16-bit rows arrive asynchronously (see load8). */
template <int DP, typename M, typename T>
__device__ void load_tile(M *dst, int ldd, const T *src, int64_t ld, int64_t row0, int64_t total,
                          int d, int rows, bool vec) {
    constexpr int kThreads = Warps<DP>::threads;
    M zero;
    to16(0.0f, &zero);
    if (vec) {
        for (int i = threadIdx.x; i < rows * (DP / 8); i += kThreads) {
            int r = i / (DP / 8), c = i % (DP / 8) * 8;
            if (row0 + r < total && c < d) {
                load8(dst + r * ldd + c, src + (row0 + r) * ld + c);
            } else {
                alignas(16) M h[8];
                for (int e = 0; e < 8; e++) h[e] = zero;
                dq_mma::copy16(dst + r * ldd + c, h);
            }
        }
        return;
    }
    for (int i = threadIdx.x; i < rows * DP; i += kThreads) {
        int r = i / DP, c = i % DP;
        M x = zero;
        if (row0 + r < total && c < d) to16(src[(row0 + r) * ld + c], &x);
        dst[r * ldd + c] = x;
    }
}

/* Grid (query blocks, batch * heads). q, y: [B, Lq, H*d]; k, v: [B, Lk, H*d], all of type T
 * (float, __half or __nv_bfloat16). scale_log2 is log2(e) / sqrt(d): scores go through exp2.
 * Causal: key j is masked for query i when j > i. vec: vector_loads(q, k, v, d).
 *
 * Flash-attention's forward pass with every running value in registers: per key tile, a warp's
 * 16x64 scores S = Q K^T (tensor cores, f32), the online softmax on them, P rounded to M in
 * place as the A operand of O += P V (f32 accumulators), O rescaled per row. y = O / (row sum of
 * the rounded P), written once. */
template <int DP, typename T = float>
__global__ void __launch_bounds__(Warps<DP>::threads, Warps<DP>::min_blocks)
    attention_kernel(const T *q, const T *k, const T *v, T *y, int64_t lq, int64_t lk, int heads,
                     int d, float scale_log2, int causal, int vec) {
    using L = Layout<DP>;
    using M = typename Mma<T>::type;
    constexpr int kBQ = L::kBQ;
    constexpr int kDimSteps = DP / 16; /* k-steps of Q K^T over the head dimension */
    constexpr int kOutTiles = DP / 8;  /* 8-column tiles of O */
    constexpr int kKeyTiles = kBK / 8; /* 8-key tiles of S */
    DQ_CUDA_DYNAMIC_SMEM(smem);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    M *sq = (M *) (smem + L::q);

    const int64_t b = blockIdx.y / heads, h = blockIdx.y % heads, hd = (int64_t) heads * d;
    const int64_t q0 = (int64_t) blockIdx.x * kBQ;
    const T *qh = q + b * lq * hd + h * d, *kh = k + b * lk * hd + h * d,
            *vh = v + b * lk * hd + h * d;
    T *yh = y + b * lq * hd + h * d;

    /* K and V tile i + 1 arrive (asynchronously where the data allow) while tile i is used. */
    auto kv_tile = [&](int64_t i) {
        M *sk = (M *) (smem + L::k + (i & 1) * L::tile);
        M *sv = (M *) (smem + L::v + (i & 1) * L::tile);
        load_tile<DP>(sk, L::ldh, kh, hd, i * kBK, lk, d, kBK, vec != 0);
        load_tile<DP>(sv, L::ldh, vh, hd, i * kBK, lk, d, kBK, vec != 0);
    };
    load_tile<DP>(sq, L::ldh, qh, hd, q0, lq, d, kBQ, vec != 0);
    kv_tile(0);
    dq_mma::async_wait_all();
    __syncthreads();

    /* This warp's 16 queries as A fragments, one per k-step, kept for the whole pass. */
    uint32_t qa[kDimSteps][4];
    const M *qw = sq + warp * 16 * L::ldh;
#pragma unroll
    for (int s = 0; s < kDimSteps; s++) {
        const M *p = qw + g * L::ldh + s * 16 + 2 * t;
        qa[s][0] = dq_mma::load_pair(p);
        qa[s][1] = dq_mma::load_pair(p + 8 * L::ldh);
        qa[s][2] = dq_mma::load_pair(p + 8);
        qa[s][3] = dq_mma::load_pair(p + 8 * L::ldh + 8);
    }

    /* The lane's two rows, g and g + 8: output accumulators, the running maximum of the scaled
     * scores, and the lane's share of the probability sums (the row's four lanes add up last). */
    float o[kOutTiles][4];
#pragma unroll
    for (int n = 0; n < kOutTiles; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int64_t qrow[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
    const int64_t warp_last = q0 + warp * 16 + 15;
    const int out_tiles = (d + 7) / 8; /* the tiles of O that hold columns below d */

    int64_t kend = lk;
    if (causal) {
        int64_t last_q = (q0 + kBQ < lq ? q0 + kBQ : lq) - 1;
        if (last_q + 1 < kend) kend = last_q + 1;
    }
    const int64_t ntiles = (kend + kBK - 1) / kBK;
    for (int64_t it = 0; it < ntiles; it++) {
        const int64_t k0 = it * kBK;
        const M *sk = (const M *) (smem + L::k + (it & 1) * L::tile);
        const M *sv = (const M *) (smem + L::v + (it & 1) * L::tile);
        if (it > 0) {
            dq_mma::async_wait_all();
            __syncthreads(); /* tile it is in place, and tile it - 1 is no longer read */
        }
        if (it + 1 < ntiles) kv_tile(it + 1);
        /* Every key of the tile is masked for this warp's queries (the warp still meets the
         * block's barriers). */
        if (causal && k0 > warp_last) continue;

        /* S = Q K^T: B[dim][key] pairs are consecutive dimensions of one key row. */
        float s[kKeyTiles][4];
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
            for (int st = 0; st < kDimSteps; st++) {
                const M *p = sk + (j * 8 + g) * L::ldh + st * 16 + 2 * t;
                uint32_t kb[2] = {dq_mma::load_pair(p), dq_mma::load_pair(p + 8)};
                dq_mma::m16n8k16<M>(s[j], qa[st], kb);
            }
        }

        /* Online softmax: scale to log2 units, mask, new row maxima over the row's four lanes.
         * Row r sees the tile's keys [0, valid[r]): those below lk and, causal, up to its query. */
        int valid[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            int64_t end = causal && qrow[r] + 1 < lk ? qrow[r] + 1 : lk;
            valid[r] = end - k0 < kBK ? (int) (end - k0) : kBK; /* may be <= 0 */
        }
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                bool ok = j * 8 + 2 * t + (e & 1) < valid[e >> 1];
                s[j][e] = ok ? s[j][e] * scale_log2 : -INFINITY;
                mx[e >> 1] = fmaxf(mx[e >> 1], s[j][e]);
            }
        float base[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            float m_new = fmaxf(m[r], mx[r]);
            /* A row with every key so far masked keeps exponent base 0: exp2(-inf) = 0. */
            base[r] = m_new == -INFINITY ? 0.0f : m_new;
            float alpha = exp2f(m[r] - base[r]);
            m[r] = m_new;
            l[r] *= alpha;
#pragma unroll
            for (int n = 0; n < kOutTiles; n++) {
                o[n][2 * r] *= alpha;
                o[n][2 * r + 1] *= alpha;
            }
        }

        /* P rounded to M straight into A fragments (see mma.cuh): key tile j is half of
         * k-step j / 2. l sums the rounded values, the weights P V really uses. */
        uint32_t pa[kBK / 16][4];
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++) {
            float p[4];
#pragma unroll
            for (int e = 0; e < 4; e++) p[e] = exp2f(s[j][e] - base[e >> 1]);
            pa[j / 2][(j & 1) * 2] = dq_mma::round_pair<M>(p[0], p[1], &l[0]);     /* row g */
            pa[j / 2][(j & 1) * 2 + 1] = dq_mma::round_pair<M>(p[2], p[3], &l[1]); /* row g + 8 */
        }

        /* O += P V: the B fragments of two k-steps (32 keys) for one 8-column tile of O in one
         * ldmatrix, lane l giving key 32 i + l's row. */
#pragma unroll
        for (int n = 0; n < kOutTiles; n++) {
            if (n >= out_tiles) break;
#pragma unroll
            for (int i = 0; i < kBK / 32; i++) {
                uint32_t vb[4];
                dq_mma::ldmatrix_x4_trans(vb, sv + (i * 32 + lane) * L::ldh + n * 8);
                dq_mma::m16n8k16<M>(o[n], pa[2 * i], vb);
                dq_mma::m16n8k16<M>(o[n], pa[2 * i + 1], vb + 2);
            }
        }
    }

#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int n = 0; n < kOutTiles; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int col = n * 8 + 2 * t + (e & 1);
            int64_t row = qrow[e >> 1];
            if (col < d && row < lq) store(yh + row * hd + col, o[n][e] / l[e >> 1]);
        }
}

} // namespace dq_flash

#endif
