/* tests/unit/test_flash_emul.cpp: the CUDA backend's fused attention kernel
 * (kernels/cuda/attention_flash_kernel.cuh) run on the CPU through the CUDA emulation
 * (tests/emul/), against the CPU backend's attention, on more shapes and a tighter bound than
 * the whole-backend emulated op test (tests/emul/ops_cuda_emul). ASan watches its accesses. */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include <cuda_runtime_api.h> /* the emulation's (tests/emul/include) */

#include "kernels/cuda/attention_flash_kernel.cuh"

extern "C" {
#include "common/log.h"
#include "kernels/backend.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/ops.h"
#include "kernels/rng.h"
}

/* cmocka last: its fail() macro would rewrite the C++ library's ios::fail(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

extern "C" {
#include <cmocka.h>
}

/* The kernel rounds q, k, v and the probabilities to f16 once each (unit roundoff 2^-11, about
 * 4.9e-4) and sums in f32; their errors add up to about 1e-3 at most, far inside the f16 mode's
 * 1e-2 on a GPU (tests/gpu/ops_cuda_vs_cpu.c). The emulation is deterministic, so it can hold
 * the kernel to the tighter bound: a 1% slip in a normaliser fails it. BF16 activations run the
 * products in bf16, whose unit roundoff (2^-8) is 8 times f16's: the same bound scaled by 8. */
#define S_TOL 2e-3
#define S_TOL_BF16 (8 * S_TOL)

/* One warp: D = A B + C through dq_mma::m16n8k16, each lane building its fragments element by
 * element from the PTX ISA's formulas for a_i, b_i and c_i (the per-element form, not the
 * register pairs the kernel and the emulation use), so the emulated product is checked against
 * the documented layout independently of the kernel. */
static void s_mma_kernel(const float *a, const float *b, const float *c, float *d) {
    int lane = (int) threadIdx.x % 32, g = lane >> 2, t = lane % 4;
    __half ah[8], bh[4];
    for (int i = 0; i < 8; i++) {
        int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
        int col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
        ah[i] = __float2half_rn(a[row * 16 + col]);
    }
    for (int i = 0; i < 4; i++) {
        int row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0), col = g;
        bh[i] = __float2half_rn(b[row * 8 + col]);
    }
    uint32_t ar[4], br[2];
    for (int r = 0; r < 4; r++) ar[r] = dq_mma::pack_pair(ah[2 * r], ah[2 * r + 1]);
    for (int r = 0; r < 2; r++) br[r] = dq_mma::pack_pair(bh[2 * r], bh[2 * r + 1]);
    float acc[4];
    for (int i = 0; i < 4; i++)
        acc[i] = c[(i < 2 ? g : g + 8) * 8 + t * 2 + (i & 1)];
    dq_mma::m16n8k16<__half>(acc, ar, br);
    for (int i = 0; i < 4; i++)
        d[(i < 2 ? g : g + 8) * 8 + t * 2 + (i & 1)] = acc[i];
}

static void test_mma_layout(void **state) {
    (void) state;
    /* Small integers: exact in f16, and every product sum exact in f32. */
    std::vector<float> a(256), b(128), c(128), d(128, NAN);
    for (int i = 0; i < 256; i++)
        a[i] = (float) ((i * 7) % 13 - 6);
    for (int i = 0; i < 128; i++)
        b[i] = (float) ((i * 5) % 11 - 5);
    for (int i = 0; i < 128; i++)
        c[i] = (float) (i % 9);
    DQ_EMUL_LAUNCH(s_mma_kernel, dim3(1), dim3(32), 0, nullptr, a.data(), b.data(), c.data(),
                   d.data());
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            float want = c[r * 8 + n];
            for (int k = 0; k < 16; k++)
                want += a[r * 16 + k] * b[k * 8 + n];
            assert_float_equal(d[r * 8 + n], want, 0.0f);
        }
}

/* Load the tiles an element at a time even where vector_loads() allows eight (the launcher's
 * path for unaligned tensors and head sizes not a multiple of 8). */
static bool s_scalar_loads = false;

/* Runs the emulated kernel for head dimension padded to DP on activations of type T (float,
 * __half or __nv_bfloat16), like attention_flash.cu's launcher. */
template <int DP, typename T>
static void s_run_kernel(const T *q, const T *k, const T *v, T *y, int64_t batch, int64_t lq,
                         int64_t lk, int heads, int d, bool causal) {
    using namespace dq_flash;
    size_t bytes = Layout<DP>::bytes;
    float scale_log2 = (float) (1.4426950408889634 / std::sqrt((double) d));
    dim3 grid{(unsigned) ((lq + Warps<DP>::queries - 1) / Warps<DP>::queries),
              (unsigned) (batch * heads), 1};
    dim3 block{(unsigned) Warps<DP>::threads, 1, 1};
    void (*kernel)(const T *, const T *, const T *, T *, int64_t, int64_t, int, int, float, int,
                   int) = attention_kernel<DP, T>;
    assert_int_equal(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) bytes),
        cudaSuccess);
    bool vec = vector_loads(q, k, v, d) && !s_scalar_loads;
    DQ_EMUL_LAUNCH(kernel, grid, block, bytes, nullptr, q, k, v, y, lq, lk, heads, d, scale_log2,
                   causal ? 1 : 0, vec ? 1 : 0);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
}

