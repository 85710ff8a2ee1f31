/* tests/integration/lossy_proxy.c: a ZeroMQ proxy for fault tests that sits between nodes and a
 * diffq-broker and mistreats the traffic: with seeded randomness it drops, delays (holding a
 * message back reorders it behind later ones), duplicates, and truncates (drops one frame of)
 * messages in both directions. Nodes connect their DEALER to the proxy's ROUTER; each node
 * identity gets its own DEALER to the broker, so the broker still sees one peer per node
 * connection. Usage:
 *   lossy_proxy --front EP --back EP [--seed N] [--drop P] [--dup P] [--delay P]
 *               [--max-delay-ms MS] [--cut P] [--every N]
 * P are probabilities 0..1 applied to each message. --every N makes sure each direction sees each
 * of drop, dup and delay (those given) at least once in N messages: a test can then rely on
 * every kind of loss having happened, whatever the timing. With --front tcp://127.0.0.1:* it
 * binds a free port. It prints "listening EP" on stdout once bound, and on SIGTERM/SIGINT a summary of
 * what it did per direction and command on stderr ("dropped to_broker CREDIT=2 ..."). */
#include <czmq.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

#define MAX_PEERS    256
#define MAX_HELD     4096
#define PEER_IDLE_MS 60000 /* a peer's DEALER is closed after this long without traffic */

enum { TO_BROKER = 0, TO_NODE = 1 };
enum { ACT_FORWARDED, ACT_DROPPED, ACT_DUPLICATED, ACT_DELAYED, ACT_CUT, ACT_COUNT };
static const char *s_act_names[ACT_COUNT] = {"forwarded", "dropped", "duplicated", "delayed",
                                             "cut"};
static const char *s_dir_names[2] = {"to_broker", "to_node"};

typedef struct {
    zframe_t *id;   /* owned; the node's routing id on the front ROUTER */
    zsock_t *back;  /* owned; DEALER to the broker for this node */
    int64_t last_ms;
} peer_t;

typedef struct {
    int64_t due_ms;
    int dir;
    zframe_t *id; /* owned; which peer */
    zmsg_t *msg;  /* owned */
} held_t;

static volatile sig_atomic_t s_stop = 0;
static void s_on_term(int sig) {
    (void) sig;
    s_stop = 1;
}

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;
/* xorshift64*: reproducible decisions for a given --seed (timing still varies). */
static double s_rand(void) {
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (double) ((s_rng * 2685821657736338717ULL) >> 11) / (double) (1ULL << 53);
}

static double s_drop, s_dup, s_delay, s_cut;
static unsigned s_every;               /* 0: chance alone */
static unsigned s_since[2][ACT_COUNT]; /* messages since each action last happened, per direction */
static int s_max_delay_ms = 200;
static const char *s_back_ep;
static zsock_t *s_front;
static peer_t s_peers[MAX_PEERS];
static int s_n_peers;
static held_t s_held[MAX_HELD];
static int s_n_held;
static unsigned s_counts[2][ACT_COUNT][DQ_CMD_COUNT + 1];

/* The command byte of a DQP message (frame 1), or DQ_CMD_COUNT when it has none. */
static int s_command(zmsg_t *msg) {
    zframe_t *f = zmsg_first(msg);
    f = f ? zmsg_next(msg) : NULL;
    if (!f || zframe_size(f) != 1 || zframe_data(f)[0] >= DQ_CMD_COUNT) return DQ_CMD_COUNT;
    return zframe_data(f)[0];
}

static peer_t *s_peer_for(zframe_t *id) {
    for (int i = 0; i < s_n_peers; i++)
        if (zframe_eq(s_peers[i].id, id)) return &s_peers[i];
    if (s_n_peers == MAX_PEERS) return NULL;
    zsock_t *back = zsock_new(ZMQ_DEALER);
    if (!back) return NULL;
    zsock_set_linger(back, 0);
    zsock_set_sndtimeo(back, 0);
    zsock_set_sndhwm(back, 100000);
    zsock_set_maxmsgsize(back, -1);
    if (zsock_connect(back, "%s", s_back_ep) != 0) {
        zsock_destroy(&back);
        return NULL;
    }
    peer_t *p = &s_peers[s_n_peers++];
    p->id = zframe_dup(id);
    p->back = back;
    p->last_ms = zclock_mono();
    return p;
}

