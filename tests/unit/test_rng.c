/* tests/unit/test_rng.c: dq_rng_randn is bit-identical to torch.randn on a CPU generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rng.h"

static uint64_t s_fnv1a64(const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static FILE *s_open_fixture(const char *name) {
    const char *top = getenv("top_srcdir");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/fixtures/rng/%s", top ? top : ".", name);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open fixture %s", path);
    return f;
}

/* Replays every "case" of randn.txt: one generator per case, one randn call per "call" line. */
static void test_randn_matches_torch(void **state) {
    (void)state;
    FILE *f = s_open_fixture("randn.txt");
    char line[8192];
    dq_rng_t *rng = NULL;
    int calls = 0, values = 0, lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (strncmp(line, "case ", 5) == 0) {
            uint64_t seed = strtoull(line + 5, NULL, 10);
            dq_rng_destroy(&rng);
            rng = dq_rng_new(seed);
            assert_non_null(rng);
            continue;
        }
        assert_true(strncmp(line, "call ", 5) == 0);
        assert_non_null(rng);
        char *p = line + 5;
        size_t n = strtoull(p, &p, 10);
        uint64_t want_hash = strtoull(p, &p, 16);
        int k = (int)strtol(p, &p, 10);
        float *out = malloc(n * sizeof(float));
        assert_non_null(out);
        dq_rng_randn(rng, out, n);
        for (int i = 0; i < k; i++) {
            uint32_t want = (uint32_t)strtoul(p, &p, 16);
            size_t idx = n <= 64 ? (size_t)i : (i < 2 ? (size_t)i : n - 4 + (size_t)i);
            uint32_t got;
            memcpy(&got, &out[idx], sizeof(got));
            if (got != want)
                fail_msg("randn.txt:%d: element %zu of %zu: got %08" PRIx32 " want %08" PRIx32,
                         lineno, idx, n, got, want);
            values++;
        }
        uint64_t got_hash = s_fnv1a64(out, n * sizeof(float));
        if (got_hash != want_hash) fail_msg("randn.txt:%d: hash of %zu values differs", lineno, n);
        free(out);
        calls++;
    }
    fclose(f);
    dq_rng_destroy(&rng);
    assert_true(calls >= 100);
    assert_true(values >= 500);
}

/* manual_seed keeps the low 32 bits; reseeding restarts the stream and forgets the cache. */
static void test_seed_semantics(void **state) {
    (void)state;
    dq_rng_t *a = dq_rng_new(5);
    dq_rng_t *b = dq_rng_new((UINT64_C(1) << 32) + 5);
    assert_non_null(a);
    assert_non_null(b);
    float x[7], y[7];
    dq_rng_randn(a, x, 7);
    dq_rng_randn(b, y, 7);
    assert_memory_equal(x, y, sizeof(x));
    dq_rng_seed(a, 5); /* a had a cached value; after reseeding it must draw like new */
    dq_rng_randn(a, x, 7);
    assert_memory_equal(x, y, sizeof(x));
    dq_rng_seed(a, 5);
    uint32_t hi = dq_rng_u32(a), lo = dq_rng_u32(a);
    dq_rng_seed(a, 5);
    assert_true(dq_rng_u64(a) == (((uint64_t)hi << 32) | lo));
    dq_rng_destroy(&a);
    dq_rng_destroy(&b);
    assert_null(a);
    dq_rng_destroy(&a); /* idempotent */
    dq_rng_destroy(NULL);
}

/* The one Box-Muller input where the fused Cody-Waite reduction of sincos256_ps shows: torch
 * gives 0x1.90674ap-27 (unfused arithmetic would give 0x1.90673ap-27). */
static void test_fused_reduction_case(void **state) {
    (void)state;
    enum { N = 16384 };
    float *out = malloc(N * sizeof(float));
    assert_non_null(out);
    dq_rng_t *r = dq_rng_new(376);
    assert_non_null(r);
    dq_rng_randn(r, out, N);
    assert_true(out[14133] == 0x1.90674ap-27f);
    dq_rng_destroy(&r);
    free(out);
}

/* The reference mt19937: the 10000th output for the default seed 5489 is 4123659995. */
static void test_mt19937_reference(void **state) {
    (void)state;
    dq_rng_t *r = dq_rng_new(5489);
    assert_non_null(r);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++)
        v = dq_rng_u32(r);
    assert_int_equal(v, 4123659995u);
    dq_rng_destroy(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_randn_matches_torch),
        cmocka_unit_test(test_seed_semantics),
        cmocka_unit_test(test_fused_reduction_case),
        cmocka_unit_test(test_mt19937_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
