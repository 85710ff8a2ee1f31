/* kernels/cuda/attention_flash_kernel.cuh: the device code of the fused attention (see
 * attention_flash.cu, which launches it). Kept apart so tests/unit/test_flash_emul.cpp can call
 * it directly on the CPU through the CUDA emulation (tests/emul/). Needs, from the includer:
 * __half and its conversions, nvcuda::wmma, the thread built-ins, exp2f/fmaxf/INFINITY, and
 * DQ_CUDA_DYNAMIC_SMEM. */
#ifndef DQ_CUDA_ATTENTION_FLASH_KERNEL_CUH
#define DQ_CUDA_ATTENTION_FLASH_KERNEL_CUH

#include <stdint.h>

namespace dq_flash {

using namespace nvcuda;

constexpr int kBK = 64; /* keys per tile */

/* q, k, v and y are F32 or F16 activations (T float or __half): loads widen, y rounds once. */
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ void store(float *p, float v) { *p = v; }
__device__ __forceinline__ void store(__half *p, float v) { *p = __float2half_rn(v); }

/* Warps per block for head dimension DP: each warp owns 16 queries, so a block takes 16 * W
 * queries and every K/V tile it loads serves them all. 8 warps halve the K/V traffic of 4 but
 * need about twice the shared memory: used up to DP 80 (SD 1.x's 40 and 80). */
template <int DP>
struct Warps {
    static constexpr int n = DP <= 80 ? 8 : 4;
    static constexpr int threads = n * 32;
    static constexpr int queries = n * 16;
};

/* Shared memory of one block for a head dimension padded to DP (a multiple of 16). Row strides
 * are padded (+8 halves, +4 floats) against bank conflicts and keep WMMA's rules: every fragment
 * starts 32-byte aligned, ldm is a multiple of 8 halves or 4 floats. Every region's offset is a
 * multiple of 32 bytes. */
template <int DP>
struct Layout {
    static constexpr int ldh = DP + 8;  /* halves per row of the Q, K and V tiles */
    static constexpr int lds = kBK + 4; /* floats per row of a warp's scores */
    static constexpr int ldp = kBK + 8; /* halves per row of a warp's probabilities */
    static constexpr int ldo = DP + 4;  /* floats per row of a warp's output accumulator */
    static constexpr int kWarps = Warps<DP>::n, kBQ = Warps<DP>::queries;
    static constexpr size_t q = 0;
    static constexpr size_t k = q + (size_t) kBQ * ldh * 2;
    static constexpr size_t v = k + (size_t) kBK * ldh * 2;
    static constexpr size_t s = v + (size_t) kBK * ldh * 2;
    static constexpr size_t p = s + (size_t) kWarps * 16 * lds * 4;
    static constexpr size_t o = p + (size_t) kWarps * 16 * ldp * 2;
    static constexpr size_t stats = o + (size_t) kWarps * 16 * ldo * 4;
    static constexpr size_t bytes = stats + (size_t) kWarps * 32 * 4;
};

/* rows x DP halves at dst (row stride ldh) = rows [row0, row0 + rows) of one head of src
 * (row stride ld elements), rounded to f16 (f16 data is copied: widening and rounding back
 * restore its bits); rows past `total` and columns past d are zero. */
template <int DP, typename T>
__device__ void load_tile(__half *dst, int ldh, const T *src, int64_t ld, int64_t row0,
                            int64_t total, int d, int rows) {
    for (int i = threadIdx.x; i < rows * DP; i += Warps<DP>::threads) {
        int r = i / DP, c = i % DP;
        float x = row0 + r < total && c < d ? to_f32(src[(row0 + r) * ld + c]) : 0.0f;
        dst[r * ldh + c] = __float2half_rn(x);
    }
}

/* Grid (query blocks, batch * heads). q, y: [B, Lq, H*d]; k, v: [B, Lk, H*d], all of type T
 * (float or __half). scale_log2 is log2(e) / sqrt(d): scores go through exp2. Causal: key j is
 * masked for query i when j > i. */
template <int DP, typename T = float>
__global__ void __launch_bounds__(Warps<DP>::threads)
    attention_kernel(const T *q, const T *k, const T *v, T *y, int64_t lq, int64_t lk, int heads,
                     int d, float scale_log2, int causal) {
    using L = Layout<DP>;
    constexpr int kBQ = L::kBQ;
    DQ_CUDA_DYNAMIC_SMEM(smem);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __half *sq = (__half *) (smem + L::q), *sk = (__half *) (smem + L::k),
           *sv = (__half *) (smem + L::v);
    float *ss = (float *) (smem + L::s) + warp * 16 * L::lds;
    __half *sp = (__half *) (smem + L::p) + warp * 16 * L::ldp;
    float *so = (float *) (smem + L::o) + warp * 16 * L::ldo;
    float *salpha = (float *) (smem + L::stats) + warp * 32, *sl = salpha + 16;

    const int64_t b = blockIdx.y / heads, h = blockIdx.y % heads, hd = (int64_t) heads * d;
    const int64_t q0 = (int64_t) blockIdx.x * kBQ;
    const T *qh = q + b * lq * hd + h * d, *kh = k + b * lk * hd + h * d,
            *vh = v + b * lk * hd + h * d;
    T *yh = y + b * lq * hd + h * d;

    load_tile<DP>(sq, L::ldh, qh, hd, q0, lq, d, kBQ);
    for (int i = lane; i < 16 * DP; i += 32) so[(i / DP) * L::ldo + i % DP] = 0.0f;

    /* Softmax state: two lanes per row, each owning 32 of the tile's 64 key columns. */
    const int row = lane >> 1, col0 = (lane & 1) * 32;
    const int64_t qi = q0 + warp * 16 + row;
    float m = -INFINITY, l = 0.0f;

    int64_t kend = lk;
    if (causal) {
        int64_t last_q = (q0 + kBQ < lq ? q0 + kBQ : lq) - 1;
        if (last_q + 1 < kend) kend = last_q + 1;
    }
    for (int64_t k0 = 0; k0 < kend; k0 += kBK) {
        __syncthreads(); /* the previous tile is no longer read (and Q is in place) */
        load_tile<DP>(sk, L::ldh, kh, hd, k0, lk, d, kBK);
        load_tile<DP>(sv, L::ldh, vh, hd, k0, lk, d, kBK);
        __syncthreads();

        /* S[16, kBK] = Q_warp K_tile^T. K stored [key][dim] is B = K^T in column-major. */
        for (int j = 0; j < kBK / 16; j++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int kk = 0; kk < DP / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, sq + warp * 16 * L::ldh + kk * 16, L::ldh);
                wmma::load_matrix_sync(fb, sk + j * 16 * L::ldh + kk * 16, L::ldh);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(ss + j * 16, acc, L::lds, wmma::mem_row_major);
        }
        __syncwarp();

        /* Online softmax of this lane's half row: new max, rescale factor for what was summed
         * so far, probabilities rounded to f16 for the P V product. */
        {
            const float *srow = ss + row * L::lds + col0;
            float x[32], mx = -INFINITY;
#pragma unroll
            for (int c = 0; c < 32; c++) {
                int64_t key = k0 + col0 + c;
                bool ok = key < lk && (!causal || key <= qi);
                x[c] = ok ? srow[c] * scale_log2 : -INFINITY;
                mx = fmaxf(mx, x[c]);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            float m_new = fmaxf(m, mx);
            /* A row with every key so far masked keeps exponent base 0: exp2(-inf) = 0. */
            float base = m_new == -INFINITY ? 0.0f : m_new;
            float alpha = exp2f(m - base), sum = 0.0f;
            __half *prow = sp + row * L::ldp + col0;
#pragma unroll
            for (int c = 0; c < 32; c++) {
                __half ph = __float2half_rn(exp2f(x[c] - base));
                prow[c] = ph;
                sum += __half2float(ph); /* the weights P V really uses */
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            l = l * alpha + sum;
            m = m_new;
            if ((lane & 1) == 0) salpha[row] = alpha;
        }
        __syncwarp();
        for (int i = lane; i < 16 * DP; i += 32) so[(i / DP) * L::ldo + i % DP] *= salpha[i / DP];
        __syncwarp();

        /* O[16, DP] += P[16, kBK] V_tile[kBK, DP], the accumulator round-tripping through shared
         * memory (WMMA hides which lane holds which element, and O is rescaled per row above). */
        for (int n = 0; n < DP / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::load_matrix_sync(acc, so + n * 16, L::ldo, wmma::mem_row_major);
#pragma unroll
            for (int kb = 0; kb < kBK / 16; kb++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
                wmma::load_matrix_sync(fa, sp + kb * 16, L::ldp);
                wmma::load_matrix_sync(fb, sv + kb * 16 * L::ldh + n * 16, L::ldh);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(so + n * 16, acc, L::ldo, wmma::mem_row_major);
        }
    }
    if ((lane & 1) == 0) sl[row] = l;
    __syncwarp();
    for (int i = lane; i < 16 * d; i += 32) {
        int r = i / d, c = i % d;
        int64_t qr = q0 + warp * 16 + r;
        if (qr < lq) store(yh + qr * hd + c, so[r * L::ldo + c] / sl[r]);
    }
}

} // namespace dq_flash

#endif