/* Sends now: towards the broker through the peer's DEALER, towards the node through the front
 * ROUTER behind its id. A peer that is gone just loses the message. */
static void s_send(int dir, zframe_t *id, zmsg_t **msg_p) {
    if (dir == TO_BROKER) {
        peer_t *p = s_peer_for(id);
        if (p && zmsg_send(msg_p, p->back) == 0) return;
    } else {
        zframe_t *copy = zframe_dup(id);
        zmsg_prepend(*msg_p, &copy);
        if (zmsg_send(msg_p, s_front) == 0) return;
    }
    zmsg_destroy(msg_p);
}

static void s_hold(int dir, zframe_t *id, zmsg_t **msg_p, int64_t now) {
    if (s_n_held == MAX_HELD) {
        s_send(dir, id, msg_p);
        return;
    }
    held_t *h = &s_held[s_n_held++];
    h->due_ms = now + 1 + (int64_t) (s_rand() * s_max_delay_ms);
    h->dir = dir;
    h->id = zframe_dup(id);
    h->msg = *msg_p;
    *msg_p = NULL;
}

/* Whether action act (probability p) happens to this message going dir. */
static bool s_happens(int dir, int act, double p) {
    bool yes = s_rand() < p || (p > 0 && s_every && s_since[dir][act] + 1 >= s_every);
    s_since[dir][act] = yes ? 0 : s_since[dir][act] + 1;
    return yes;
}

/* One message in flight: decides its fate. Takes ownership of *msg_p. */
static void s_forward(int dir, zframe_t *id, zmsg_t **msg_p) {
    int cmd = s_command(*msg_p);
    int64_t now = zclock_mono();
    if (s_happens(dir, ACT_DROPPED, s_drop)) {
        s_counts[dir][ACT_DROPPED][cmd]++;
        zmsg_destroy(msg_p);
        return;
    }
    if (zmsg_size(*msg_p) > 1 && s_rand() < s_cut) {
        /* One frame lost: the receiver must reject the message as malformed. */
        zframe_t *last = zmsg_last(*msg_p);
        zmsg_remove(*msg_p, last);
        zframe_destroy(&last);
        s_counts[dir][ACT_CUT][cmd]++;
    }
    if (s_happens(dir, ACT_DUPLICATED, s_dup)) {
        zmsg_t *copy = zmsg_dup(*msg_p);
        s_counts[dir][ACT_DUPLICATED][cmd]++;
        if (copy) s_hold(dir, id, &copy, now); /* the copy comes a little later */
    }
    if (s_happens(dir, ACT_DELAYED, s_delay)) {
        s_counts[dir][ACT_DELAYED][cmd]++;
        s_hold(dir, id, msg_p, now);
    } else {
        s_counts[dir][ACT_FORWARDED][cmd]++;
        s_send(dir, id, msg_p);
    }
}

/* Sends the held messages that are due; returns ms until the next one (or 100). */
static int s_release(void) {
    int64_t now = zclock_mono(), next = 100;
    for (int i = 0; i < s_n_held;) {
        held_t *h = &s_held[i];
        if (h->due_ms <= now) {
            s_send(h->dir, h->id, &h->msg);
            zframe_destroy(&h->id);
            *h = s_held[--s_n_held];
            continue;
        }
        if (h->due_ms - now < next) next = h->due_ms - now;
        i++;
    }
    return (int) next;
}

static void s_expire_peers(void) {
    int64_t now = zclock_mono();
    for (int i = 0; i < s_n_peers;) {
        if (now - s_peers[i].last_ms > PEER_IDLE_MS) {
            zframe_destroy(&s_peers[i].id);
            zsock_destroy(&s_peers[i].back);
            s_peers[i] = s_peers[--s_n_peers];
            continue;
        }
        i++;
    }
}

static void s_summary(void) {
    for (int d = 0; d < 2; d++)
        for (int a = 0; a < ACT_COUNT; a++) {
            fprintf(stderr, "%s %s", s_act_names[a], s_dir_names[d]);
            unsigned total = 0;
            for (int c = 0; c <= DQ_CMD_COUNT; c++) {
                total += s_counts[d][a][c];
                if (s_counts[d][a][c])
                    fprintf(stderr, " %s=%u",
                            c == DQ_CMD_COUNT ? "other" : dq_proto_command_name(c),
                            s_counts[d][a][c]);
            }
            fprintf(stderr, " total=%u\n", total);
        }
}

