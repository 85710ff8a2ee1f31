/* tests/unit/test_node_flow.c: diffq-node's credit accounting, ASSIGN sequence numbers,
 * SHARD_FAILED repeats and reconnect back-off schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/proto.h"
#include "node/flow.h"

static void test_credit_asks_only_free_slots(void **state) {
    (void) state;
    dq_credit_t c;
    dq_credit_init(&c, 4);
    assert_int_equal(dq_credit_wanted(&c), 4);
    dq_credit_asked(&c, 4);
    assert_int_equal(dq_credit_wanted(&c), 0); /* asked already: do not ask twice */
    assert_int_equal(dq_credit_take(&c), 0);
    assert_int_equal(dq_credit_take(&c), 0);
    assert_int_equal(dq_credit_wanted(&c), 0); /* 2 held + 2 asked */
    dq_credit_release(&c);
    assert_int_equal(dq_credit_wanted(&c), 1);
}

static void test_credit_refuses_unasked_work(void **state) {
    (void) state;
    dq_credit_t c;
    dq_credit_init(&c, 2);
    assert_int_equal(dq_credit_take(&c), -1);
    assert_int_equal(c.held, 0);
    dq_credit_asked(&c, 1);
    assert_int_equal(dq_credit_take(&c), 0);
    assert_int_equal(dq_credit_take(&c), -1);
    assert_int_equal(c.held, 1);
}

static void test_credit_reconnect_and_capacity(void **state) {
    (void) state;
    dq_credit_t c;
    dq_credit_init(&c, 3);
    dq_credit_asked(&c, 3);
    assert_int_equal(dq_credit_take(&c), 0);
    dq_credit_reset(&c); /* new connection: the old credit is void, held stays */
    assert_int_equal(c.held, 1);
    assert_int_equal(dq_credit_wanted(&c), 2);
    dq_credit_set_capacity(&c, 0); /* every rank down */
    assert_int_equal(dq_credit_wanted(&c), 0);
    dq_credit_release(&c);
    dq_credit_release(&c); /* extra releases do not wrap */
    assert_int_equal(c.held, 0);
    dq_credit_set_capacity(&c, 5000);
    assert_int_equal(dq_credit_wanted(&c), DQ_PROTO_MAX_CREDIT);
}

/* Sends CREDIT for the free slots as the node does (counted in the sync). */
static uint32_t s_ask(dq_credit_t *c, dq_credit_sync_t *s) {
    uint32_t n = dq_credit_wanted(c);
    dq_credit_asked(c, n);
    s->sent += n;
    return n;
}

static void test_sync_in_step_changes_nothing(void **state) {
    (void)state;
    dq_credit_t c;
    dq_credit_sync_t s = {0};
    dq_credit_init(&c, 4);
    assert_int_equal(s_ask(&c, &s), 4);
    uint32_t resend, lost;
    /* The first HEARTBEAT may predate the CREDIT: nothing is judged yet. */
    dq_credit_sync(&c, &s, 0, 0, &resend, &lost);
    assert_int_equal(resend + lost, 0);
    /* Two ASSIGNs arrive, then a HEARTBEAT counting the credit and those two. */
    assert_int_equal(dq_credit_take(&c), 0);
    assert_int_equal(dq_credit_take(&c), 0);
    s.received += 2;
    dq_credit_sync(&c, &s, 4, 2, &resend, &lost);
    assert_int_equal(resend + lost, 0);
    /* An idle node whose counts agree stays quiet, heartbeat after heartbeat. */
    for (int i = 0; i < 5; i++) {
        dq_credit_sync(&c, &s, 4, 2, &resend, &lost);
        assert_int_equal(resend + lost, 0);
    }
    assert_int_equal(c.asked, 2);
}

static void test_sync_lost_credit_is_asked_again(void **state) {
    (void)state;
    dq_credit_t c;
    dq_credit_sync_t s = {0};
    dq_credit_init(&c, 3);
    uint32_t resend, lost;
    dq_credit_sync(&c, &s, 0, 0, &resend, &lost);
    assert_int_equal(s_ask(&c, &s), 3); /* this CREDIT is lost on the way */
    /* The next HEARTBEAT may have crossed it: not judged yet. */
    dq_credit_sync(&c, &s, 0, 0, &resend, &lost);
    assert_int_equal(resend, 0);
    /* One interval later it is still not counted: ask again, not as new credit. */
    dq_credit_sync(&c, &s, 0, 0, &resend, &lost);
    assert_int_equal(resend, 3);
    assert_int_equal(lost, 0);
    assert_int_equal(c.asked, 3);
    assert_int_equal(dq_credit_wanted(&c), 0);
    /* The broker counts the repeat: in step again. */
    dq_credit_sync(&c, &s, 3, 0, &resend, &lost);
    dq_credit_sync(&c, &s, 3, 0, &resend, &lost);
    assert_int_equal(resend + lost, 0);
}

