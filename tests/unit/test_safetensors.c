/* tests/unit/test_safetensors.c: safetensors reader on good files (ours and the reference
 * package's) and on every class of corrupt header; writer round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/safetensors.h"

static char s_err[512];

/* A file image: 8-byte length, the header text, then `data_len` bytes of 0xAB. */
static uint8_t *s_image(const char *header, size_t data_len, size_t *len) {
    size_t n = strlen(header);
    *len = 8 + n + data_len;
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t) ((uint64_t) n >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, 0xAB, data_len);
    return buf;
}

/* Expects `header` + data to be rejected with a message containing `want`. */
static void s_expect_bad(const char *header, size_t data_len, const char *want) {
    size_t len;
    uint8_t *buf = s_image(header, data_len, &len);
    s_err[0] = '\0';
    dq_safetensors_t *st =
        dq_safetensors_from_memory(buf, len, "bad.safetensors", s_err, sizeof s_err);
    if (st || !strstr(s_err, want) || !strstr(s_err, "bad.safetensors"))
        fail_msg("header %s: got %s, message '%s', wanted '%s'", header, st ? "success" : "failure",
                 s_err, want);
    free(buf);
}

static void test_good_in_memory(void **state) {
    (void) state;
    size_t len;
    uint8_t *buf = s_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                           "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},"
                           "\"__metadata__\":{\"format\":\"pt\"}}   ",
                           20, &len);
    dq_safetensors_t *st = dq_safetensors_from_memory(buf, len, "mem", s_err, sizeof s_err);
    assert_non_null(st);
    assert_int_equal(dq_safetensors_count(st), 2);
    assert_string_equal(dq_safetensors_at(st, 0)->name, "b"); /* name order */
    const dq_st_tensor_t *w = dq_safetensors_find(st, "w");
    assert_non_null(w);
    assert_int_equal(w->dtype, DQ_DTYPE_F32);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[1], 2);
    assert_int_equal(w->nbytes, 16);
    assert_ptr_equal(w->data, buf + len - 20); /* zero copy */
    assert_null(dq_safetensors_find(st, "nope"));
    assert_string_equal(dq_safetensors_metadata(st, "format"), "pt");
    assert_null(dq_safetensors_metadata(st, "other"));
    dq_safetensors_destroy(&st);
    assert_null(st);
    free(buf);
}

static void test_reference_file(void **state) {
    (void) state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/safetensors/reference.safetensors",
             getenv("top_srcdir"));
    dq_safetensors_t *st = dq_safetensors_open(path, s_err, sizeof s_err);
    if (!st) fail_msg("%s", s_err);
    assert_int_equal(dq_safetensors_count(st), 6);
    assert_string_equal(dq_safetensors_metadata(st, "note"), "diffq");
    float f[6];
    const dq_st_tensor_t *a = dq_safetensors_find(st, "a.f32");
    assert_int_equal(dq_convert_to_f32(f, a->data, a->dtype, 6), 0);
    assert_true(f[5] == 1.25f);
    const dq_st_tensor_t *b = dq_safetensors_find(st, "b.f16");
    assert_int_equal(b->dtype, DQ_DTYPE_F16);
    assert_int_equal(dq_convert_to_f32(f, b->data, b->dtype, 3), 0);
    assert_true(f[0] == 1.5f && f[1] == -2.0f && f[2] == 65504.0f);
    const dq_st_tensor_t *c = dq_safetensors_find(st, "c.bf16");
    assert_int_equal(dq_convert_to_f32(f, c->data, c->dtype, 2), 0);
    assert_true(f[0] == 0.5f && f[1] == -3.0f);
    const dq_st_tensor_t *d = dq_safetensors_find(st, "d.i64");
    int64_t i4;
    memcpy(&i4, (const char *) d->data + 4 * 8, 8);
    assert_int_equal(i4, 4);
    const dq_st_tensor_t *e = dq_safetensors_find(st, "e.empty");
    assert_int_equal(e->nbytes, 0);
    assert_int_equal(e->shape[1], 4);
    const dq_st_tensor_t *s = dq_safetensors_find(st, "f.scalar");
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->nbytes, 4);
    dq_safetensors_destroy(&st);
}

