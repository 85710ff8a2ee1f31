/* node/flow.c: shard credit accounting, the result window, ASSIGN sequence numbers, SHARD_FAILED
 * repeats and reconnect back-off. */
#include "node/flow.h"

#include <stdbool.h>
#include <string.h>

#include "common/proto.h"

void dq_credit_init(dq_credit_t *c, uint32_t capacity) {
    c->capacity = capacity;
    c->held = 0;
    c->asked = 0;
    c->unasked = 0;
}

void dq_credit_set_capacity(dq_credit_t *c, uint32_t capacity) {
    c->capacity = capacity;
}

uint32_t dq_credit_wanted(const dq_credit_t *c) {
    uint64_t used = (uint64_t) c->held + c->asked;
    if (used >= c->capacity) return 0;
    uint64_t free_slots = c->capacity - used;
    return free_slots > DQ_PROTO_MAX_CREDIT ? DQ_PROTO_MAX_CREDIT : (uint32_t) free_slots;
}

void dq_credit_asked(dq_credit_t *c, uint32_t n) {
    c->asked += n;
}

int dq_credit_take(dq_credit_t *c) {
    if (c->asked == 0) return -1;
    c->asked--;
    c->held++;
    return 0;
}

void dq_credit_take_unasked(dq_credit_t *c) {
    c->held++;
    c->unasked++;
}

void dq_credit_release(dq_credit_t *c) {
    if (c->held > 0) c->held--;
}

void dq_credit_reset(dq_credit_t *c) {
    c->asked = 0;
    c->unasked = 0;
}

void dq_credit_sync(dq_credit_t *c, dq_credit_sync_t *s, uint64_t broker_credit,
                    uint64_t broker_assigned, uint32_t *resend, uint32_t *lost) {
    *resend = *lost = 0;
    if (broker_credit > s->sent) { /* a CREDIT counted twice: its ASSIGNs will come... */
        uint64_t extra = broker_credit - s->sent;
        s->sent += extra;
        uint64_t came = extra < c->unasked ? extra : c->unasked; /* ...or already came */
        c->unasked -= (uint32_t) came;
        extra -= came;
        c->asked += extra > UINT32_MAX ? UINT32_MAX : (uint32_t) extra;
    }
    if (s->primed) {
        /* Sent before the previous HEARTBEAT and still not counted: lost. */
        if (broker_credit < s->sent_before) {
            uint64_t n = s->sent_before - broker_credit;
            *resend = n > c->asked ? c->asked : (uint32_t) n;
        }
        /* Assigned before the previous HEARTBEAT (which came after them) and never seen. */
        if (!s->numbered && s->assigned_before > s->received) {
            uint64_t n = s->assigned_before - s->received;
            s->received = s->assigned_before;
            if (n > c->asked) n = c->asked;
            c->asked -= (uint32_t) n;
            *lost = (uint32_t) n;
        }
    }
    s->sent_before = s->sent;
    s->assigned_before = broker_assigned;
    s->primed = 1;
}

bool dq_result_window_open(uint32_t inflight, uint64_t inflight_bytes, uint64_t next_bytes) {
    if (inflight < DQ_PROTO_RESULT_WINDOW) return true;
    return inflight < DQ_PROTO_RESULT_WINDOW_MAX &&
           inflight_bytes + next_bytes <= DQ_PROTO_RESULT_WINDOW_BYTES;
}

void dq_credit_lost(dq_credit_t *c, uint32_t n) {
    c->asked -= n < c->asked ? n : c->asked;
}

void dq_seqs_reset(dq_assign_seqs_t *s) {
    memset(s, 0, sizeof *s);
}

static bool s_seq_bit(const dq_assign_seqs_t *s, uint64_t seq) {
    uint64_t i = seq % DQ_SEQ_WINDOW;
    return (s->bits[i / 64] >> (i % 64)) & 1;
}

static void s_seq_set(dq_assign_seqs_t *s, uint64_t seq, bool on) {
    uint64_t i = seq % DQ_SEQ_WINDOW, mask = UINT64_C(1) << (i % 64);
    s->bits[i / 64] = on ? s->bits[i / 64] | mask : s->bits[i / 64] & ~mask;
}

int dq_seqs_receive(dq_assign_seqs_t *s, uint64_t seq) {
    if (seq == 0) return 1;
    if (seq <= s->base) return 0;
    if (seq - s->base > DQ_SEQ_WINDOW) {
        /* Settle the oldest numbers without judging them, so that seq fits the window. Bits of
         * numbers that leave the window are cleared in order, so none is read for another. */
        uint64_t new_base = seq - DQ_SEQ_WINDOW;
        if (new_base - s->base >= DQ_SEQ_WINDOW)
            memset(s->bits, 0, sizeof s->bits);
        else
            for (uint64_t n = s->base + 1; n <= new_base; n++)
                s_seq_set(s, n, false);
        s->base = new_base;
    }
    if (s_seq_bit(s, seq)) return 0;
    s_seq_set(s, seq, true);
    return 1;
}

