/* tests/unit/test_file_batch.c: the broker's parallel durable writer writes every file of a
 * batch with its exact bytes, reports each failure with its step and errno, and leaves no
 * partial file behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/file_batch.h"

static char s_dir[] = "/tmp/dq-file-batch.XXXXXX";

static void s_read(const char *path, uint8_t *buf, size_t cap, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *len = fread(buf, 1, cap, f);
    fclose(f);
}

static void test_batch_writes_every_file(void **state) {
    (void)state;
    dq_file_batch_t *fb = dq_file_batch_new(4);
    assert_non_null(fb);
    enum { N = 37 };
    char paths[N][128];
    uint8_t data[N][300];
    dq_file_item_t items[N];
    for (int i = 0; i < N; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/f%02d", s_dir, i);
        for (int k = 0; k < 300; k++)
            data[i][k] = (uint8_t)(i * 7 + k);
        items[i] = (dq_file_item_t){.path = paths[i], .bytes = data[i], .size = 100 + (size_t)i};
    }
    assert_int_equal(dq_file_batch_write(fb, items, N), 0);
    /* A second batch on the same pool, and a lone file (written on the caller's thread). */
    assert_int_equal(dq_file_batch_write(fb, items, 5), 0);
    assert_int_equal(dq_file_batch_write(fb, items + 36, 1), 0);
    for (int i = 0; i < N; i++) {
        uint8_t buf[400];
        size_t len = 0;
        s_read(paths[i], buf, sizeof buf, &len);
        assert_int_equal(len, 100 + i);
        assert_memory_equal(buf, data[i], len);
        assert_null(items[i].what);
        assert_int_equal(items[i].error, 0);
        unlink(paths[i]);
    }
    dq_file_batch_destroy(&fb);
    assert_null(fb);
}

static void test_failures_are_reported_per_file(void **state) {
    (void)state;
    dq_file_batch_t *fb = dq_file_batch_new(3);
    char good[128], bad[128];
    snprintf(good, sizeof good, "%s/good", s_dir);
    snprintf(bad, sizeof bad, "%s/missing-folder/bad", s_dir);
    const uint8_t bytes[] = {1, 2, 3};
    dq_file_item_t items[4] = {
        {.path = good, .bytes = bytes, .size = 3},
        {.path = bad, .bytes = bytes, .size = 3},
        {.path = bad, .bytes = bytes, .size = 3},
        {.path = good, .bytes = bytes, .size = 2},
    };
    assert_int_equal(dq_file_batch_write(fb, items, 4), 2);
    assert_null(items[0].what);
    assert_string_equal(items[1].what, "create");
    assert_int_equal(items[1].error, ENOENT);
    assert_string_equal(items[2].what, "create");
    struct stat st;
    assert_int_equal(stat(good, &st), 0);
    unlink(good);
    /* A lone failing file too. */
    assert_int_equal(dq_file_batch_write(fb, items + 1, 1), 1);
    assert_string_equal(items[1].what, "create");
    dq_file_batch_destroy(&fb);
    dq_file_batch_destroy(&fb); /* NULL-safe */
}

static void test_thread_count_is_checked(void **state) {
    (void)state;
    assert_null(dq_file_batch_new(0));
    assert_null(dq_file_batch_new(65));
}

int main(void) {
    if (!mkdtemp(s_dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_writes_every_file),
        cmocka_unit_test(test_failures_are_reported_per_file),
        cmocka_unit_test(test_thread_count_is_checked),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(s_dir);
    return rc;
}
