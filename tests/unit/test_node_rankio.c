/* tests/unit/test_node_rankio.c: the node <-> rank record framing: round trips over a
 * socketpair (byte by byte too), DQP messages inside records, and malformed records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node/rankio.h"

static char s_err[512];

static void s_pair(dq_rankio_t **a, dq_rankio_t **b, size_t max) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    *a = dq_rankio_new(sv[0], max);
    *b = dq_rankio_new(sv[1], max);
    assert_non_null(*a);
    assert_non_null(*b);
}

static void test_round_trip(void **state) {
    (void) state;
    dq_rankio_t *a, *b;
    s_pair(&a, &b, 1 << 20);
    const uint8_t *parts[3] = {(const uint8_t *) "hello", (const uint8_t *) "",
                               (const uint8_t *) "x"};
    size_t sizes[3] = {5, 0, 1};
    assert_int_equal(dq_rankio_queue(a, DQ_RANKIO_HELLO, parts, sizes, 3, s_err, sizeof s_err), 0);
    assert_int_equal(dq_rankio_queue(a, DQ_RANKIO_UP, NULL, NULL, 0, s_err, sizeof s_err), 0);
    assert_true(dq_rankio_pending(a) > 0);
    assert_int_equal(dq_rankio_flush_all(a, s_err, sizeof s_err), 0);
    assert_int_equal(dq_rankio_pending(a), 0);
    dq_rankio_rec_t rec;
    assert_int_equal(dq_rankio_recv(b, &rec, s_err, sizeof s_err), 1);
    assert_int_equal(rec.kind, DQ_RANKIO_HELLO);
    assert_int_equal(rec.n, 3);
    assert_memory_equal(rec.part[0], "hello", 5);
    assert_int_equal(rec.size[1], 0);
    assert_int_equal(rec.size[2], 1);
    assert_int_equal(dq_rankio_recv(b, &rec, s_err, sizeof s_err), 1);
    assert_int_equal(rec.kind, DQ_RANKIO_UP);
    assert_int_equal(rec.n, 0);
    dq_rankio_destroy(&a); /* closes: the reader sees end of file */
    assert_null(a);
    assert_int_equal(dq_rankio_recv(b, &rec, s_err, sizeof s_err), 0);
    dq_rankio_destroy(&b);
}

/* A record larger than the socket buffer arrives in pieces and is assembled whole, with no
 * record reported early. */
static void test_large_record_in_pieces(void **state) {
    (void) state;
    dq_rankio_t *a, *b;
    s_pair(&a, &b, 1 << 20);
    size_t big = 300000; /* larger than a socket buffer and than one read */
    uint8_t *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t) (i * 7);
    const uint8_t *parts[1] = {data};
    assert_int_equal(dq_rankio_queue(a, DQ_RANKIO_DQP, parts, &big, 1, s_err, sizeof s_err), 0);
    int fd = dq_rankio_fd(a);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    dq_rankio_rec_t rec;
    int got = 0;
    while (!got) {
        int rc = dq_rankio_flush(a, s_err, sizeof s_err);
        assert_true(rc >= 0);
        assert_int_equal(dq_rankio_read(b, s_err, sizeof s_err), 1);
        got = dq_rankio_next(b, &rec, s_err, sizeof s_err);
        assert_true(got >= 0);
    }
    assert_int_equal(rec.kind, DQ_RANKIO_DQP);
    assert_int_equal(rec.size[0], big);
    assert_memory_equal(rec.part[0], data, big);
    free(data);
    dq_rankio_destroy(&a);
    dq_rankio_destroy(&b);
}

static void test_dqp_inside(void **state) {
    (void) state;
    dq_rankio_t *a, *b;
    s_pair(&a, &b, DQ_RANKIO_MAX_RECORD);
    dq_msg_t m = {.cmd = DQ_CMD_PROGRESS};
    m.progress = (dq_msg_progress_t){1, 2, 3, 4, 5};
    const char *prefix[1] = {"spec"};
    assert_int_equal(dq_rankio_queue_msg(a, DQ_RANKIO_ASSIGN, prefix, 1, &m, s_err, sizeof s_err),
                     0);
    assert_int_equal(dq_rankio_flush_all(a, s_err, sizeof s_err), 0);
    dq_rankio_rec_t rec;
    assert_int_equal(dq_rankio_recv(b, &rec, s_err, sizeof s_err), 1);
    assert_int_equal(rec.n, 4);
    assert_memory_equal(rec.part[0], "spec", 4);
    dq_msg_t out;
    assert_int_equal(dq_rankio_decode_msg(&rec, 1, &out, s_err, sizeof s_err), 0);
    assert_int_equal(out.cmd, DQ_CMD_PROGRESS);
    assert_int_equal(out.progress.steps, 5);
    dq_msg_clear(&out);
    /* Decoding from the wrong part fails cleanly. */
    assert_true(dq_rankio_decode_msg(&rec, 0, &out, s_err, sizeof s_err) < 0);
    assert_true(dq_rankio_decode_msg(&rec, 9, &out, s_err, sizeof s_err) < 0);
    dq_rankio_destroy(&a);
    dq_rankio_destroy(&b);
}

/* Writes raw bytes into a and expects b to reject them with a message containing want. */
static void s_expect_bad(const uint8_t *bytes, size_t len, const char *want) {
    dq_rankio_t *a, *b;
    s_pair(&a, &b, 1000);
    assert_int_equal(write(dq_rankio_fd(a), bytes, len), (ssize_t) len);
    dq_rankio_rec_t rec;
    s_err[0] = '\0';
    assert_int_equal(dq_rankio_recv(b, &rec, s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, want));
    dq_rankio_destroy(&a);
    dq_rankio_destroy(&b);
}

static void test_malformed(void **state) {
    (void) state;
    s_expect_bad((const uint8_t[]){0xff, 0xff, 0, 0, 1, 0}, 6, "length"); /* > max_record */
    s_expect_bad((const uint8_t[]){1, 0, 0, 0, 1}, 5, "length");          /* < 2 */
    s_expect_bad((const uint8_t[]){2, 0, 0, 0, 99, 0}, 6, "unknown kind");
    s_expect_bad((const uint8_t[]){2, 0, 0, 0, 1, 9}, 6, "parts");
    s_expect_bad((const uint8_t[]){7, 0, 0, 0, 1, 1, 9, 0, 0, 0, 'x'}, 11, "overruns");
    s_expect_bad((const uint8_t[]){4, 0, 0, 0, 1, 0, 'x', 'y'}, 8, "after the last part");
}

static void test_refuses_oversize(void **state) {
    (void) state;
    dq_rankio_t *a, *b;
    s_pair(&a, &b, 100);
    uint8_t data[200] = {0};
    const uint8_t *parts[9];
    size_t sizes[9];
    for (int i = 0; i < 9; i++)
        parts[i] = data, sizes[i] = 1;
    assert_int_equal(dq_rankio_queue(a, 1, parts, sizes, 9, s_err, sizeof s_err), -1);
    sizes[0] = 200;
    assert_int_equal(dq_rankio_queue(a, 1, parts, sizes, 1, s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "larger"));
    assert_int_equal(dq_rankio_pending(a), 0);
    dq_rankio_destroy(&a);
    dq_rankio_destroy(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_large_record_in_pieces),
        cmocka_unit_test(test_dqp_inside),       cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_refuses_oversize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