_Static_assert(DQ_PROTO_MAX_LOST_ASSIGNS == DQ_REPEATS_CAP, "a HEARTBEAT names every queued one");
_Static_assert(DQ_SEQ_REPORTS >= 1 && DQ_FAIL_REPORTS >= 2 && DQ_FAIL_REPORTS <= UINT8_MAX,
               "sends to go are counted in a byte; a failure sent at once has a repeat to go");

int dq_repeats_push(dq_repeats_t *r, void *items, size_t size, const void *item, unsigned times) {
    unsigned char *base = items;
    int dropped = r->n == DQ_REPEATS_CAP;
    if (dropped) {
        memmove(base, base + size, (r->n - 1) * size);
        memmove(r->left, r->left + 1, (r->n - 1) * sizeof *r->left);
        r->n--;
    }
    memcpy(base + r->n * size, item, size);
    r->left[r->n++] = (uint8_t) times;
    return dropped;
}

void dq_repeats_sent(dq_repeats_t *r, void *items, size_t size) {
    unsigned char *base = items;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        if (--r->left[i] == 0) continue;
        if (kept != i) {
            memcpy(base + kept * size, base + i * size, size);
            r->left[kept] = r->left[i];
        }
        kept++;
    }
    r->n = kept;
}

static void s_seq_queue(dq_assign_seqs_t *s, uint64_t seq) {
    dq_repeats_push(&s->lost_reports, s->lost, sizeof *s->lost, &seq, DQ_SEQ_REPORTS);
}

uint32_t dq_seqs_judge(dq_assign_seqs_t *s, uint64_t upto) {
    uint32_t lost = 0;
    /* Numbers beyond the window were never received (receive would have moved the window). */
    while (s->base < upto) {
        uint64_t n = ++s->base;
        if (s_seq_bit(s, n)) {
            s_seq_set(s, n, false);
            continue;
        }
        lost++;
        s_seq_queue(s, n);
        if (upto - s->base > DQ_SEQ_WINDOW + DQ_PROTO_MAX_LOST_ASSIGNS) {
            /* A count far beyond anything sent to us (a broker bug): report what fits. */
            memset(s->bits, 0, sizeof s->bits);
            s->base = upto - DQ_PROTO_MAX_LOST_ASSIGNS;
        }
    }
    return lost;
}

uint32_t dq_seqs_heartbeat(dq_assign_seqs_t *s, uint64_t broker_assigned, int64_t now_ms) {
    uint32_t lost = 0;
    if (s->judge_at && now_ms - s->judge_at >= DQ_PROTO_HEARTBEAT_INTERVAL_MS) {
        lost = dq_seqs_judge(s, s->judge_upto);
        s->judge_at = 0;
    }
    if (!s->judge_at) {
        s->judge_upto = broker_assigned;
        s->judge_at = now_ms > 0 ? now_ms : 1; /* 0 means none */
    }
    return lost;
}

uint32_t dq_seqs_report(dq_assign_seqs_t *s, uint64_t *out) {
    uint32_t n = s->lost_reports.n;
    memcpy(out, s->lost, n * sizeof *out);
    dq_repeats_sent(&s->lost_reports, s->lost, sizeof *s->lost);
    return n;
}

int dq_fails_add(dq_fail_reports_t *f, const dq_msg_shard_failed_t *msg, bool sent) {
    return dq_repeats_push(&f->q, f->msg, sizeof *f->msg, msg,
                           sent ? DQ_FAIL_REPORTS - 1 : DQ_FAIL_REPORTS);
}

void dq_fails_sent(dq_fail_reports_t *f) {
    dq_repeats_sent(&f->q, f->msg, sizeof *f->msg);
}

void dq_backoff_init(dq_backoff_t *b, uint32_t initial_ms, uint32_t max_ms) {
    b->initial_ms = initial_ms;
    b->max_ms = max_ms < initial_ms ? initial_ms : max_ms;
    b->next_ms = initial_ms;
}

uint32_t dq_backoff_next(dq_backoff_t *b) {
    uint32_t d = b->next_ms;
    b->next_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
    return d;
}

void dq_backoff_reset(dq_backoff_t *b) {
    b->next_ms = b->initial_ms;
}
