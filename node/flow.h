/* node/flow.h: the node's small bookkeeping rules, kept apart so they can be tested alone:
 * shard credit (never take unasked work), the result window and the reconnect back-off
 * schedule. */
#ifndef DQ_NODE_FLOW_H
#define DQ_NODE_FLOW_H

#include <stdbool.h>
#include <stdint.h>

/* Credit: the broker sends at most as many ASSIGNs as the node asked for with CREDIT. The node
 * asks only for slots that are free: capacity - held - asked. */
typedef struct {
    uint32_t capacity; /* batch slots of the ranks that are up */
    uint32_t held;     /* shards the node holds (running, queued, or waiting for acks) */
    uint32_t asked;    /* credit sent to the current broker connection and not yet used */
    uint32_t unasked;  /* ASSIGNs taken beyond the credit asked (see dq_credit_take_unasked) */
} dq_credit_t;

void dq_credit_init(dq_credit_t *c, uint32_t capacity);
/* Changes the capacity (a rank went down or came back). Held shards stay held. */
void dq_credit_set_capacity(dq_credit_t *c, uint32_t capacity);
/* Credit to ask for now: the free slots not yet asked for, at most DQ_PROTO_MAX_CREDIT; 0 when
 * none. The caller sends CREDIT with it and then calls dq_credit_asked. */
uint32_t dq_credit_wanted(const dq_credit_t *c);
void dq_credit_asked(dq_credit_t *c, uint32_t n);
/* An ASSIGN arrived. Returns 0 and counts it held, or -1 when no credit was outstanding (the
 * broker pushed unasked work; nothing changes). */
int dq_credit_take(dq_credit_t *c);
/* An ASSIGN arrived with no credit outstanding (the broker counted a repeated CREDIT): it is
 * held anyway, and remembered so that credit sync does not expect it a second time. */
void dq_credit_take_unasked(dq_credit_t *c);
/* A held shard ended (done, failed, stopped, handed back). */
void dq_credit_release(dq_credit_t *c);
/* A new broker connection: credit asked of the old one is void. */
void dq_credit_reset(dq_credit_t *c);

/* Credit sync (protocol minor 3): the broker's HEARTBEAT carries its counts of this
 * connection's credit and ASSIGNs; comparing them with the node's own finds a CREDIT the broker
 * never got and ASSIGNs the node never got, which would otherwise leave the node waiting
 * forever. A count is judged only one heartbeat later, so messages merely in flight are not
 * taken for lost. Reset with each new connection. */
typedef struct {
    uint64_t sent;             /* credit asked for by the CREDITs sent on this connection */
    uint64_t received;         /* ASSIGNs received (and ASSIGNs given up as lost) */
    uint64_t sent_before;      /* `sent` when the previous broker HEARTBEAT arrived */
    uint64_t assigned_before;  /* the broker's ASSIGN count in the previous HEARTBEAT */
    int primed;                /* a previous HEARTBEAT was seen */
} dq_credit_sync_t;

/* A broker HEARTBEAT with counts. Sets *resend: credit to ask for again, without counting it as
 * new (a CREDIT the broker never counted); *lost: ASSIGNs given up (the asked credit drops by as
 * many, so the node asks again). Credit the broker counted beyond what was sent (a repeated
 * CREDIT) is taken as asked, less the ASSIGNs already taken unasked for it. */
void dq_credit_sync(dq_credit_t *c, dq_credit_sync_t *s, uint64_t broker_credit,
                    uint64_t broker_assigned, uint32_t *resend, uint32_t *lost);

/* Result flow control: may one more RESULT with a PNG of next_bytes go, while `inflight` RESULTs
 * with PNGs of inflight_bytes in all are not acknowledged? Up to DQ_PROTO_RESULT_WINDOW always;
 * beyond that, up to DQ_PROTO_RESULT_WINDOW_MAX, while the PNG bytes in flight would stay within
 * DQ_PROTO_RESULT_WINDOW_BYTES. */
bool dq_result_window_open(uint32_t inflight, uint64_t inflight_bytes, uint64_t next_bytes);

/* Back-off: initial, doubled after each try, capped at max. */
typedef struct {
    uint32_t initial_ms, max_ms;
    uint32_t next_ms; /* delay the next call returns */
} dq_backoff_t;

void dq_backoff_init(dq_backoff_t *b, uint32_t initial_ms, uint32_t max_ms);
/* Returns the delay before the next try and doubles it for the one after (up to max). */
uint32_t dq_backoff_next(dq_backoff_t *b);
/* After a success: the next delay is the initial one again. */
void dq_backoff_reset(dq_backoff_t *b);

#endif