static void test_writer_round_trip(void **state) {
    (void) state;
    char path[] = "/tmp/dq-test-st-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    float w[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[3] = {dq_f32_to_f16(0.5f), dq_f32_to_f16(-1), dq_f32_to_f16(8)};
    dq_st_tensor_t ts[3] = {
        {.name = "x.weight", .dtype = DQ_DTYPE_F32, .ndim = 2, .shape = {2, 3}, .data = w},
        {.name = "x.bias", .dtype = DQ_DTYPE_F16, .ndim = 1, .shape = {3}, .data = h},
        {.name = "empty", .dtype = DQ_DTYPE_F32, .ndim = 1, .shape = {0}, .data = NULL},
    };
    const char *meta[] = {"format", "pt"};
    assert_int_equal(dq_safetensors_write(path, ts, 3, meta, 1, s_err, sizeof s_err), 0);
    FILE *f = fopen(path, "rb");
    uint8_t lenbuf[8];
    assert_int_equal(fread(lenbuf, 1, 8, f), 8);
    fclose(f);
    assert_int_equal(lenbuf[0] % 8, 0); /* data section 8-byte aligned */
    dq_safetensors_t *st = dq_safetensors_open(path, s_err, sizeof s_err);
    if (!st) fail_msg("%s", s_err);
    const dq_st_tensor_t *x = dq_safetensors_find(st, "x.weight");
    assert_memory_equal(x->data, w, sizeof w);
    assert_int_equal(((uintptr_t) x->data - (uintptr_t) dq_safetensors_at(st, 0)->data) % 1, 0);
    const dq_st_tensor_t *b = dq_safetensors_find(st, "x.bias");
    assert_memory_equal(b->data, h, sizeof h);
    assert_string_equal(dq_safetensors_metadata(st, "format"), "pt");
    dq_safetensors_destroy(&st);
    unlink(path);
}

static void test_writer_checks_sizes(void **state) {
    (void) state;
    char path[] = "/tmp/dq-test-st-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    dq_st_tensor_t t = {.name = "a", .dtype = DQ_DTYPE_F32, .ndim = 1, .shape = {4}};
    dq_st_writer_t *w = dq_st_writer_new(path, &t, 1, NULL, 0, s_err, sizeof s_err);
    assert_non_null(w);
    float v[5] = {0};
    assert_int_equal(dq_st_writer_write(w, v, 20, s_err, sizeof s_err), -1); /* too many bytes */
    assert_non_null(strstr(s_err, "beyond"));
    assert_int_equal(dq_st_writer_write(w, v, 8, s_err, sizeof s_err), 0);
    assert_int_equal(dq_st_writer_close(&w, s_err, sizeof s_err), -1); /* too few */
    assert_non_null(strstr(s_err, "only 8 of 16"));
    assert_null(w);
    assert_int_not_equal(access(path, F_OK), 0); /* the partial file is gone */
    dq_st_tensor_t dup[2] = {t, t};
    assert_null(dq_st_writer_new(path, dup, 2, NULL, 0, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "duplicate"));
}

static void test_missing_file(void **state) {
    (void) state;
    assert_null(dq_safetensors_open("/nonexistent/x.safetensors", s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "/nonexistent/x.safetensors: cannot open"));
}

static void test_truncated(void **state) {
    (void) state;
    uint8_t four[4] = {1, 0, 0, 0};
    assert_null(dq_safetensors_from_memory(four, 4, "t", s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "truncated"));
    /* Header length says 100 bytes, 10 follow. */
    uint8_t buf[18] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    assert_null(dq_safetensors_from_memory(buf, sizeof buf, "t", s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "header length 100 but only 10 bytes follow"));
    /* Header length beyond any sane file. */
    uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    assert_null(dq_safetensors_from_memory(huge, sizeof huge, "t", s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "exceeds"));
    /* Tensor data cut off. */
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
                 "beyond the 12-byte");
}

static void test_bad_json(void **state) {
    (void) state;
    s_expect_bad("{\"a\":", 0, "bad JSON");
    s_expect_bad("[1,2]", 0, "not a JSON object");
    s_expect_bad("  ", 0, "not a JSON object");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, "duplicate");
    s_expect_bad("{\"a\":[1]}", 0, "not a JSON object");
    s_expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
    s_expect_bad("{\"__metadata__\":[]}", 0, "__metadata__");
}

static void test_bad_entries(void **state) {
    (void) state;
    s_expect_bad("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                 "unknown dtype \"F33\"");
    s_expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "shape");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                 "shape[0]");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                 "shape[0]");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                 4, "dimensions");
    s_expect_bad(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4,
        "overflow");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,9223372036854775807,0],"
                 "\"data_offsets\":[0,0]}}",
                 0, "overflow");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "need 8");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                 "before begin");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                 "data_offsets");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4,
                 "data_offsets");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 8, "beyond");
}

static void test_overlap_and_holes(void **state) {
    (void) state;
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, "overlaps");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                 4, "overlaps");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole");
    s_expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover 4");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_in_memory),    cmocka_unit_test(test_reference_file),
        cmocka_unit_test(test_writer_round_trip), cmocka_unit_test(test_writer_checks_sizes),
        cmocka_unit_test(test_missing_file),      cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_json),          cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_overlap_and_holes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
