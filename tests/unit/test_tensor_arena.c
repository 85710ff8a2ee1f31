/* tests/unit/test_tensor_arena.c: tensor views, backend buffers, transfers, the scratch arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kernels/arena.h"
#include "kernels/cpu/backend_cpu.h"
#include "kernels/tensor.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static void test_init_and_strides(void **state) {
    (void) state;
    float data[2 * 3 * 4 * 5];
    dq_tensor_t t;
    assert_int_equal(dq_tensor_init(&t, DQ_DTYPE_F32, 4, SHAPE(2, 3, 4, 5), data, NULL, "x"), 0);
    assert_int_equal(dq_tensor_nelements(&t), 120);
    assert_int_equal(dq_tensor_nbytes(&t), 480);
    assert_int_equal(dq_tensor_nrows(&t), 24);
    /* Row-major, outermost first: strides in bytes. */
    assert_int_equal(t.strides[3], 4);
    assert_int_equal(t.strides[2], 20);
    assert_int_equal(t.strides[1], 80);
    assert_int_equal(t.strides[0], 240);
    assert_true(dq_tensor_is_contiguous(&t));
    char buf[64];
    assert_string_equal(dq_tensor_describe(&t, buf, sizeof buf), "x[2, 3, 4, 5] F32");
    /* Past ndim: size 1. */
    dq_tensor_t h;
    assert_int_equal(dq_tensor_init(&h, DQ_DTYPE_F16, 2, SHAPE(7, 3), data, NULL, NULL), 0);
    assert_int_equal(h.shape[2], 1);
    assert_int_equal(dq_tensor_nbytes(&h), 42);
    assert_string_equal(h.name, "");
    /* Bad shapes are errors. */
    assert_int_equal(dq_tensor_init(&t, DQ_DTYPE_F32, 5, SHAPE(1, 1, 1, 1, 1), data, NULL, "x"),
                     -1);
    assert_int_equal(dq_tensor_init(&t, DQ_DTYPE_F32, 0, SHAPE(1), data, NULL, "x"), -1);
    assert_int_equal(dq_tensor_init(&t, DQ_DTYPE_F32, 2, SHAPE(3, 0), data, NULL, "x"), -1);
    assert_int_equal(dq_tensor_init(&t, DQ_DTYPE_COUNT, 1, SHAPE(3), data, NULL, "x"), -1);
    /* Long names are truncated, not overflowed. */
    char longname[100];
    memset(longname, 'a', sizeof longname - 1);
    longname[99] = '\0';
    dq_tensor_set_name(&h, longname);
    assert_int_equal(strlen(h.name), DQ_TENSOR_NAME_MAX - 1);
    /* describe never overflows a short buffer. */
    char tiny[6];
    assert_int_equal(strlen(dq_tensor_describe(&t, tiny, sizeof tiny)), 5);
}