template <typename T>
static void s_flash(const T *q, const T *k, const T *v, T *y, int64_t batch, int64_t lq,
                    int64_t lk, int heads, int d, bool causal) {
    if (d <= 32) return s_run_kernel<32, T>(q, k, v, y, batch, lq, lk, heads, d, causal);
    if (d <= 48) return s_run_kernel<48, T>(q, k, v, y, batch, lq, lk, heads, d, causal);
    if (d <= 64) return s_run_kernel<64, T>(q, k, v, y, batch, lq, lk, heads, d, causal);
    if (d <= 80) return s_run_kernel<80, T>(q, k, v, y, batch, lq, lk, heads, d, causal);
    if (d <= 128) return s_run_kernel<128, T>(q, k, v, y, batch, lq, lk, heads, d, causal);
    return s_run_kernel<160, T>(q, k, v, y, batch, lq, lk, heads, d, causal);
}

static void s_to(float x, __half *h) { *h = __float2half_rn(x); }
static void s_to(float x, __nv_bfloat16 *h) { *h = __float2bfloat16_rn(x); }
static float s_from(__half h) { return __half2float(h); }
static float s_from(__nv_bfloat16 h) { return __bfloat162float(h); }

/* x rounded to H (x keeps the rounded values, so the CPU reference sees what the kernel
 * reads). */
template <typename H>
static std::vector<H> s_round(std::vector<float> &x) {
    std::vector<H> h(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        s_to(x[i], &h[i]);
        x[i] = s_from(h[i]);
    }
    return h;
}

/* The kernel on 16-bit activations H: q, k, v rounded first (in place), y written as H and
 * widened into got. */
template <typename H>
static void s_flash16(std::vector<float> &q, std::vector<float> &k, std::vector<float> &v,
                      std::vector<float> &got, int64_t b, int64_t lq, int64_t lk, int heads,
                      int d, bool causal) {
    std::vector<H> qh = s_round<H>(q), kh = s_round<H>(k), vh = s_round<H>(v);
    /* Exactly sized so ASan sees a write past the last row; NaN poison. */
    std::unique_ptr<H[]> y(new H[got.size()]);
    for (size_t i = 0; i < got.size(); i++) s_to(NAN, &y[i]);
    s_flash(qh.data(), kh.data(), vh.data(), y.get(), b, lq, lk, heads, d, causal);
    for (size_t i = 0; i < got.size(); i++) got[i] = s_from(y[i]);
}

/* Random values in [-range, range) from a seeded generator. */
static std::vector<float> s_random(size_t n, uint64_t seed, float range) {
    std::vector<float> x(n);
    dq_rng_t *rng = dq_rng_new(seed);
    assert_non_null(rng);
    for (float &e : x) e = (float) ((dq_rng_u32(rng) / 4294967296.0 * 2.0 - 1.0) * range);
    dq_rng_destroy(&rng);
    return x;
}

static double s_rel_l2(const std::vector<float> &got, const std::vector<float> &want) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < got.size(); i++) {
        double e = (double) got[i] - (double) want[i];
        num += e * e;
        den += (double) want[i] * want[i];
    }
    return std::sqrt(num / (den > 0 ? den : 1.0));
}

/* One case: the kernel's y against the CPU backend's; range scales q and k, so the softmax
 * goes from flat (0.5) to peaked (3: scores up to a few dozen). act: the activations' dtype
 * (F16/BF16: q, k, v rounded first, y written in that dtype and widened here). */
