/* tests/unit/test_dtype.c: f16/bf16 conversions round to nearest even, as PyTorch's do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "kernels/dtype.h"

static void test_names_and_sizes(void **state) {
    (void) state;
    assert_int_equal(dq_dtype_parse("BF16"), DQ_DTYPE_BF16);
    assert_int_equal(dq_dtype_parse("F8_E5M2"), DQ_DTYPE_F8_E5M2);
    assert_int_equal(dq_dtype_parse("f32"), -1);
    assert_int_equal(dq_dtype_size(DQ_DTYPE_I64), 8);
    assert_string_equal(dq_dtype_name(DQ_DTYPE_F16), "F16");
}

static void test_f16_exact_values(void **state) {
    (void) state;
    /* Known encodings: 1.0, -2.0, 65504 (max), smallest subnormal, smallest normal. */
    assert_int_equal(dq_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(dq_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(dq_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(dq_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(dq_f32_to_f16(0x1p-14f), 0x0400);
    assert_true(dq_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(dq_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(dq_f16_to_f32(0x7c00)));
    assert_true(isnan(dq_f16_to_f32(0x7e00)));
}

static void test_f16_rounding(void **state) {
    (void) state;
    /* 1 + 2^-11 is halfway between 1 and 1+2^-10: ties to even gives 1.0. */
    assert_int_equal(dq_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    /* 1 + 3*2^-11 is halfway between 1+2^-10 and 1+2^-9: ties to even gives 1+2^-9. */
    assert_int_equal(dq_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(dq_f32_to_f16(65520.0f), 0x7c00); /* rounds up to infinity */
    assert_int_equal(dq_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(dq_f32_to_f16(NAN) & 0x7c00, 0x7c00);
}

static void test_f16_round_trip_all(void **state) {
    (void) state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads */
        assert_int_equal(dq_f32_to_f16(dq_f16_to_f32((uint16_t) h)), h);
    }
}

static void test_bf16(void **state) {
    (void) state;
    assert_int_equal(dq_f32_to_bf16(1.0f), 0x3f80);
    assert_true(dq_bf16_to_f32(0x3f80) == 1.0f);
    /* 1 + 2^-8 is halfway between 1 and 1+2^-7: ties to even gives 1.0. */
    assert_int_equal(dq_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(dq_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    assert_true(isnan(dq_bf16_to_f32(dq_f32_to_bf16(NAN))));
}

/* Host rounding for 16-bit activations: each dtype's own rule, element by element. */
static void test_f32_to_16(void **state) {
    (void) state;
    const float src[3] = {1.0f + 3 * 0x1p-8f, -2.5f, 65520.0f};
    uint16_t h[3], b[3];
    dq_f32_to_16(src, 3, DQ_DTYPE_F16, h);
    dq_f32_to_16(src, 3, DQ_DTYPE_BF16, b);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(h[i], dq_f32_to_f16(src[i]));
        assert_int_equal(b[i], dq_f32_to_bf16(src[i]));
    }
    assert_int_equal(b[0], 0x3f82); /* bf16 rounds where f16 keeps the value */
    assert_int_equal(h[2], 0x7c00); /* f16 overflows to infinity, bf16 does not */
    assert_true(isfinite(dq_bf16_to_f32(b[2])));
}

static void test_convert(void **state) {
    (void) state;
    uint16_t h[3] = {0x3c00, 0xc000, 0x0000};
    float out[3];
    assert_int_equal(dq_convert_to_f32(out, h, DQ_DTYPE_F16, 3), 0);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.0f);
    double d[2] = {0.5, -4.0};
    assert_int_equal(dq_convert_to_f32(out, d, DQ_DTYPE_F64, 2), 0);
    assert_true(out[0] == 0.5f && out[1] == -4.0f);
    assert_int_equal(dq_convert_to_f32(out, d, DQ_DTYPE_I64, 2), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_sizes), cmocka_unit_test(test_f16_exact_values),
        cmocka_unit_test(test_f16_rounding),    cmocka_unit_test(test_f16_round_trip_all),
        cmocka_unit_test(test_bf16),            cmocka_unit_test(test_f32_to_16),
        cmocka_unit_test(test_convert),
    };
    return cmocka_run_group_tests_name("dtype", tests, NULL, NULL);
}