static void test_views(void **state) {
    (void) state;
    float data[24];
    for (int i = 0; i < 24; i++) data[i] = (float) i;
    dq_tensor_t t, r, p, s;
    assert_int_equal(dq_tensor_init(&t, DQ_DTYPE_F32, 3, SHAPE(2, 3, 4), data, NULL, "t"), 0);
    assert_int_equal(dq_tensor_reshape(&r, &t, 2, SHAPE(6, 4)), 0);
    assert_ptr_equal(r.data, t.data);
    assert_int_equal(r.shape[0], 6);
    assert_int_equal(r.strides[0], 16);
    assert_int_equal(dq_tensor_reshape(&r, &t, 2, SHAPE(5, 4)), -1); /* 20 != 24 */
    /* permute [2, 3, 4] -> [2, 4, 3]: element (n, w, c) is data[n*12 + c*4 + w]. */
    assert_int_equal(dq_tensor_permute(&p, &t, (const int[]){0, 2, 1}), 0);
    assert_int_equal(p.shape[1], 4);
    assert_int_equal(p.shape[2], 3);
    assert_false(dq_tensor_is_contiguous(&p));
    const float *e = (const float *) ((const char *) p.data + 1 * p.strides[0] +
                                      3 * p.strides[1] + 2 * p.strides[2]);
    assert_true(*e == 12 + 2 * 4 + 3);
    assert_int_equal(dq_tensor_reshape(&r, &p, 1, SHAPE(24)), -1); /* not contiguous */
    assert_int_equal(dq_tensor_permute(&p, &t, (const int[]){0, 0, 1}), -1);
    assert_int_equal(dq_tensor_permute(&p, &t, (const int[]){0, 1, 3}), -1);
    /* slice: the second half of the last dim, and a block of rows (contiguous). */
    assert_int_equal(dq_tensor_slice(&s, &t, 2, 2, 2), 0);
    assert_true(*(const float *) s.data == 2.0f);
    assert_false(dq_tensor_is_contiguous(&s));
    assert_int_equal(dq_tensor_slice(&s, &t, 0, 1, 1), 0);
    assert_true(*(const float *) s.data == 12.0f);
    assert_true(dq_tensor_is_contiguous(&s));
    assert_int_equal(dq_tensor_slice(&s, &t, 2, 3, 2), -1);
    assert_int_equal(dq_tensor_slice(&s, &t, 3, 0, 1), -1);
    assert_int_equal(dq_tensor_slice(&s, &t, 1, -1, 1), -1);
}

static void test_buffers_and_transfers(void **state) {
    (void) state;
    dq_backend_t *be = dq_backend_cpu_new(1 << 16, 0);
    assert_non_null(be);
    assert_string_equal(dq_backend_name(be), "cpu");
    assert_true(dq_backend_supports_op(be, DQ_OP_LINEAR, DQ_DTYPE_F16));
    assert_true(dq_backend_supports_op(be, DQ_OP_CONV2D, DQ_DTYPE_BF16));
    assert_false(dq_backend_supports_op(be, DQ_OP_GELU, DQ_DTYPE_F16));
    assert_false(dq_backend_supports_op(be, DQ_OP_LINEAR, DQ_DTYPE_I64));
    assert_false(dq_backend_supports_op(be, DQ_OP_COUNT, DQ_DTYPE_F32));
    assert_string_equal(dq_op_name(DQ_OP_ATTENTION), "attention");
    assert_string_equal(dq_op_name(DQ_OP_COUNT), "?");
    assert_string_equal(dq_op_name(DQ_OP_GROUP_NORM_SILU), "group_norm_silu");
    /* Every op has a name and the CPU backend (the reference every other backend is compared
     * with) runs every op with F32 operands. */
    for (int op = 0; op < DQ_OP_COUNT; op++) {
        assert_string_not_equal(dq_op_name((dq_op_t) op), "?");
        assert_true(dq_backend_supports_op(be, (dq_op_t) op, DQ_DTYPE_F32));
    }
    assert_null(dq_backend_buffer_alloc(be, 0));
    dq_buffer_t *buf = dq_backend_buffer_alloc(be, 100);
    assert_non_null(buf);
    assert_true(buf->size >= 100);
    assert_int_equal((uintptr_t) buf->base % 64, 0);
    dq_tensor_t t;
    assert_int_equal(dq_tensor_init(&t, DQ_DTYPE_F32, 1, SHAPE(25), buf->base, buf, "t"), 0);
    float in[25], out[25];
    for (int i = 0; i < 25; i++) in[i] = (float) i * 0.5f;
    assert_int_equal(dq_tensor_upload(be, &t, 0, in, sizeof in), 0);
    memset(out, 0, sizeof out);
    assert_int_equal(dq_tensor_download(be, &t, 8, out, 8), 0); /* elements 2 and 3 */
    assert_true(out[0] == 1.0f && out[1] == 1.5f);
    assert_int_equal(dq_tensor_upload(be, &t, 4, in, sizeof in), -1); /* past the end */
    assert_int_equal(dq_tensor_download(be, &t, 101, out, 0), -1);
    assert_int_equal(dq_tensor_download(be, &t, 100, out, 0), 0);
    dq_tensor_t nodata;
    assert_int_equal(dq_tensor_init(&nodata, DQ_DTYPE_F32, 1, SHAPE(2), NULL, NULL, "n"), 0);
    assert_int_equal(dq_tensor_upload(be, &nodata, 0, in, 8), -1);
    assert_int_equal(dq_backend_synchronize(be), 0);
    dq_buffer_free(&buf);
    assert_null(buf);
    dq_buffer_free(&buf); /* idempotent */
    dq_backend_destroy(&be);
    assert_null(be);
    dq_backend_destroy(&be);
}

