/* kernels/cpu/attention_tiled.c: attention from packed K^T and V with AVX-512 register tiles. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

/* Why not sgemm: per head the products are [Lq, D] x [D, Lk] and [Lq, Lk] x [Lk, D] with D = 40,
 * 80 or 160 in SD 1.x. With so short a D (first) and so narrow an output (second) OpenBLAS ran
 * them at half the machine's sgemm rate, plus its packing, for every query block again. Here K
 * and V are packed once per call (K transposed, so a score tile reads keys as vectors), every
 * task takes 64 queries of one head through scores, softmax and P V on one core, and the tiles
 * below keep 24 accumulators in registers. */

typedef float s_v16 __attribute__((vector_size(64)));

#define S_R     8  /* query rows per register tile */
#define S_BQ    64 /* queries per task: 1 MiB of scores at Lk = 4096, within a core's L2 */
#define S_ALIGN 16 /* floats per vector; packed rows are padded to it */
#define S_KW    48 /* keys per K^T panel: one score tile's width */
#define S_KC    64 /* keys per chunk of P V */

static inline int64_t s_up(int64_t x, int64_t m) {
    return (x + m - 1) / m * m;
}

/* Geometry of one call, in floats. */
typedef struct {
    int64_t batch, heads, lq, lk, hd, d;
    int64_t lkp, dp; /* lk rounded up to whole panels, d to whole vectors */
    float scale;
    bool causal;
    const float *q, *k, *v; /* borrowed: the op's inputs */
    float *y;               /* borrowed: the op's output */
    int64_t bh0;            /* first head (b*H + h) whose K and V are packed now */
    float *kt;              /* borrowed (workspace): K^T per packed head in panels of 48 keys,
                             * [heads][Lkp/48][D][48], pad columns 0 */
    float *vp;              /* borrowed (workspace): V per packed head, [heads][Lk][Dp], pad
                             * columns 0 */
    float *thr;             /* borrowed (workspace): per-thread Q^T tiles, scores and O */
    int64_t thr_floats;     /* floats of thr per thread */
} s_call_t;

/* S[0:8, 0:16*nv] = Qt^T Kt[:, 0:16*nv]: qt holds 8 query rows transposed ([D][8]); kt's rows
 * are ldk apart; s's rows lds apart. nv (1..3) is a constant after inlining. */
