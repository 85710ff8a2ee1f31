/* node/flow.c: shard credit accounting, the result window and reconnect back-off. */
#include "node/flow.h"

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
        if (s->assigned_before > s->received) {
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
