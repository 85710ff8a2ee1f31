/* tests/integration/fake_node.c: a stand-in diffq-node for the broker's tests. It speaks the
 * node protocol (READY, CREDIT, PROGRESS, RESULT with a window of 4, SHARD_DONE, heartbeats,
 * reconnect on silence or DISCONNECT) and "renders" each image as a tiny valid PNG whose pixels
 * come from the seed and image index. Fault switches: --delay-ms slows it down, --hang-after K
 * makes it go silent (no reads, no writes) after K RESULTs for --hang-ms (0: until killed),
 * --ready-again-after K sends its READY a second time on the same connection after K RESULTs
 * (as a network that repeats a message would). --bimg B announces a batch of B images in READY
 * (minor 4; without it the node says nothing, and gets shards whole). Without --boot it sends an
 * older node's empty HEARTBEATs; with --boot B it announces B in READY (minor 6) and lists the
 * shards it holds in its HEARTBEATs. It ignores ASSIGN.seq. With --boot, --leave-on-assign K
 * drops its K-th ASSIGN and reconnects at once (as if the ASSIGN had come to a connection it had
 * just left), and --restart-after K forgets everything after K RESULTs and reconnects with boot
 * B + 1 (a restarted process). --fail-attempt A fails every shard whose ASSIGN has attempt A at
 * once (SHARD_FAILED class internal, no RESULT); --fail-sends N sends each such SHARD_FAILED N
 * times, word for word, like diffq-node (at once, then just before each of its next N - 1
 * HEARTBEATs), and --fail-lose K leaves out the first K of those copies (as if the network had
 * lost them). Usage: fake_node --broker EP [--name N] [--cap N] [--delay-ms D] [--hang-after K]
 * [--hang-ms H] [--ready-again-after K] [--model M] [--bimg B] [--boot B] [--leave-on-assign K]
 * [--restart-after K] [--fail-attempt A [--fail-sends N] [--fail-lose K]]. Logs what happens on
 * stderr; runs until SIGTERM. */
#include <czmq.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/png_out.h"

#include "common/proto.h"

#define MAX_SHARDS 8
#define WINDOW     DQ_PROTO_RESULT_WINDOW

typedef struct {
    uint64_t line, seed;
    uint32_t n;
} req_t;

typedef struct {
    uint64_t job, shard;
    uint32_t att;
    req_t reqs[DQ_PROTO_MAX_REQUESTS];
    uint32_t n_reqs, r, img, chunk;
    bool all_sent;
} shard_t;

typedef struct {
    dq_msg_t msg; /* a RESULT not yet acknowledged; owns its PNG */
} unacked_t;

static volatile sig_atomic_t s_stop = 0;
static void s_on_term(int sig) {
    (void) sig;
    s_stop = 1;
}

static const char *s_ep, *s_name = "fake", *s_model = "tiny";
static int s_cap = 1, s_delay = 0, s_hang_after = -1, s_hang_ms = 0, s_ready_again = -1,
           s_bimg = 0, s_leave_on_assign = -1, s_restart_after = -1, s_assigns;
static int s_fail_attempt = -1, s_fail_sends = 1, s_fail_lose = 0;
static uint64_t s_boot;
static zsock_t *s_sock;
static shard_t s_shards[MAX_SHARDS];
static int s_n_shards;
static unacked_t s_unacked[WINDOW * MAX_SHARDS];
static int s_n_unacked;
static int64_t s_last_recv, s_last_send, s_last_heartbeat;
static int s_sent_total;

/* SHARD_FAILEDs with copies still to send (--fail-sends). */
typedef struct {
    dq_msg_t msg;
    int copies; /* made so far, sent or left out */
} failure_t;
static failure_t s_failures[MAX_SHARDS];
static int s_n_failures;

static void s_send(const dq_msg_t *m) {
    zmsg_t *zm = NULL;
    char err[256];
    if (dq_proto_encode(m, &zm, err, sizeof err) != 0) {
        fprintf(stderr, "fake_node: encode %s: %s\n", dq_proto_command_name(m->cmd), err);
        exit(3);
    }
    if (zmsg_send(&zm, s_sock) != 0) zmsg_destroy(&zm);
    s_last_send = zclock_mono();
}

/* The next copy of pending SHARD_FAILED i: sent, or left out while it is one of the first
 * --fail-lose. Returns 1 when that was its last copy (--fail-sends) and it left the list. */
static int s_fail_copy(int i) {
    failure_t *f = &s_failures[i];
    bool lose = ++f->copies <= s_fail_lose;
    fprintf(stderr, "fake_node %s: SHARD_FAILED shard=%llu attempt=%u copy=%d/%d %s\n", s_name,
            (unsigned long long) f->msg.shard_failed.shard, f->msg.shard_failed.attempt, f->copies,
            s_fail_sends, lose ? "lost" : "sent");
    if (!lose) s_send(&f->msg);
    if (f->copies < s_fail_sends) return 0;
    s_failures[i] = s_failures[--s_n_failures];
    return 1;
}