static void test_sync_lost_assign_frees_the_slot(void **state) {
    (void)state;
    dq_credit_t c;
    dq_credit_sync_t s = {0};
    dq_credit_init(&c, 2);
    uint32_t resend, lost;
    assert_int_equal(s_ask(&c, &s), 2);
    /* The broker sent two ASSIGNs; one arrives, one is lost. */
    assert_int_equal(dq_credit_take(&c), 0);
    s.received++;
    dq_credit_sync(&c, &s, 2, 2, &resend, &lost); /* may still be in flight */
    assert_int_equal(lost, 0);
    dq_credit_sync(&c, &s, 2, 2, &resend, &lost);
    assert_int_equal(lost, 1);
    assert_int_equal(resend, 0);
    assert_int_equal(c.asked, 0);
    assert_int_equal(dq_credit_wanted(&c), 1); /* the node asks for it anew */
    dq_credit_sync(&c, &s, 2, 2, &resend, &lost);
    assert_int_equal(lost, 0); /* given up once, not again */
}

static void test_sync_repeated_credit_is_taken_as_asked(void **state) {
    (void)state;
    dq_credit_t c;
    dq_credit_sync_t s = {0};
    dq_credit_init(&c, 2);
    uint32_t resend, lost;
    assert_int_equal(s_ask(&c, &s), 2);
    dq_credit_sync(&c, &s, 4, 0, &resend, &lost); /* the CREDIT arrived twice */
    assert_int_equal(resend + lost, 0);
    assert_int_equal(c.asked, 4); /* four ASSIGNs will come and are accepted */
    for (int i = 0; i < 4; i++)
        assert_int_equal(dq_credit_take(&c), 0);
    assert_int_equal(c.held, 4);
    assert_int_equal(dq_credit_wanted(&c), 0);
}

static void test_sync_unasked_assign_is_not_expected_twice(void **state) {
    (void)state;
    dq_credit_t c;
    dq_credit_sync_t s = {0};
    dq_credit_init(&c, 1);
    uint32_t resend, lost;
    assert_int_equal(s_ask(&c, &s), 1); /* the CREDIT arrives twice: two ASSIGNs come */
    assert_int_equal(dq_credit_take(&c), 0);
    s.received++;
    assert_int_equal(dq_credit_take(&c), -1); /* the second finds no credit: taken anyway */
    dq_credit_take_unasked(&c);
    s.received++;
    assert_int_equal(c.held, 2);
    /* The HEARTBEAT shows the surplus; it already came, so nothing more is expected. */
    dq_credit_sync(&c, &s, 2, 2, &resend, &lost);
    dq_credit_sync(&c, &s, 2, 2, &resend, &lost);
    assert_int_equal(resend + lost, 0);
    assert_int_equal(c.asked, 0);
    assert_int_equal(c.unasked, 0);
    dq_credit_release(&c);
    dq_credit_release(&c);
    assert_int_equal(dq_credit_wanted(&c), 1); /* back to exactly its capacity */
}

/* Up to 4 RESULTs always (one of the largest PNGs each); beyond, only within the byte budget
 * and never more than the chunk limit. */
static void test_result_window(void **state) {
    (void) state;
    const uint64_t big = DQ_PROTO_MAX_PNG, budget = DQ_PROTO_RESULT_WINDOW_BYTES;
    assert_true(dq_result_window_open(0, 0, big));
    assert_true(dq_result_window_open(DQ_PROTO_RESULT_WINDOW - 1, 3 * big, big));
    assert_false(dq_result_window_open(DQ_PROTO_RESULT_WINDOW, 4 * big, 1));
    assert_true(dq_result_window_open(DQ_PROTO_RESULT_WINDOW, budget - 1000, 1000));
    assert_false(dq_result_window_open(DQ_PROTO_RESULT_WINDOW, budget - 1000, 1001));
    assert_true(dq_result_window_open(DQ_PROTO_RESULT_WINDOW_MAX - 1, 1000, 1000));
    assert_false(dq_result_window_open(DQ_PROTO_RESULT_WINDOW_MAX, 1000, 1000));
}