static inline __attribute__((always_inline)) void s_score_tile(const float *qt, const float *kt,
                                                               int64_t d, int64_t ldk, float *s,
                                                               int64_t lds, int nv) {
    s_v16 acc[S_R][3];
#pragma GCC unroll 8
    for (int r = 0; r < S_R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[r][v] = (s_v16){0};
    for (int64_t c = 0; c < d; c++) {
        s_v16 kv[3];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            kv[v] = *(const s_v16 *) (kt + c * ldk + v * S_ALIGN);
#pragma GCC unroll 8
        for (int r = 0; r < S_R; r++) {
            float qs = qt[c * S_R + r];
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                acc[r][v] += qs * kv[v];
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < S_R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            *(s_v16 *) (s + r * lds + v * S_ALIGN) = acc[r][v];
}

/* O[0:8, 0:16*nv] += P[0:8, 0:nk] V[0:nk, 0:16*nv]; p's rows lds apart, vp's ldv apart, o's
 * ldo apart. */
static inline __attribute__((always_inline)) void s_pv_tile(const float *p, int64_t lds,
                                                            const float *vp, int64_t ldv,
                                                            int64_t nk, float *o, int64_t ldo,
                                                            int nv) {
    s_v16 acc[S_R][3];
#pragma GCC unroll 8
    for (int r = 0; r < S_R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[r][v] = *(const s_v16 *) (o + r * ldo + v * S_ALIGN);
    for (int64_t j = 0; j < nk; j++) {
        s_v16 vv[3];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            vv[v] = *(const s_v16 *) (vp + j * ldv + v * S_ALIGN);
#pragma GCC unroll 8
        for (int r = 0; r < S_R; r++) {
            float ps = p[r * lds + j];
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                acc[r][v] += ps * vv[v];
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < S_R; r++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            *(s_v16 *) (o + r * ldo + v * S_ALIGN) = acc[r][v];
}

/* The tiles above for nv = 1, 2 or 3 vectors, one out-of-line copy each. */
#define S_TILES(nv)                                                                                \
    __attribute__((target("avx512f"), noinline)) static void s_score_##nv(                         \
        const float *qt, const float *kt, int64_t d, int64_t ldk, float *s, int64_t lds) {         \
        s_score_tile(qt, kt, d, ldk, s, lds, nv);                                                  \
    }                                                                                              \
    __attribute__((target("avx512f"), noinline)) static void s_pv_##nv(                            \
        const float *p, int64_t lds, const float *vp, int64_t ldv, int64_t nk, float *o,           \
        int64_t ldo) {                                                                             \
        s_pv_tile(p, lds, vp, ldv, nk, o, ldo, nv);                                                \
    }
S_TILES(1)
S_TILES(2)
S_TILES(3)

/* exp(row - max) over the first n entries, returns 1/sum (sum in double); NaN when every entry
 * is -inf (torch gives NaN; no caller of ours masks a whole row). */
__attribute__((target("avx512f"))) static float s_exp_row(float *row, int64_t n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t i = 0; i < n; i++)
        mx = row[i] > mx ? row[i] : mx;
    if (mx == -INFINITY) return NAN;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++) {
        float e = dq_cpu_expf(row[i] - mx);
        row[i] = e;
        sum += e;
    }
    return (float) (1.0 / sum);
}

/* Packs K^T and V of head bh (b*H + h). */
static void s_pack_head(const s_call_t *c, int64_t bh) {
    int64_t b = bh / c->heads, h = bh % c->heads;
    const float *ks = c->k + b * c->lk * c->hd + h * c->d;
    const float *vs = c->v + b * c->lk * c->hd + h * c->d;
    float *kt = c->kt + (bh - c->bh0) * c->d * c->lkp;
    float *vp = c->vp + (bh - c->bh0) * c->lk * c->dp;
    /* Panels of 48 keys: a score tile reads 48*D contiguous floats (rows of one long K^T
     * would be Lk apart, and at Lk = 4096 all D of them fall in the same L1 set). */
    for (int64_t j = 0; j < c->lk; j++) {
        float *kp = kt + j / S_KW * c->d * S_KW + j % S_KW;
        for (int64_t e = 0; e < c->d; e++)
            kp[e * S_KW] = ks[j * c->hd + e];
        memcpy(vp + j * c->dp, vs + j * c->hd, (size_t) c->d * sizeof *vp);
        memset(vp + j * c->dp + c->d, 0, (size_t) (c->dp - c->d) * sizeof *vp);
    }
    for (int64_t j = c->lk; j < c->lkp; j++)
        for (int64_t e = 0; e < c->d; e++)
            kt[j / S_KW * c->d * S_KW + e * S_KW + j % S_KW] = 0;
}

/* One task: queries [i0, i0+nq) of head bh. */
__attribute__((target("avx512f"))) static void s_task(const s_call_t *c, int64_t bh, int64_t i0,
                                                      int64_t nq, float *thr) {
    int64_t b = bh / c->heads, h = bh % c->heads, d = c->d;
    int64_t nk = c->causal && i0 + nq < c->lk ? i0 + nq : c->lk; /* keys any row here sees */
    int64_t nkp = s_up(nk, S_ALIGN), groups = (nq + S_R - 1) / S_R;
    /* Score rows lds apart: one vector more than needed, so that the 8 rows a P V tile reads
     * are not a power of two apart (at Lk = 4096 they would share one L1 set). */
    int64_t lds = nkp + S_ALIGN;
    /* Per thread: Q^T tiles [groups][D][8], scores [groups*8][lds], O [groups*8][Dp]. */
    float *qt = thr, *s = qt + s_up(S_BQ * d, S_ALIGN), *o = s + S_BQ * lds;
    float inv[S_BQ];
    const float *qs = c->q + (b * c->lq + i0) * c->hd + h * d;
    const float *kt = c->kt + (bh - c->bh0) * d * c->lkp;
    const float *vp = c->vp + (bh - c->bh0) * c->lk * c->dp;
    float *y = c->y + (b * c->lq + i0) * c->hd + h * d;
    /* Q rows, scaled, transposed into 8-row groups; rows past nq are zero. */
    for (int64_t g = 0; g < groups; g++) {
        int64_t nr = nq - g * S_R < S_R ? nq - g * S_R : S_R;
        const float *qr = qs + g * S_R * c->hd;
        float *qg = qt + g * d * S_R;
        for (int64_t e = 0; e < d; e++) {
            for (int64_t r = 0; r < nr; r++)
                qg[e * S_R + r] = qr[r * c->hd + e] * c->scale;
            for (int64_t r = nr; r < S_R; r++)
                qg[e * S_R + r] = 0.0f;
        }
    }
    /* Panel by panel, each 8-row group: a K^T panel is read from L1 by all groups. */
    for (int64_t j = 0; j < nkp; j += S_KW) {
        int64_t w = nkp - j < S_KW ? nkp - j : S_KW;
        for (int64_t g = 0; g < groups; g++) {
            const float *qg = qt + g * d * S_R, *kp = kt + j * d;
            float *sg = s + g * S_R * lds + j;
            if (w == S_KW)
                s_score_3(qg, kp, d, S_KW, sg, lds);
            else if (w == 2 * S_ALIGN)
                s_score_2(qg, kp, d, S_KW, sg, lds);
            else
                s_score_1(qg, kp, d, S_KW, sg, lds);
        }
    }
    /* Masked keys (causal, and the pad up to whole vectors) get -inf, whose exp is 0: every
     * row's softmax then runs over whole vectors. */
    for (int64_t i = 0; i < nq; i++) {
        float *row = s + i * lds;
        for (int64_t j = c->causal ? i0 + i + 1 : nk; j < nkp; j++)
            row[j] = -INFINITY;
        inv[i] = s_exp_row(row, nkp);
    }
    /* O = P V in chunks of 64 keys (12 KiB of V at D = 40, read from L1 by every group), then
     * each row times 1/sum. */
    memset(o, 0, (size_t) (groups * S_R * c->dp) * sizeof *o);
    for (int64_t j = 0; j < nk; j += S_KC) {
        int64_t nj = nk - j < S_KC ? nk - j : S_KC;
        for (int64_t g = 0; g < groups; g++) {
            const float *pg = s + g * S_R * lds + j;
            float *og = o + g * S_R * c->dp;
            for (int64_t e = 0; e < c->dp; e += 3 * S_ALIGN) {
                const float *ve = vp + j * c->dp + e;
                int64_t nv = (c->dp - e) / S_ALIGN;
                if (nv >= 3)
                    s_pv_3(pg, lds, ve, c->dp, nj, og + e, c->dp);
                else if (nv == 2)
                    s_pv_2(pg, lds, ve, c->dp, nj, og + e, c->dp);
                else
                    s_pv_1(pg, lds, ve, c->dp, nj, og + e, c->dp);
            }
        }
    }
    for (int64_t i = 0; i < nq; i++)
        for (int64_t e = 0; e < d; e++)
            y[i * c->hd + e] = o[i * c->dp + e] * inv[i];
}

int dq_cpu_attention_tiled(dq_backend_t *be, const dq_tensor_t *q, const dq_tensor_t *k,
                           const dq_tensor_t *v, int heads, bool causal, dq_tensor_t *y) {
    dq_cpu_ctx_t *ctx = dq_cpu_ctx(be);
    if (!__builtin_cpu_supports("avx512f")) return 1;
    // q, y: [B, Lq, H*D]; k, v: [B, Lk, H*D]; head h is columns [h*D, h*D+D)
    s_call_t c = {.batch = q->shape[0],
                  .heads = heads,
                  .lq = q->shape[1],
                  .lk = k->shape[1],
                  .hd = q->shape[2],
                  .causal = causal,
                  .q = q->data,
                  .k = k->data,
                  .v = v->data,
                  .y = y->data};
    c.d = c.hd / heads;
    c.lkp = s_up(c.lk, S_KW);
    c.dp = s_up(c.d, S_ALIGN);
    c.scale = (float) (1.0 / sqrt((double) c.d));
    int64_t nblk = (c.lq + S_BQ - 1) / S_BQ;
    /* Workspace: per thread its Q^T tiles, scores and O, then K^T and V of as many batch
     * items' heads as fit (at least one item, else this path does not apply: a decision that
     * does not depend on the batch, so an item gives the same bits alone and in a batch). */
    int nt = omp_get_max_threads();
    int64_t item_f = heads * (s_up(c.d * c.lkp, S_ALIGN) + s_up(c.lk * c.dp, S_ALIGN));
    c.thr_floats = s_up(S_BQ * c.d, S_ALIGN) + S_BQ * (c.lkp + S_ALIGN) + S_BQ * c.dp;
    int64_t left = (int64_t) ctx->work_floats - nt * c.thr_floats;
    if (left < item_f) return 1;
    int64_t items = left / item_f < c.batch ? left / item_f : c.batch;
    c.thr = ctx->work;
    c.kt = c.thr + nt * c.thr_floats;
    c.vp = c.kt + items * heads * s_up(c.d * c.lkp, S_ALIGN);
    for (int64_t b0 = 0; b0 < c.batch; b0 += items) {
        int64_t nb = c.batch - b0 < items ? c.batch - b0 : items;
        int64_t tasks = nb * heads * nblk;
        c.bh0 = b0 * heads;
        bool par = nb * c.lq * c.lk * c.hd >= DQ_CPU_PAR_MIN;
        int nthr = nt < tasks ? nt : (int) tasks;
#pragma omp parallel num_threads(nthr) if (par)
        {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < nb * heads; i++) s_pack_head(&c, c.bh0 + i);
            float *thr = c.thr + (size_t) omp_get_thread_num() * (size_t) c.thr_floats;
#pragma omp for schedule(dynamic)
            for (int64_t t = 0; t < tasks; t++) {
                int64_t i0 = (t % nblk) * S_BQ;
                s_task(&c, c.bh0 + t / nblk, i0, c.lq - i0 < S_BQ ? c.lq - i0 : S_BQ, thr);
            }
        }
    }
    return 0;
}