/* The next copy of every pending SHARD_FAILED (before a HEARTBEAT). */
static void s_fail_copies(void) {
    for (int i = 0; i < s_n_failures; i++)
        i -= s_fail_copy(i);
}

static void s_credit(uint32_t n) {
    if (n == 0) return;
    dq_msg_t m = {.cmd = DQ_CMD_CREDIT};
    m.credit.credit = n;
    s_send(&m);
}

static void s_send_ready(void) {
    dq_device_t dev = {.name = "cpu", .memory = 1u << 30};
    char *models[1] = {(char *) s_model};
    dq_msg_t m = {.cmd = DQ_CMD_READY};
    snprintf(m.ready.name, sizeof m.ready.name, "%s", s_name);
    snprintf(m.ready.version, sizeof m.ready.version, "fake_node");
    m.ready.ranks = 1;
    m.ready.capacity = (uint32_t) s_cap;
    m.ready.devices = &dev;
    m.ready.n_devices = 1;
    m.ready.models = models;
    m.ready.n_models = 1;
    m.ready.max_batch = (uint32_t) s_bimg;
    m.ready.boot = s_boot;
    s_send(&m);
}

static void s_connect(void) {
    zsock_destroy(&s_sock);
    s_sock = zsock_new(ZMQ_DEALER);
    zsock_set_linger(s_sock, 0);
    zsock_connect(s_sock, "%s", s_ep);
    s_send_ready();
    s_credit((uint32_t) (s_cap - s_n_shards));
    /* Resend what was not acknowledged and renew what still runs (a restarted broker reclaims). */
    for (int i = 0; i < s_n_unacked; i++)
        s_send(&s_unacked[i].msg);
    for (int i = 0; i < s_n_shards; i++) {
        dq_msg_t p = {.cmd = DQ_CMD_PROGRESS};
        p.progress = (dq_msg_progress_t){s_shards[i].job, s_shards[i].shard, s_shards[i].att, 0, 1};
        s_send(&p);
    }
    s_last_recv = zclock_mono();
    fprintf(stderr, "fake_node %s: connected to %s, resent %d results, %d shards running\n", s_name,
            s_ep, s_n_unacked, s_n_shards);
}

static void s_drop_shard(int i) {
    for (int k = s_n_unacked - 1; k >= 0; k--)
        if (s_unacked[k].msg.result.shard == s_shards[i].shard) {
            dq_msg_clear(&s_unacked[k].msg);
            s_unacked[k] = s_unacked[--s_n_unacked];
        }
    s_shards[i] = s_shards[--s_n_shards];
}

static int s_unacked_of(uint64_t shard) {
    int n = 0;
    for (int k = 0; k < s_n_unacked; k++)
        n += s_unacked[k].msg.result.shard == shard;
    return n;
}

static void s_on_message(dq_msg_t *m) {
    switch (m->cmd) {
    case DQ_CMD_ASSIGN: {
        if (++s_assigns == s_leave_on_assign) {
            fprintf(stderr, "fake_node %s: leaving the connection on ASSIGN shard=%llu\n", s_name,
                    (unsigned long long) m->assign.shard);
            s_connect();
            break;
        }
        if ((int) m->assign.attempt == s_fail_attempt && s_n_failures < MAX_SHARDS) {
            failure_t *f = &s_failures[s_n_failures++];
            f->msg = (dq_msg_t){.cmd = DQ_CMD_SHARD_FAILED};
            f->msg.shard_failed = (dq_msg_shard_failed_t){m->assign.job, m->assign.shard,
                                                          m->assign.attempt, DQ_FAIL_INTERNAL, ""};
            snprintf(f->msg.shard_failed.message, sizeof f->msg.shard_failed.message,
                     "fake_node %s fails attempt %u (--fail-attempt)", s_name, m->assign.attempt);
            f->copies = 0;
            s_fail_copy(s_n_failures - 1); /* the first copy at once */
            s_credit(1);
            break;
        }
        if (s_n_shards == MAX_SHARDS) break;
        shard_t *s = &s_shards[s_n_shards++];
        memset(s, 0, sizeof *s);
        s->job = m->assign.job;
        s->shard = m->assign.shard;
        s->att = m->assign.attempt;
        for (uint32_t i = 0; i < m->assign.n_requests; i++)
            s->reqs[s->n_reqs++] = (req_t){m->assign.requests[i].line, m->assign.requests[i].seed,
                                           m->assign.requests[i].image_count};
        fprintf(stderr, "fake_node %s: assign job=%llu shard=%llu attempt=%u requests=%u\n", s_name,
                (unsigned long long) s->job, (unsigned long long) s->shard, s->att, s->n_reqs);
        break;
    }
    case DQ_CMD_RESULT_ACK:
        fprintf(stderr, "fake_node %s: ack shard=%llu attempt=%u chunk=%u stored=%d\n", s_name,
                (unsigned long long) m->result_ack.shard, m->result_ack.attempt,
                m->result_ack.chunk, m->result_ack.stored);
        for (int k = 0; k < s_n_unacked; k++) {
            dq_msg_result_t *r = &s_unacked[k].msg.result;
            if (r->shard == m->result_ack.shard && r->attempt == m->result_ack.attempt &&
                r->chunk == m->result_ack.chunk) {
                dq_msg_clear(&s_unacked[k].msg);
                s_unacked[k] = s_unacked[--s_n_unacked];
                break;
            }
        }
        break;
    case DQ_CMD_STOP:
        fprintf(stderr, "fake_node %s: STOP shard=%llu attempt=%u reason=%s\n", s_name,
                (unsigned long long) m->stop.shard, m->stop.attempt,
                dq_proto_stop_reason_name((int) m->stop.reason));
        for (int i = 0; i < s_n_shards; i++)
            if (s_shards[i].shard == m->stop.shard && s_shards[i].att == m->stop.attempt) {
                s_drop_shard(i);
                s_credit(1);
                break;
            }
        break;
    case DQ_CMD_DISCONNECT:
        fprintf(stderr, "fake_node %s: DISCONNECT \"%s\"\n", s_name, m->disconnect.reason);
        zclock_sleep(500); /* a real node backs off */
        s_connect();
        break;
    default:
        break;
    }
}