static int s_usage(void) {
    fprintf(stderr, "usage: lossy_proxy --front EP --back EP [--seed N] [--drop P] [--dup P]"
                    " [--delay P] [--max-delay-ms MS] [--cut P] [--every N]\n");
    return 2;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"front", required_argument, NULL, 'f'}, {"back", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 's'},  {"drop", required_argument, NULL, 'd'},
        {"dup", required_argument, NULL, 'u'},   {"delay", required_argument, NULL, 'l'},
        {"max-delay-ms", required_argument, NULL, 'm'}, {"cut", required_argument, NULL, 'c'},
        {"every", required_argument, NULL, 'e'},        {NULL, 0, NULL, 0}};
    const char *front = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': front = optarg; break;
        case 'b': s_back_ep = optarg; break;
        case 's': s_rng ^= strtoull(optarg, NULL, 10) * 0x2545f4914f6cdd1dULL; break;
        case 'd': s_drop = atof(optarg); break;
        case 'u': s_dup = atof(optarg); break;
        case 'l': s_delay = atof(optarg); break;
        case 'm': s_max_delay_ms = atoi(optarg); break;
        case 'c': s_cut = atof(optarg); break;
        case 'e': s_every = (unsigned) strtoul(optarg, NULL, 10); break;
        default: return s_usage();
        }
    }
    if (!front || !s_back_ep || s_max_delay_ms < 1) return s_usage();
    if (s_rng == 0) s_rng = 1;
    zsys_handler_set(NULL);
    signal(SIGTERM, s_on_term);
    signal(SIGINT, s_on_term);
    s_front = zsock_new(ZMQ_ROUTER);
    if (!s_front) return 1;
    zsock_set_linger(s_front, 0);
    zsock_set_sndtimeo(s_front, 0);
    zsock_set_sndhwm(s_front, 100000);
    zsock_set_maxmsgsize(s_front, -1);
    if (zsock_bind(s_front, "%s", front) < 0) {
        fprintf(stderr, "lossy_proxy: cannot bind %s: %s\n", front, zmq_strerror(zmq_errno()));
        zsock_destroy(&s_front);
        return 1;
    }
    char *ep = zsock_last_endpoint(s_front);
    printf("listening %s\n", ep ? ep : front);
    fflush(stdout);
    zstr_free(&ep);
    zmq_pollitem_t items[1 + MAX_PEERS];
    int64_t expire_at = zclock_mono() + 1000;
    while (!s_stop) {
        int timeout = s_release();
        items[0] = (zmq_pollitem_t){zsock_resolve(s_front), 0, ZMQ_POLLIN, 0};
        int n_peers = s_n_peers; /* peers created while we read are polled next round */
        for (int i = 0; i < n_peers; i++)
            items[1 + i] = (zmq_pollitem_t){zsock_resolve(s_peers[i].back), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(items, 1 + n_peers, timeout) < 0) {
            if (zmq_errno() == EINTR) continue;
            fprintf(stderr, "lossy_proxy: poll: %s\n", zmq_strerror(zmq_errno()));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            zmsg_t *msg;
            for (int k = 0; k < 256 && (msg = zmsg_recv_nowait(s_front)); k++) {
                zframe_t *id = zmsg_pop(msg);
                peer_t *p = id ? s_peer_for(id) : NULL;
                if (p) {
                    p->last_ms = zclock_mono();
                    s_forward(TO_BROKER, id, &msg);
                }
                zmsg_destroy(&msg);
                zframe_destroy(&id);
            }
        }
        for (int i = 0; i < n_peers; i++) {
            if (!(items[1 + i].revents & ZMQ_POLLIN)) continue;
            zmsg_t *msg;
            for (int k = 0; k < 256 && (msg = zmsg_recv_nowait(s_peers[i].back)); k++) {
                s_peers[i].last_ms = zclock_mono();
                s_forward(TO_NODE, s_peers[i].id, &msg);
            }
        }
        if (zclock_mono() >= expire_at) {
            s_expire_peers();
            expire_at = zclock_mono() + 1000;
        }
    }
    s_summary();
    for (int i = 0; i < s_n_held; i++) {
        zframe_destroy(&s_held[i].id);
        zmsg_destroy(&s_held[i].msg);
    }
    for (int i = 0; i < s_n_peers; i++) {
        zframe_destroy(&s_peers[i].id);
        zsock_destroy(&s_peers[i].back);
    }
    zsock_destroy(&s_front);
    return 0;
}
