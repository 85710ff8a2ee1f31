/* node/flow.h: the node's small bookkeeping rules, kept apart so they can be tested alone:
 * shard credit (never take unasked work), the result window, ASSIGN sequence numbers, SHARD_FAILED
 * repeats and the reconnect back-off schedule. */
#ifndef DQ_NODE_FLOW_H
#define DQ_NODE_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

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
    uint64_t sent;            /* credit asked for by the CREDITs sent on this connection */
    uint64_t received;        /* ASSIGNs received (and ASSIGNs given up as lost) */
    uint64_t sent_before;     /* `sent` when the previous broker HEARTBEAT arrived */
    uint64_t assigned_before; /* the broker's ASSIGN count in the previous HEARTBEAT */
    int primed;               /* a previous HEARTBEAT was seen */
    int numbered;             /* the broker numbers its ASSIGNs (minor 5): lost ones are judged
                                 by number (dq_seqs_*, then dq_credit_lost), not by count here */
} dq_credit_sync_t;

/* A broker HEARTBEAT with counts. Sets *resend: credit to ask for again, without counting it as
 * new (a CREDIT the broker never counted); *lost: ASSIGNs given up (the asked credit drops by as
 * many, so the node asks again; always 0 when s->numbered). Credit the broker counted beyond
 * what was sent (a repeated CREDIT) is taken as asked, less the ASSIGNs already taken unasked
 * for it. */
void dq_credit_sync(dq_credit_t *c, dq_credit_sync_t *s, uint64_t broker_credit,
                    uint64_t broker_assigned, uint32_t *resend, uint32_t *lost);

/* Result flow control: may one more RESULT with a PNG of next_bytes go, while `inflight` RESULTs
 * with PNGs of inflight_bytes in all are not acknowledged? Up to DQ_PROTO_RESULT_WINDOW always;
 * beyond that, up to DQ_PROTO_RESULT_WINDOW_MAX, while the PNG bytes in flight would stay within
 * DQ_PROTO_RESULT_WINDOW_BYTES. */
bool dq_result_window_open(uint32_t inflight, uint64_t inflight_bytes, uint64_t next_bytes);

/* Reports sent a few times each, so that one lost message costs nothing (a lost ASSIGN's
 * number, a SHARD_FAILED): a bounded queue kept beside the caller's array of items (`size` bytes
 * each, room for DQ_REPEATS_CAP), oldest first. A new item that finds it full makes the oldest
 * go (it has been sent the most). */
#define DQ_REPEATS_CAP 64
typedef struct {
    uint8_t left[DQ_REPEATS_CAP]; /* sends still to come for items[i], >= 1 */
    uint32_t n;
} dq_repeats_t;

/* Appends a copy of item to items[0..r->n), to be sent `times` (>= 1) more times. Returns 1 when
 * the queue was full and the oldest item was dropped to make room, else 0. */
int dq_repeats_push(dq_repeats_t *r, void *items, size_t size, const void *item, unsigned times);
/* Every queued item has just been sent once more: those with no sends left leave, the others
 * keep their order. */
void dq_repeats_sent(dq_repeats_t *r, void *items, size_t size);

/* ASSIGN sequence numbers (protocol minor 5): a broker numbers the ASSIGNs of a connection 1, 2,
 * ...; the node remembers which it received, judges lost those that a broker HEARTBEAT which
 * arrived at least one heartbeat interval earlier counted (`asg`; like credit sync, but timed, so
 * that a repeated HEARTBEAT does not shorten the wait) and that never came, and names them in
 * its next DQ_SEQ_REPORTS HEARTBEATs so the broker requeues their shards at once, without costing
 * an attempt. An ASSIGN that comes after it was judged lost is dropped (its shard
 * was requeued). Received numbers are tracked over a window of DQ_SEQ_WINDOW above the judged
 * ones; an ASSIGN beyond it settles the oldest unjudged numbers unjudged (their leases expire
 * as with an older broker). Reset with each new connection. */