static void test_seqs_in_order_nothing_lost(void **state) {
    (void) state;
    dq_assign_seqs_t s;
    dq_seqs_reset(&s);
    uint64_t out[DQ_PROTO_MAX_LOST_ASSIGNS];
    assert_int_equal(dq_seqs_receive(&s, 2), 1); /* reordered: 2 before 1 */
    assert_int_equal(dq_seqs_judge(&s, 0), 0);
    assert_int_equal(dq_seqs_receive(&s, 1), 1);
    assert_int_equal(dq_seqs_receive(&s, 3), 1);
    assert_int_equal(dq_seqs_judge(&s, 3), 0);
    assert_int_equal(dq_seqs_report(&s, out), 0);
    /* Repeats of received ones, before and after they were judged, are not new. */
    assert_int_equal(dq_seqs_receive(&s, 3), 0);
    assert_int_equal(dq_seqs_receive(&s, 4), 1);
    assert_int_equal(dq_seqs_receive(&s, 4), 0);
}

static void test_seqs_name_the_lost_ones(void **state) {
    (void) state;
    dq_assign_seqs_t s;
    dq_seqs_reset(&s);
    uint64_t out[DQ_PROTO_MAX_LOST_ASSIGNS];
    assert_int_equal(dq_seqs_receive(&s, 1), 1);
    assert_int_equal(dq_seqs_receive(&s, 3), 1);
    assert_int_equal(dq_seqs_receive(&s, 6), 1);
    /* The previous HEARTBEAT counted 4: 2 and 4 never came; 5 and 6 are not judged yet. */
    assert_int_equal(dq_seqs_judge(&s, 4), 2);
    for (int beat = 0; beat < DQ_SEQ_REPORTS; beat++) { /* named in as many HEARTBEATs */
        assert_int_equal(dq_seqs_report(&s, out), 2);
        assert_true(out[0] == 2 && out[1] == 4);
    }
    assert_int_equal(dq_seqs_report(&s, out), 0);
    /* Judged lost, then it came after all: dropped (the broker requeued its shard). */
    assert_int_equal(dq_seqs_receive(&s, 2), 0);
    assert_int_equal(dq_seqs_receive(&s, 5), 1);
    assert_int_equal(dq_seqs_judge(&s, 6), 0);
    assert_int_equal(dq_seqs_judge(&s, 7), 1);
    assert_int_equal(dq_seqs_report(&s, out), 1);
    assert_true(out[0] == 7);
    /* A new connection starts the numbers over. */
    dq_seqs_reset(&s);
    assert_int_equal(dq_seqs_report(&s, out), 0);
    assert_int_equal(dq_seqs_receive(&s, 2), 1);
}

static void test_seqs_judged_one_interval_later(void **state) {
    (void) state;
    dq_assign_seqs_t s;
    dq_seqs_reset(&s);
    uint64_t out[DQ_PROTO_MAX_LOST_ASSIGNS];
    const int64_t iv = DQ_PROTO_HEARTBEAT_INTERVAL_MS;
    assert_int_equal(dq_seqs_receive(&s, 1), 1);
    /* HEARTBEAT asg=3 at 10 s: 2 and 3 may still be on their way. */
    assert_int_equal(dq_seqs_heartbeat(&s, 3, 10000), 0);
    /* The same HEARTBEAT repeated at once, then another too soon: still not judged. */
    assert_int_equal(dq_seqs_heartbeat(&s, 3, 10001), 0);
    assert_int_equal(dq_seqs_heartbeat(&s, 4, 10000 + iv - 1), 0);
    assert_int_equal(dq_seqs_receive(&s, 3), 1); /* a late one lands */
    /* One interval after asg=3 arrived: 2 is lost; the count kept next is this one's (5). */
    assert_int_equal(dq_seqs_heartbeat(&s, 5, 10000 + iv), 1);
    assert_int_equal(dq_seqs_report(&s, out), 1);
    assert_true(out[0] == 2);
    assert_int_equal(dq_seqs_receive(&s, 4), 1);
    assert_int_equal(dq_seqs_receive(&s, 5), 1);
    assert_int_equal(dq_seqs_heartbeat(&s, 5, 10000 + 2 * iv), 0);
    assert_int_equal(dq_seqs_heartbeat(&s, 6, 10000 + 3 * iv), 0);
    assert_int_equal(dq_seqs_heartbeat(&s, 6, 10000 + 4 * iv), 1); /* 6 never came */
}