static void test_arena(void **state) {
    (void) state;
    dq_backend_t *be = dq_backend_cpu_new(1 << 16, 0);
    assert_non_null(be);
    dq_arena_t *a = dq_arena_new(be, 4096, 8);
    assert_non_null(a);
    assert_int_equal(dq_arena_capacity(a), 4096);
    dq_tensor_t *x = dq_arena_tensor(a, DQ_DTYPE_F32, 2, SHAPE(3, 5), "x"); /* 60 bytes */
    assert_non_null(x);
    assert_int_equal((uintptr_t) x->data % 64, 0);
    assert_string_equal(x->name, "x");
    assert_int_equal(dq_arena_used(a), 60);
    dq_arena_mark_t m = dq_arena_mark(a);
    dq_tensor_t *y = dq_arena_like(a, x, "y");
    assert_non_null(y);
    assert_int_equal((uintptr_t) y->data % 64, 0);
    assert_true((char *) y->data >= (char *) x->data + 60); /* no overlap */
    assert_true(dq_tensor_same_shape(x, y));
    dq_tensor_t *z = dq_arena_tensor(a, DQ_DTYPE_F16, 1, SHAPE(1000), "z");
    assert_non_null(z);
    size_t peak = dq_arena_peak(a);
    assert_int_equal(peak, 128 + 2000);
    /* Reset frees what came after the mark; the next tensor reuses y's place. */
    dq_arena_reset(a, m);
    assert_int_equal(dq_arena_used(a), 60);
    dq_tensor_t *w = dq_arena_tensor(a, DQ_DTYPE_F32, 1, SHAPE(4), "w");
    assert_ptr_equal(w->data, y->data);
    assert_int_equal(dq_arena_peak(a), peak);
    /* Out of memory is NULL, and the arena is still usable. */
    assert_null(dq_arena_tensor(a, DQ_DTYPE_F32, 1, SHAPE(2000), "big"));
    assert_int_equal(dq_arena_used(a), 64 + 16);
    assert_null(dq_arena_tensor(a, DQ_DTYPE_F32, 1, SHAPE(0), "bad"));
    /* Fill the data exactly to the end. */
    dq_tensor_t *rest = dq_arena_tensor(a, DQ_DTYPE_U8, 1, SHAPE(4096 - 128), "rest");
    assert_non_null(rest);
    assert_int_equal(dq_arena_used(a), 4096);
    /* Out of tensor structs. */
    dq_arena_reset(a, (dq_arena_mark_t){0, 0});
    for (int i = 0; i < 8; i++) assert_non_null(dq_arena_tensor(a, DQ_DTYPE_F32, 1, SHAPE(1), "s"));
    assert_null(dq_arena_tensor(a, DQ_DTYPE_F32, 1, SHAPE(1), "s"));
    dq_tensor_t local;
    assert_int_equal(dq_tensor_init(&local, DQ_DTYPE_F32, 1, SHAPE(2), NULL, NULL, "v"), 0);
    assert_null(dq_arena_view(a, &local));
    dq_arena_destroy(&a);
    assert_null(a);
    dq_arena_destroy(&a);
    assert_null(dq_arena_new(be, 0, 4));
    assert_null(dq_arena_new(be, 64, 0));
    dq_backend_destroy(&be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_strides),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_buffers_and_transfers),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests_name("tensor_arena", tests, NULL, NULL);
}