#define DQ_SEQ_WINDOW  2048 /* more than the credit a node may have outstanding */
#define DQ_SEQ_REPORTS 3    /* HEARTBEATs that name a lost ASSIGN (liveness: 3 beats) */
typedef struct {
    uint64_t base; /* every number <= base is settled: received, or judged lost */
    uint64_t bits[DQ_SEQ_WINDOW / 64];        /* bit (n % DQ_SEQ_WINDOW): n in (base, base + window]
                                                 was received */
    uint64_t lost[DQ_PROTO_MAX_LOST_ASSIGNS]; /* judged lost, still to be reported... */
    dq_repeats_t lost_reports;                /* ...how many more times each */
    uint64_t judge_upto;                      /* the `asg` of the HEARTBEAT to judge by next... */
    int64_t judge_at;                         /* ...and when it arrived (ms); 0: none yet */
} dq_assign_seqs_t;

void dq_seqs_reset(dq_assign_seqs_t *s);
/* An ASSIGN numbered seq arrived. Returns 1 when it is new (take it; an unnumbered ASSIGN, seq 0,
 * always is), 0 when it was received before or judged lost (drop it). */
int dq_seqs_receive(dq_assign_seqs_t *s, uint64_t seq);
/* Numbers up to upto never received are judged lost and queued for reporting (the oldest queued
 * ones make room when more than DQ_PROTO_MAX_LOST_ASSIGNS wait). Returns how many were judged
 * lost. The rule that picks upto is dq_seqs_heartbeat's; this is its second half. */
uint32_t dq_seqs_judge(dq_assign_seqs_t *s, uint64_t upto);
/* A broker HEARTBEAT of minor 5 with its ASSIGN count arrived at now_ms (a monotonic clock).
 * When the HEARTBEAT kept from before arrived at least DQ_PROTO_HEARTBEAT_INTERVAL_MS ago, the
 * numbers it counted are judged (dq_seqs_judge) and this one is kept instead; a younger one is
 * kept on (a quick repeat cannot shorten the wait). Returns how many were judged lost. */
uint32_t dq_seqs_heartbeat(dq_assign_seqs_t *s, uint64_t broker_assigned, int64_t now_ms);
/* Writes the lost numbers to report in the HEARTBEAT being sent into out (room for
 * DQ_PROTO_MAX_LOST_ASSIGNS) and returns how many; each is reported DQ_SEQ_REPORTS times. */
uint32_t dq_seqs_report(dq_assign_seqs_t *s, uint64_t *out);

/* SHARD_FAILED repeats: a failure the node reports is sent at once and again just before each of
 * its next DQ_FAIL_REPORTS - 1 HEARTBEATs, so that one lost message does not leave the shard to
 * its lease (minutes) while the broker lists it under the node; the broker's fencing by attempt
 * makes every copy after the first change nothing. Repeats still due when the node reconnects go
 * out on the new connection right after READY, before its first HEARTBEAT (whose held list no
 * longer names the shard). A report is kept word for word (the same job, shard, attempt, class
 * and message each time). At most DQ_FAIL_PENDING wait; one more makes the oldest go (it has
 * been sent the most: a burst of more than that many failures within two heartbeats loses the
 * oldest's last repeats). Unlike dq_assign_seqs_t these outlive a connection. */
#define DQ_FAIL_REPORTS DQ_SEQ_REPORTS /* sends per SHARD_FAILED, as for a lost ASSIGN's number */
#define DQ_FAIL_PENDING                                                                            \
    DQ_REPEATS_CAP /* failures with repeats to go; more than a node fails at                       \
                      once */
typedef struct {
    dq_msg_shard_failed_t msg[DQ_FAIL_PENDING]; /* oldest first */
    dq_repeats_t q;                             /* sends still to come, 1..DQ_FAIL_REPORTS */
} dq_fail_reports_t;

/* Queues a failure to report: DQ_FAIL_REPORTS sends to go, less the one just made when `sent`
 * (no connection: all of them, the first right after READY). Returns 1 when the queue was full
 * and the oldest failure was dropped to make room, else 0. */
int dq_fails_add(dq_fail_reports_t *f, const dq_msg_shard_failed_t *msg, bool sent);
/* The caller has just sent every queued failure once more (f->msg[0..f->n), in order): each is
 * counted, and those sent DQ_FAIL_REPORTS times leave the queue. */
void dq_fails_sent(dq_fail_reports_t *f);

/* n ASSIGNs were judged lost by number: the asked credit drops by as many (at most to 0), so the
 * node asks again. */
void dq_credit_lost(dq_credit_t *c, uint32_t n);

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