static void test_sync_numbered_leaves_assigns_to_seqs(void **state) {
    (void) state;
    dq_credit_t c;
    dq_credit_init(&c, 4);
    dq_credit_sync_t s = {.numbered = 1};
    uint32_t resend, lost;
    dq_credit_asked(&c, 4);
    s.sent = 4;
    assert_int_equal(dq_credit_take(&c), 0);
    s.received = 1;
    dq_credit_sync(&c, &s, 4, 3, &resend, &lost);
    dq_credit_sync(&c, &s, 4, 3, &resend, &lost); /* 2 of 3 missing, but by count only */
    assert_int_equal(lost, 0);
    assert_int_equal(resend, 0);
    assert_int_equal(c.asked, 3);
    dq_credit_lost(&c, 2); /* the numbers said so */
    assert_int_equal(c.asked, 1);
    assert_int_equal(dq_credit_wanted(&c), 2);
    dq_credit_lost(&c, 5);
    assert_int_equal(c.asked, 0);
}

static void test_seqs_unnumbered_are_always_new(void **state) {
    (void) state;
    dq_assign_seqs_t s;
    dq_seqs_reset(&s);
    uint64_t out[DQ_PROTO_MAX_LOST_ASSIGNS];
    assert_int_equal(dq_seqs_receive(&s, 0), 1); /* an older broker's ASSIGN */
    assert_int_equal(dq_seqs_receive(&s, 0), 1);
    assert_int_equal(dq_seqs_judge(&s, 0), 0);
    assert_int_equal(dq_seqs_report(&s, out), 0);
}

static void test_seqs_bounded(void **state) {
    (void) state;
    dq_assign_seqs_t s;
    dq_seqs_reset(&s);
    uint64_t out[DQ_PROTO_MAX_LOST_ASSIGNS];
    /* Far ahead of the window: the oldest numbers are settled unjudged (1..10 here). */
    assert_int_equal(dq_seqs_receive(&s, DQ_SEQ_WINDOW + 10), 1);
    assert_int_equal(dq_seqs_receive(&s, 5), 0);
    assert_int_equal(dq_seqs_receive(&s, 11), 1);
    /* 12 .. window + 9 never came; only the newest fit the report. */
    assert_int_equal(dq_seqs_judge(&s, DQ_SEQ_WINDOW + 10), DQ_SEQ_WINDOW - 2);
    assert_int_equal(dq_seqs_report(&s, out), DQ_PROTO_MAX_LOST_ASSIGNS);
    assert_true(out[0] == DQ_SEQ_WINDOW + 10 - DQ_PROTO_MAX_LOST_ASSIGNS);
    assert_true(out[DQ_PROTO_MAX_LOST_ASSIGNS - 1] == DQ_SEQ_WINDOW + 9);
    /* A count beyond anything sent (a broker's bug) ends quickly and reports what fits. */
    dq_seqs_reset(&s);
    assert_true(dq_seqs_judge(&s, UINT64_MAX) <= DQ_PROTO_MAX_LOST_ASSIGNS + 1);
    assert_int_equal(dq_seqs_report(&s, out), DQ_PROTO_MAX_LOST_ASSIGNS);
    assert_true(out[DQ_PROTO_MAX_LOST_ASSIGNS - 1] == UINT64_MAX);
    assert_int_equal(dq_seqs_receive(&s, 12), 0);
}

static dq_msg_shard_failed_t s_failure(uint64_t shard) {
    dq_msg_shard_failed_t f = {.job = 7, .shard = shard, .attempt = 2, .fail_class = DQ_FAIL_OOM};
    snprintf(f.message, sizeof f.message, "shard %llu ran out of memory",
             (unsigned long long) shard);
    return f;
}