/* Makes and sends the next image of shard s. */
static void s_render(shard_t *s) {
    req_t *r = &s->reqs[s->r];
    uint8_t rgb[8 * 8 * 3];
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t) (r->seed * 31 + s->img * 7 + i);
    dq_msg_t m = {.cmd = DQ_CMD_RESULT};
    dq_msg_result_t *res = &m.result;
    char err[256];
    if (dq_png_encode(rgb, 8, 8, NULL, 0, &res->png, &res->png_size, err, sizeof err) != 0) {
        fprintf(stderr, "fake_node: png: %s\n", err);
        exit(3);
    }
    res->job = s->job;
    res->shard = s->shard;
    res->attempt = s->att;
    res->chunk = s->chunk++;
    res->line = r->line;
    res->image_index = s->img;
    res->seed = r->seed;
    res->elapsed_ms = (uint32_t) s_delay;
    s_send(&m);
    s_unacked[s_n_unacked++].msg = m;
    s_sent_total++;
    if (++s->img == r->n) {
        s->img = 0;
        if (++s->r == s->n_reqs) s->all_sent = true;
    }
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"broker", 1, 0, 'b'},
                                         {"name", 1, 0, 'n'},
                                         {"cap", 1, 0, 'c'},
                                         {"delay-ms", 1, 0, 'd'},
                                         {"hang-after", 1, 0, 'H'},
                                         {"hang-ms", 1, 0, 'h'},
                                         {"model", 1, 0, 'm'},
                                         {"ready-again-after", 1, 0, 'r'},
                                         {"bimg", 1, 0, 'B'},
                                         {"boot", 1, 0, 'o'},
                                         {"leave-on-assign", 1, 0, 'L'},
                                         {"restart-after", 1, 0, 'R'},
                                         {"fail-attempt", 1, 0, 'F'},
                                         {"fail-sends", 1, 0, 'S'},
                                         {"fail-lose", 1, 0, 'l'},
                                         {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'b':
            s_ep = optarg;
            break;
        case 'n':
            s_name = optarg;
            break;
        case 'c':
            s_cap = atoi(optarg);
            break;
        case 'd':
            s_delay = atoi(optarg);
            break;
        case 'H':
            s_hang_after = atoi(optarg);
            break;
        case 'h':
            s_hang_ms = atoi(optarg);
            break;
        case 'm':
            s_model = optarg;
            break;
        case 'B':
            s_bimg = atoi(optarg);
            break;
        case 'r':
            s_ready_again = atoi(optarg);
            break;
        case 'o':
            s_boot = strtoull(optarg, NULL, 10);
            break;
        case 'L':
            s_leave_on_assign = atoi(optarg);
            break;
        case 'R':
            s_restart_after = atoi(optarg);
            break;
        case 'F':
            s_fail_attempt = atoi(optarg);
            break;
        case 'S':
            s_fail_sends = atoi(optarg);
            break;
        case 'l':
            s_fail_lose = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (!s_ep || s_cap < 1 || s_cap > MAX_SHARDS || s_bimg < 0 ||
        s_bimg > DQ_PROTO_MAX_BATCH_IMAGES ||
        (!s_boot && (s_leave_on_assign >= 0 || s_restart_after >= 0)) || s_fail_sends < 1 ||
        s_fail_lose < 0 || s_fail_lose >= s_fail_sends) {
        fprintf(stderr, "usage: fake_node --broker EP [--name N] [--cap 1..8] [--bimg 0..1024] "
                        "[--boot B [--leave-on-assign K] [--restart-after K]] "
                        "[--fail-attempt A [--fail-sends N >= 1] [--fail-lose 0..N-1]] ...\n");
        return 2;
    }
    zsys_handler_set(NULL);
    signal(SIGTERM, s_on_term);
    signal(SIGINT, s_on_term);
    s_connect();
    int64_t next_render = 0, next_progress = 0;
    while (!s_stop) {
        if (s_hang_after >= 0 && s_sent_total >= s_hang_after) {
            fprintf(stderr, "fake_node %s: hanging after %d results\n", s_name, s_sent_total);
            s_hang_after = -1;
            for (int64_t end = zclock_mono() + s_hang_ms;
                 !s_stop && (s_hang_ms == 0 || zclock_mono() < end);)
                zclock_sleep(50);
            fprintf(stderr, "fake_node %s: awake\n", s_name);
        }
        if (s_restart_after >= 0 && s_sent_total >= s_restart_after) {
            fprintf(stderr, "fake_node %s: restarting after %d results\n", s_name, s_sent_total);
            s_restart_after = -1;
            while (s_n_shards)
                s_drop_shard(0);
            s_boot++;
            s_connect();
        }
        if (s_ready_again >= 0 && s_sent_total >= s_ready_again) {
            fprintf(stderr, "fake_node %s: READY again after %d results\n", s_name, s_sent_total);
            s_ready_again = -1;
            s_send_ready();
        }
        zmq_pollitem_t item = {zsock_resolve(s_sock), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 20);
        zmsg_t *zm;
        while ((zm = zmsg_recv_nowait(s_sock))) {
            dq_msg_t m;
            char err[256];
            s_last_recv = zclock_mono();
            if (dq_proto_decode(zm, &m, err, sizeof err) == 0) {
                s_on_message(&m);
                dq_msg_clear(&m);
            }
            zmsg_destroy(&zm);
        }
        int64_t now = zclock_mono();
        if (now - s_last_recv > DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS) {
            fprintf(stderr, "fake_node %s: broker silent, reconnecting\n", s_name);
            s_connect();
            continue;
        }
        for (int i = 0; i < s_n_shards; i++) {
            shard_t *s = &s_shards[i];
            if (!s->all_sent && s_n_unacked < WINDOW && now >= next_render &&
                !(s_hang_after >= 0 && s_sent_total >= s_hang_after)) {
                s_render(s);
                next_render = now + s_delay;
            }
            if (s->all_sent && s_unacked_of(s->shard) == 0) {
                dq_msg_t d = {.cmd = DQ_CMD_SHARD_DONE};
                d.shard_done = (dq_msg_shard_done_t){s->job, s->shard, s->att, s->chunk};
                s_send(&d);
                fprintf(stderr, "fake_node %s: shard done shard=%llu\n", s_name,
                        (unsigned long long) s->shard);
                s_drop_shard(i--);
                s_credit(1);
            }
        }
        if (now >= next_progress) {
            for (int i = 0; i < s_n_shards; i++) {
                dq_msg_t p = {.cmd = DQ_CMD_PROGRESS};
                p.progress =
                    (dq_msg_progress_t){s_shards[i].job, s_shards[i].shard, s_shards[i].att,
                                        s_shards[i].chunk, s_shards[i].chunk + 1};
                s_send(&p);
            }
            next_progress = now + 1000;
        }
        /* Like diffq-node: after an interval of silence, and every two while busy. */
        if (zclock_mono() - s_last_send >= DQ_PROTO_HEARTBEAT_INTERVAL_MS ||
            zclock_mono() - s_last_heartbeat >= 2 * DQ_PROTO_HEARTBEAT_INTERVAL_MS) {
            s_fail_copies(); /* repeats go just before a HEARTBEAT, as diffq-node's */
            dq_msg_t hb = {.cmd = DQ_CMD_HEARTBEAT};
            uint64_t held[MAX_SHARDS];
            if (s_boot) { /* a node of minor 6 lists what it holds */
                for (int i = 0; i < s_n_shards; i++)
                    held[i] = s_shards[i].shard;
                hb.heartbeat.minor = DQ_PROTO_MINOR;
                hb.heartbeat.held = held;
                hb.heartbeat.n_held = (uint32_t) s_n_shards;
            }
            s_send(&hb);
            s_last_heartbeat = s_last_send;
        }
    }
    for (int k = 0; k < s_n_unacked; k++)
        dq_msg_clear(&s_unacked[k].msg);
    zsock_destroy(&s_sock);
    return 0;
}