static void s_case(int64_t b, int64_t lq, int64_t lk, int heads, int d, bool causal, float range,
                   dq_dtype_t act = DQ_DTYPE_F32) {
    int64_t hd = (int64_t) heads * d;
    size_t nq = (size_t) (b * lq * hd), nk = (size_t) (b * lk * hd);
    std::vector<float> q = s_random(nq, 1, range), k = s_random(nk, 2, range),
                       v = s_random(nk, 3, 1.0f), want(nq), got(nq);
    if (act == DQ_DTYPE_F16) {
        s_flash16<__half>(q, k, v, got, b, lq, lk, heads, d, causal);
    } else if (act == DQ_DTYPE_BF16) {
        s_flash16<__nv_bfloat16>(q, k, v, got, b, lq, lk, heads, d, causal);
    } else {
        std::unique_ptr<float[]> y(new float[nq]);
        for (size_t i = 0; i < nq; i++) y[i] = NAN;
        s_flash(q.data(), k.data(), v.data(), y.get(), b, lq, lk, heads, d, causal);
        got.assign(y.get(), y.get() + nq);
    }

    dq_backend_t *cpu = dq_backend_cpu_new(0, 1);
    assert_non_null(cpu);
    dq_tensor_t tq, tk, tv, ty;
    int64_t qs[3] = {b, lq, hd}, ks[3] = {b, lk, hd};
    assert_int_equal(dq_tensor_init(&tq, DQ_DTYPE_F32, 3, qs, q.data(), NULL, "q"), 0);
    assert_int_equal(dq_tensor_init(&tk, DQ_DTYPE_F32, 3, ks, k.data(), NULL, "k"), 0);
    assert_int_equal(dq_tensor_init(&tv, DQ_DTYPE_F32, 3, ks, v.data(), NULL, "v"), 0);
    assert_int_equal(dq_tensor_init(&ty, DQ_DTYPE_F32, 3, qs, want.data(), NULL, "y"), 0);
    assert_int_equal(dq_op_attention(cpu, &tq, &tk, &tv, heads, causal, &ty), 0);
    dq_backend_destroy(&cpu);

    size_t nan = 0;
    for (float e : got) nan += std::isnan(e) ? 1 : 0;
    double err = s_rel_l2(got, want);
    printf("# B%lld Lq%lld Lk%lld H%d D%d%s range %.1f%s: rel L2 %.2e, %zu NaN\n", (long long) b,
           (long long) lq, (long long) lk, heads, d, causal ? " causal" : "", range,
           act == DQ_DTYPE_F32 ? "" : act == DQ_DTYPE_F16 ? " f16" : " bf16", err, nan);
    assert_int_equal(nan, 0);
    assert_true(err <= (act == DQ_DTYPE_BF16 ? S_TOL_BF16 : S_TOL));
}

/* SD 1.x at 320 channels (d 40): query blocks and key tiles cut short. */
static void test_d40_partial_tiles(void **state) {
    (void) state;
    s_case(2, 100, 77, 2, 40, false, 1.0f);
    s_case(1, 130, 130, 1, 40, false, 3.0f);
}

/* CLIP's causal self-attention (d 64, 77 tokens) and a causal case over several key tiles. */
static void test_causal(void **state) {
    (void) state;
    s_case(1, 77, 77, 3, 64, true, 1.0f);
    s_case(1, 150, 150, 1, 32, true, 3.0f);
}

/* The other padded sizes: d 80 (640 channels), 100 (-> 128), 160 (1280 channels), 8 (-> 32). */
static void test_head_sizes(void **state) {
    (void) state;
    s_case(1, 64, 77, 2, 80, false, 1.0f);
    s_case(1, 70, 65, 1, 100, false, 1.0f);
    s_case(1, 65, 129, 1, 160, false, 2.0f);
    s_case(2, 33, 33, 3, 8, true, 1.0f);
}

/* A flat softmax over many keys: the output is near the mean of v, the error relative to a small
 * signal; guards the running sums across 4 key tiles. */
static void test_many_keys_flat(void **state) {
    (void) state;
    s_case(1, 20, 256, 1, 40, false, 0.5f);
}

/* F16 activations (the kernel instantiated for __half): the same tiling on 2-byte loads and
 * stores; one extra rounding of y, within the same bound. */
static void test_f16_activations(void **state) {
    (void) state;
    s_case(2, 100, 77, 2, 40, false, 1.0f, DQ_DTYPE_F16);
    s_case(1, 77, 77, 3, 64, true, 1.0f, DQ_DTYPE_F16);
    s_case(1, 65, 129, 1, 160, false, 2.0f, DQ_DTYPE_F16);
    s_case(2, 33, 33, 3, 8, true, 1.0f, DQ_DTYPE_F16);
}

/* The element-wise tile loads on shapes that would take the vector loads (d 40 and 64, F32 and
 * F16). */
static void test_scalar_loads(void **state) {
    (void) state;
    s_scalar_loads = true;
    s_case(2, 100, 77, 2, 40, false, 1.0f);
    s_case(1, 77, 77, 3, 64, true, 1.0f, DQ_DTYPE_F16);
    s_scalar_loads = false;
}

/* BF16 activations (the kernel instantiated for __nv_bfloat16: bf16 tiles and products). */
static void test_bf16_activations(void **state) {
    (void) state;
    s_case(2, 100, 77, 2, 40, false, 1.0f, DQ_DTYPE_BF16);
    s_case(1, 77, 77, 3, 64, true, 1.0f, DQ_DTYPE_BF16);
    s_case(1, 65, 129, 1, 160, false, 2.0f, DQ_DTYPE_BF16);
    s_case(1, 70, 65, 1, 100, false, 1.0f, DQ_DTYPE_BF16);
}

int main(void) {
    dq_log_init("test_flash_emul", DQ_LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mma_layout),
        cmocka_unit_test(test_d40_partial_tiles),
        cmocka_unit_test(test_causal),
        cmocka_unit_test(test_head_sizes),
        cmocka_unit_test(test_many_keys_flat),
        cmocka_unit_test(test_f16_activations),
        cmocka_unit_test(test_scalar_loads),
        cmocka_unit_test(test_bf16_activations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