static void test_fails_repeated_with_two_heartbeats(void **state) {
    (void) state;
    static dq_fail_reports_t f;
    memset(&f, 0, sizeof f);
    dq_msg_shard_failed_t a = s_failure(1), b = s_failure(2);
    assert_int_equal(dq_fails_add(&f, &a, true), 0); /* sent at once: 2 repeats to go */
    assert_int_equal(f.q.n, 1);
    assert_memory_equal(&f.msg[0], &a, sizeof a);     /* word for word */
    dq_fails_sent(&f);                                /* the first HEARTBEAT */
    assert_int_equal(dq_fails_add(&f, &b, false), 0); /* no connection: all 3 to go */
    assert_int_equal(f.q.n, 2);
    dq_fails_sent(&f); /* the second HEARTBEAT (or READY): a's last */
    assert_int_equal(f.q.n, 1);
    assert_true(f.msg[0].shard == 2);
    dq_fails_sent(&f);
    assert_int_equal(f.q.n, 1);
    dq_fails_sent(&f);
    assert_int_equal(f.q.n, 0);
    dq_fails_sent(&f); /* nothing queued: nothing happens */
    assert_int_equal(f.q.n, 0);
}

static void test_fails_bounded_oldest_goes(void **state) {
    (void) state;
    static dq_fail_reports_t f;
    memset(&f, 0, sizeof f);
    for (uint64_t i = 1; i <= DQ_FAIL_PENDING; i++) {
        dq_msg_shard_failed_t x = s_failure(i);
        assert_int_equal(dq_fails_add(&f, &x, true), 0);
    }
    dq_msg_shard_failed_t x = s_failure(DQ_FAIL_PENDING + 1);
    assert_int_equal(dq_fails_add(&f, &x, true), 1); /* full: shard 1 goes */
    assert_int_equal(f.q.n, DQ_FAIL_PENDING);
    assert_true(f.msg[0].shard == 2);
    assert_true(f.msg[DQ_FAIL_PENDING - 1].shard == DQ_FAIL_PENDING + 1);
    assert_string_equal(f.msg[DQ_FAIL_PENDING - 1].message, x.message);
    for (int k = 1; k < DQ_FAIL_REPORTS; k++)
        dq_fails_sent(&f);
    assert_int_equal(f.q.n, 0);
}

static void test_backoff_doubles_to_cap(void **state) {
    (void) state;
    dq_backoff_t b;
    dq_backoff_init(&b, DQ_PROTO_RECONNECT_INITIAL_MS, DQ_PROTO_RECONNECT_MAX_MS);
    const uint32_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(dq_backoff_next(&b), want[i]);
    dq_backoff_reset(&b);
    assert_int_equal(dq_backoff_next(&b), 1000);
}

static void test_backoff_odd_cap(void **state) {
    (void) state;
    dq_backoff_t b;
    dq_backoff_init(&b, 300, 1000);
    assert_int_equal(dq_backoff_next(&b), 300);
    assert_int_equal(dq_backoff_next(&b), 600);
    assert_int_equal(dq_backoff_next(&b), 1000);
    assert_int_equal(dq_backoff_next(&b), 1000);
    dq_backoff_init(&b, 0xF0000000u, 0xFFFFFFFFu); /* no overflow near the top */
    assert_int_equal(dq_backoff_next(&b), 0xF0000000u);
    assert_int_equal(dq_backoff_next(&b), 0xFFFFFFFFu);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credit_asks_only_free_slots),
        cmocka_unit_test(test_credit_refuses_unasked_work),
        cmocka_unit_test(test_credit_reconnect_and_capacity),
        cmocka_unit_test(test_sync_in_step_changes_nothing),
        cmocka_unit_test(test_sync_lost_credit_is_asked_again),
        cmocka_unit_test(test_sync_lost_assign_frees_the_slot),
        cmocka_unit_test(test_sync_repeated_credit_is_taken_as_asked),
        cmocka_unit_test(test_sync_unasked_assign_is_not_expected_twice),
        cmocka_unit_test(test_result_window),
        cmocka_unit_test(test_seqs_in_order_nothing_lost),
        cmocka_unit_test(test_seqs_name_the_lost_ones),
        cmocka_unit_test(test_seqs_judged_one_interval_later),
        cmocka_unit_test(test_sync_numbered_leaves_assigns_to_seqs),
        cmocka_unit_test(test_seqs_unnumbered_are_always_new),
        cmocka_unit_test(test_seqs_bounded),
        cmocka_unit_test(test_fails_repeated_with_two_heartbeats),
        cmocka_unit_test(test_fails_bounded_oldest_goes),
        cmocka_unit_test(test_backoff_doubles_to_cap),
        cmocka_unit_test(test_backoff_odd_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
