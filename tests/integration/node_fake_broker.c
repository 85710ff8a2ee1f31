/* tests/integration/node_fake_broker.c: a scripted broker for diffq-node's integration tests. It
 * binds a ROUTER on a free loopback port, starts diffq-node against it, plays one scenario and
 * prints TAP. Usage: node_fake_broker SCENARIO PATH/TO/diffq-node. Every wait polls for a
 * condition until a generous deadline; nothing depends on sleeping the right amount. */
#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proto.h"
#include "node/backend.h"
#include "node/node.h"
#include "node/setup.h"

#define WAIT_MS 20000 /* generous: sanitizers and a loaded machine are slow */

typedef struct {
    zsock_t *router;
    int port;
    zframe_t *peer; /* identity of the node's current connection */
    pid_t node;
    int node_status; /* wait status once collected */
    bool node_exited;
    int64_t beat_at;                 /* last HEARTBEAT we sent */
    bool beating;                    /* send heartbeats while waiting */
    bool strict;                     /* answer messages from a peer that has not sent READY with
                                        DISCONNECT, as a restarted broker does */
    bool silent;                     /* ignore everything but READY (a hung broker) */
    unsigned inflight, max_inflight; /* RESULTs not acknowledged */
    unsigned heartbeats, progress, last_step, last_steps;
    bool sync;                       /* a broker of this minor: HEARTBEATs carry the counts */
    uint64_t crd, asg;               /* credit the node's CREDITs asked for; ASSIGNs numbered */
    uint64_t assign_seq;             /* ASSIGN.seq of the next s_assign (0: none, an older
                                        broker's) */
    const char *model;      /* --model given to the node */
    const char *model_name; /* the name it announces */
    uint64_t boot;          /* READY.boot of the handshake */
    int tap, failed;
} fb_t;

static void s_ok(fb_t *fb, bool cond, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", cond ? "ok" : "not ok", ++fb->tap);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (!cond) fb->failed++;
}

/* Binds the ROUTER to `port`, or to a random free port when 0. Random, not the next free one:
 * the reconnect scenario frees its port for a moment, and a concurrently starting test must not
 * take it. */
/* Binds the ROUTER to `port`, or to a free port below the kernel's ephemeral range (32768 and
 * up on Linux) when port is 0: a node reconnecting to a closed ephemeral port can be given that
 * very port as its own source port and connect to itself, which would keep the broker from
 * binding it again. */
static int s_bind(fb_t *fb, int port) {
    fb->router = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(fb->router, 0);
    zsock_set_router_mandatory(fb->router, 1);
    if (port) {
        if (zsock_bind(fb->router, "tcp://127.0.0.1:%d", port) < 0) return -1;
        fb->port = port;
        return 0;
    }
    for (int tries = 0; tries < 200; tries++) {
        int candidate = 20000 + (int) (zclock_usecs() % 12000);
        if (zsock_bind(fb->router, "tcp://127.0.0.1:%d", candidate) >= 0) {
            fb->port = candidate;
            return 0;
        }
    }
    return -1;
}

static void s_unbind(fb_t *fb) {
    zsock_destroy(&fb->router);
    zframe_destroy(&fb->peer);
}

static void s_send(fb_t *fb, dq_msg_t *msg) {
    zmsg_t *z = NULL;
    char err[256];
    if (!fb->peer || dq_proto_encode(msg, &z, err, sizeof err) != 0) return;
    zmsg_pushmem(z, zframe_data(fb->peer), zframe_size(fb->peer));
    if (zmsg_send(&z, fb->router) != 0) zmsg_destroy(&z);
}

static void s_ack(fb_t *fb, const dq_msg_result_t *r, bool stored) {
    dq_msg_t m = {.cmd = DQ_CMD_RESULT_ACK};
    m.result_ack = (dq_msg_result_ack_t){r->job, r->shard, r->attempt, r->chunk, stored};
    s_send(fb, &m);
    fb->inflight--;
}

static void s_check_node(fb_t *fb) {
    if (fb->node_exited) return;
    if (waitpid(fb->node, &fb->node_status, WNOHANG) == fb->node) fb->node_exited = true;
}

/* Receives the next message from the node until `until` (ms); heartbeats and progress are
 * counted and, unless keep_all, skipped. Returns 0 with *out filled, -1 at the deadline. */
static int s_recv(fb_t *fb, dq_msg_t *out, int64_t until, bool keep_all) {
    while (zclock_mono() < until) {
        if (fb->beating && fb->peer && zclock_mono() - fb->beat_at >= 500) {
            dq_msg_t hb = {.cmd = DQ_CMD_HEARTBEAT};
            if (fb->sync)
                hb.heartbeat = (dq_msg_heartbeat_t){
                    .minor = DQ_PROTO_MINOR, .credit_total = fb->crd, .assigned_total = fb->asg};
            s_send(fb, &hb);
            fb->beat_at = zclock_mono();
        }
        zpoller_t *p = zpoller_new(fb->router, NULL);
        void *which = zpoller_wait(p, 100);
        zpoller_destroy(&p);
        s_check_node(fb);
        if (!which) continue;
        zmsg_t *z = zmsg_recv(fb->router);
        if (!z) continue;
        zframe_t *id = zmsg_pop(z);
        char err[512];
        int rc = dq_proto_decode(z, out, err, sizeof err);
        zmsg_destroy(&z);
        if (rc != 0) {
            printf("# undecodable message from the node: %s\n", err);
            zframe_destroy(&id);
            fb->failed++;
            continue;
        }
        if (fb->strict && out->cmd != DQ_CMD_READY && (!fb->peer || !zframe_eq(fb->peer, id))) {
            zframe_destroy(&fb->peer);
            fb->peer = id;
            dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT};
            snprintf(bye.disconnect.reason, sizeof bye.disconnect.reason, "unknown node");
            s_send(fb, &bye);
            zframe_destroy(&fb->peer);
            dq_msg_clear(out);
            continue;
        }
        if (fb->silent && out->cmd != DQ_CMD_READY) {
            zframe_destroy(&id);
            dq_msg_clear(out);
            continue;
        }
        if (out->cmd == DQ_CMD_READY || !fb->peer) {
            zframe_destroy(&fb->peer);
            fb->peer = id;
        } else {
            zframe_destroy(&id);
        }
        if (out->cmd == DQ_CMD_RESULT && ++fb->inflight > fb->max_inflight)
            fb->max_inflight = fb->inflight;
        if (out->cmd == DQ_CMD_HEARTBEAT) fb->heartbeats++;
        if (out->cmd == DQ_CMD_CREDIT) fb->crd += out->credit.credit;
        if (out->cmd == DQ_CMD_PROGRESS) {
            fb->progress++;
            fb->last_step = out->progress.step;
            fb->last_steps = out->progress.steps;
        }
        if (keep_all || (out->cmd != DQ_CMD_HEARTBEAT && out->cmd != DQ_CMD_PROGRESS)) return 0;
        dq_msg_clear(out);
    }
    return -1;
}

/* Waits for a message of command cmd (others are skipped and counted in *skipped[cmd] when
 * given). Returns 0 with *out filled, or -1. */
static int s_expect(fb_t *fb, dq_cmd_t cmd, dq_msg_t *out, int ms, unsigned *skipped) {
    int64_t until = zclock_mono() + ms;
    while (s_recv(fb, out, until, cmd == DQ_CMD_HEARTBEAT || cmd == DQ_CMD_PROGRESS) == 0) {
        if (out->cmd == cmd) return 0;
        if (skipped) skipped[out->cmd]++;
        printf("# (skipped %s while waiting for %s)\n", dq_proto_command_name(out->cmd),
               dq_proto_command_name(cmd));
        dq_msg_clear(out);
    }
    memset(out, 0, sizeof *out);
    return -1;
}

/* Waits for a SHARD_FAILED of `shard`, skipping everything else, the repeats of other shards'
 * failures too (node/flow.h: each goes out 3 times). Returns 0 with *out filled, or -1. */
static int s_expect_failed(fb_t *fb, uint64_t shard, dq_msg_t *out, int ms) {
    int64_t until = zclock_mono() + ms;
    while (s_expect(fb, DQ_CMD_SHARD_FAILED, out, (int) (until - zclock_mono()), NULL) == 0) {
        if (out->shard_failed.shard == shard) return 0;
        dq_msg_clear(out);
    }
    return -1;
}

/* The same failure report: job, shard, attempt, class and message. */
static bool s_same_failure(const dq_msg_shard_failed_t *a, const dq_msg_shard_failed_t *b) {
    return a->job == b->job && a->shard == b->shard && a->attempt == b->attempt &&
           a->fail_class == b->fail_class && strcmp(a->message, b->message) == 0;
}

static void s_start_node(fb_t *fb, const char *exe, const char *const *extra) {
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", fb->port);
    /* Later flags win, so a scenario's own --backend replaces "null". */
    const char *argv[32] = {exe,       "--broker", ep,          "--backend",   "null", "--model",
                            fb->model, "--name",   "test-node", "--log-level", "debug"};
    int n = 11;
    bool ranks_given = false;
    for (int i = 0; extra && extra[i]; i++)
        ranks_given |= !strcmp(extra[i], "--cpu-ranks");
    if (!ranks_given) { /* the same on a GPU machine, where the default is every GPU */
        argv[n++] = "--cpu-ranks";
        argv[n++] = "1";
    }
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fb->node = fork();
    if (fb->node == 0) {
        execv(exe, (char **) argv);
        _exit(127);
    }
}

/* Waits for the node to exit; returns its exit status, or -1 if it did not exit in time. */
static int s_wait_exit(fb_t *fb, int ms) {
    int64_t until = zclock_mono() + ms;
    while (!fb->node_exited && zclock_mono() < until) {
        s_check_node(fb);
        if (!fb->node_exited) zclock_sleep(20);
    }
    if (!fb->node_exited) return -1;
    return WIFEXITED(fb->node_status) ? WEXITSTATUS(fb->node_status)
                                      : 128 + WTERMSIG(fb->node_status);
}

static void s_request(dq_wire_request_t *r, uint64_t line, uint64_t seed, uint32_t img0, uint32_t imgn,
                      uint32_t n, uint32_t w, uint32_t h, uint32_t steps) {
    *r = (dq_wire_request_t){.line = line,
                        .image_first = img0,
                        .image_count = imgn,
                        .prompt = "a red fox",
                        .negative_prompt = "",
                        .seed = seed,
                        .steps = steps,
                        .guidance = 7.5,
                        .width = w,
                        .height = h,
                        .num_images = n};
    snprintf(r->scheduler, sizeof r->scheduler, "euler");
}

static void s_assign(fb_t *fb, uint64_t shard, dq_wire_request_t *reqs, uint32_t n, const char *model) {
    dq_msg_t m = {.cmd = DQ_CMD_ASSIGN};
    m.assign = (dq_msg_assign_t){.job = 7,
                                 .shard = shard,
                                 .attempt = 1,
                                 .lease_ms = 120000,
                                 .requests = reqs,
                                 .n_requests = n,
                                 .seq = fb->assign_seq};
    snprintf(m.assign.model, sizeof m.assign.model, "%s", model);
    s_send(fb, &m);
}

/* ---- PNG checks (libpng) ----------------------------------------------------------------------
 */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
} png_src_t;

static void s_png_read(png_structp png, png_bytep out, size_t len) {
    png_src_t *src = png_get_io_ptr(png);
    if (len > src->size - src->pos) png_error(png, "truncated");
    memcpy(out, src->data + src->pos, len);
    src->pos += len;
}

/* Decodes the PNG and checks size, every pixel against dq_null_pixel, and the parameters text.
 * Returns a description of the first problem, or NULL. */
static const char *s_check_png(const dq_msg_result_t *r, uint32_t w, uint32_t h) {
    static char why[256];
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_src_t src = {r->png, r->png_size, 0};
    uint8_t *rows = NULL;
    const char *res = NULL;
    if (setjmp(png_jmpbuf(png))) {
        res = "libpng could not decode it";
        goto done;
    }
    png_set_read_fn(png, &src, s_png_read);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != w || png_get_image_height(png, info) != h ||
        png_get_color_type(png, info) != PNG_COLOR_TYPE_RGB || png_get_bit_depth(png, info) != 8) {
        snprintf(why, sizeof why, "got %ux%u type %d, expected %ux%u RGB8",
                 png_get_image_width(png, info), png_get_image_height(png, info),
                 png_get_color_type(png, info), w, h);
        res = why;
        goto done;
    }
    rows = malloc((size_t) w * h * 3);
    for (uint32_t y = 0; y < h; y++)
        png_read_row(png, rows + (size_t) y * w * 3, NULL);
    png_read_end(png, info);
    for (uint32_t y = 0; y < h && !res; y++)
        for (uint32_t x = 0; x < w && !res; x++) {
            uint8_t want[3];
            dq_null_pixel(r->seed, r->image_index, x, y, want);
            if (memcmp(want, rows + ((size_t) y * w + x) * 3, 3) != 0) {
                snprintf(why, sizeof why, "pixel (%u,%u) differs from the null backend's", x, y);
                res = why;
            }
        }
    png_textp text;
    int n_text = 0;
    png_get_text(png, info, &text, &n_text);
    char seed[64];
    snprintf(seed, sizeof seed, "Seed: %llu", (unsigned long long) r->seed);
    bool found = false;
    for (int i = 0; i < n_text; i++)
        if (strcmp(text[i].key, "parameters") == 0 && strstr(text[i].text, seed) &&
            strstr(text[i].text, "a red fox") && strstr(text[i].text, "Model: tiny"))
            found = true;
    if (!res && !found) res = "no parameters chunk with the prompt, seed and model";
done:
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return res;
}

/* ---- Scenarios --------------------------------------------------------------------------------
 */

/* Handshake: READY with our name and capacity, then CREDIT for every slot as ranks come up. */
static void s_handshake_ranks(fb_t *fb, unsigned ranks, unsigned cap) {
    dq_msg_t m;
    s_ok(fb, s_expect(fb, DQ_CMD_READY, &m, WAIT_MS, NULL) == 0, "node announces READY");
    s_ok(fb,
         !strcmp(m.ready.name, "test-node") && m.ready.capacity == cap && m.ready.ranks == ranks &&
             m.ready.n_models == 1 && !strcmp(m.ready.models[0], fb->model_name) &&
             m.ready.proto_minor == DQ_PROTO_MINOR && m.ready.n_devices == 1 &&
             !strcmp(m.ready.devices[0].name, "cpu") &&
             m.ready.max_batch == DQ_SETUP_MAX_BATCH_CPU && m.ready.boot != 0,
         "READY names the node, %u rank(s) on the cpu, capacity %u, model %s, its batch of %d"
         " images and a boot number",
         ranks, cap, fb->model_name, DQ_SETUP_MAX_BATCH_CPU);
    fb->boot = m.ready.boot;
    dq_msg_clear(&m);
    unsigned credit = 0;
    while (credit < cap && s_expect(fb, DQ_CMD_CREDIT, &m, WAIT_MS, NULL) == 0) {
        credit += m.credit.credit;
        dq_msg_clear(&m);
    }
    s_ok(fb, credit == cap, "node asks for %u shard(s) of credit", cap);
}

static void s_handshake(fb_t *fb, unsigned cap) {
    s_handshake_ranks(fb, 1, cap);
}

static void s_basic(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t reqs[2];
    s_request(&reqs[0], 1, 42, 0, 3, 3, 32, 48, 2);
    s_request(&reqs[1], 2, 99, 1, 2, 4, 512, 512, 3);
    s_assign(fb, 3, reqs, 2, "tiny");
    dq_msg_t res[5];
    memset(res, 0, sizeof res);
    unsigned skipped[DQ_CMD_COUNT] = {0};
    int got = 0;
    while (got < 5 && s_expect(fb, DQ_CMD_RESULT, &res[got], WAIT_MS, skipped) == 0)
        got++;
    s_ok(fb, got == 5 && fb->max_inflight == 5,
         "five small RESULTs arrive without acknowledgement (beyond %d the window counts bytes)",
         DQ_PROTO_RESULT_WINDOW);
    bool order = true;
    for (int i = 0; i < got; i++)
        order &= res[i].result.chunk == (uint32_t) i;
    s_ok(fb, order, "chunks are numbered 0..4 in order");
    uint32_t want_line[5] = {1, 1, 1, 2, 2}, want_img[5] = {0, 1, 2, 1, 2};
    uint64_t want_seed[5] = {42, 42, 42, 99, 99};
    const char *bad = NULL;
    for (int i = 0; i < got && !bad; i++) {
        const dq_msg_result_t *r = &res[i].result;
        if (r->job != 7 || r->shard != 3 || r->attempt != 1 || r->line != want_line[i] ||
            r->image_index != want_img[i] || r->seed != want_seed[i])
            bad = "wrong ids";
        else
            bad = s_check_png(r, i < 3 ? 32 : 64, i < 3 ? 48 : 64);
    }
    s_ok(fb, got == 5 && !bad, "every PNG decodes to the null backend's pixels and parameters%s%s",
         bad ? ": " : "", bad ? bad : "");
    /* Steps of the null backend take microseconds: the node coalesces them
     * (DQ_PROTO_PROGRESS_MIN_MS), yet the last one always reaches the broker. */
    s_ok(fb, fb->progress > 0 && fb->progress < 5 && fb->last_step == 5 && fb->last_steps == 5,
         "PROGRESS reached step 5 of 5 in fewer messages than steps (%u)", fb->progress);
    for (int i = 0; i < got; i++)
        s_ack(fb, &res[i].result, true);
    dq_msg_t m;
    s_ok(fb,
         s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, skipped) == 0 && m.shard_done.images == 5 &&
             m.shard_done.shard == 3,
         "SHARD_DONE with 5 images once all are acknowledged");
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_CREDIT, &m, WAIT_MS, skipped) == 0 && m.credit.credit == 1,
         "the freed slot is asked for again");
    dq_msg_clear(&m);
    for (int i = 0; i < got; i++)
        dq_msg_clear(&res[i]);
    unsigned beats = fb->heartbeats;
    s_ok(fb, s_expect(fb, DQ_CMD_HEARTBEAT, &m, WAIT_MS, NULL) == 0 && fb->heartbeats > beats,
         "an idle node sends HEARTBEAT");
    kill(fb->node, SIGTERM);
    s_ok(fb, s_expect(fb, DQ_CMD_DISCONNECT, &m, WAIT_MS, skipped) == 0,
         "SIGTERM: the node says DISCONNECT");
    dq_msg_clear(&m);
    s_ok(fb, s_wait_exit(fb, WAIT_MS) == 0, "and exits 0");
}

static void s_stop(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 64, 64, 1000); /* 1000 steps x 50 ms: 50 s if not stopped */
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_t m;
    int64_t until = zclock_mono() + WAIT_MS;
    while (fb->progress == 0 && s_recv(fb, &m, until, true) == 0)
        dq_msg_clear(&m);
    s_ok(fb, fb->progress > 0, "PROGRESS while the shard renders");
    /* The only slot is busy for the next 50 s: an ASSIGN now is work the node did not ask for. */
    s_request(&req, 9, 9, 0, 1, 1, 16, 16, 1);
    s_assign(fb, 99, &req, 1, "tiny");
    s_ok(fb,
         s_expect(fb, DQ_CMD_SHARD_FAILED, &m, WAIT_MS, NULL) == 0 && m.shard_failed.shard == 99 &&
             m.shard_failed.fail_class == DQ_FAIL_INTERNAL &&
             strstr(m.shard_failed.message, "credit"),
         "an ASSIGN beyond the credit asked for is refused");
    dq_msg_shard_failed_t refused = m.shard_failed;
    dq_msg_clear(&m);
    unsigned repeats = 0;
    bool same = true;
    while (repeats < 2 && s_expect_failed(fb, 99, &m, WAIT_MS) == 0) {
        same &= s_same_failure(&refused, &m.shard_failed);
        repeats++;
        dq_msg_clear(&m);
    }
    s_ok(fb, repeats == 2 && same, "the refusal is repeated twice, word for word");
    int64_t sent = zclock_mono();
    dq_msg_t stop = {.cmd = DQ_CMD_STOP};
    stop.stop = (dq_msg_stop_t){7, 1, 1, DQ_STOP_CANCELLED};
    s_send(fb, &stop);
    unsigned skipped[DQ_CMD_COUNT] = {0};
    s_ok(fb, s_expect(fb, DQ_CMD_CREDIT, &m, WAIT_MS, skipped) == 0,
         "after STOP the node frees the slot (CREDIT)");
    dq_msg_clear(&m);
    s_ok(fb, zclock_mono() - sent < 10000 && fb->last_step < 1000,
         "the rank stopped promptly (step %u of 1000)", fb->last_step);
    s_ok(fb,
         !skipped[DQ_CMD_SHARD_DONE] && !skipped[DQ_CMD_SHARD_FAILED] && !skipped[DQ_CMD_RESULT],
         "a stopped shard sends no result, SHARD_DONE or SHARD_FAILED");
    s_request(&req, 2, 6, 0, 1, 1, 16, 16, 1);
    s_assign(fb, 2, &req, 1, "tiny");
    s_ok(fb, s_expect(fb, DQ_CMD_RESULT, &m, WAIT_MS, NULL) == 0 && m.result.shard == 2,
         "the same rank renders the next shard");
    s_ack(fb, &m.result, true);
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, NULL) == 0 && m.shard_done.shard == 2,
         "and finishes it");
    dq_msg_clear(&m);
}

/* The node's child processes (its ranks), from /proc. Returns how many, up to max. */
static int s_rank_pids(pid_t node, pid_t *pids, int max) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int) node, (int) node);
    FILE *f = fopen(path, "r");
    int n = 0, pid;
    while (f && n < max && fscanf(f, "%d", &pid) == 1)
        pids[n++] = (pid_t) pid;
    if (f) fclose(f);
    return n;
}

/* Two ranks holding two shards each: four shards held at once, two rendering at once. */
static void s_ranks(fb_t *fb) {
    s_handshake_ranks(fb, 2, 4);
    pid_t pids[4];
    s_ok(fb, s_rank_pids(fb->node, pids, 4) == 2, "two rank processes run");
    dq_wire_request_t req;
    for (uint64_t shard = 1; shard <= 4; shard++) {
        s_request(&req, shard, shard, 0, 1, 1, 16, 16, 40); /* 40 x 50 ms each */
        s_assign(fb, shard, &req, 1, "tiny");
    }
    unsigned done = 0, results = 0, progressed = 0, before_first_done = 0;
    int64_t until = zclock_mono() + WAIT_MS * 2;
    dq_msg_t m;
    while (done < 4 && s_recv(fb, &m, until, true) == 0) {
        if (m.cmd == DQ_CMD_PROGRESS && m.progress.shard <= 4) {
            progressed |= 1u << m.progress.shard;
            if (done == 0) before_first_done = progressed;
        } else if (m.cmd == DQ_CMD_RESULT) {
            s_ack(fb, &m.result, true);
            results++;
        } else if (m.cmd == DQ_CMD_SHARD_DONE) {
            done++;
        }
        dq_msg_clear(&m);
    }
    s_ok(fb, results == 4 && done == 4, "four shards done (%u results)", results);
    s_ok(fb, __builtin_popcount(before_first_done) >= 2,
         "two shards progressed before the first was done (mask %#x)", before_first_done);
}

static void s_fail(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 64, 64, 1);
    s_assign(fb, 1, &req, 1, "no-such-model");
    dq_msg_t m;
    s_ok(fb, s_expect_failed(fb, 1, &m, WAIT_MS) == 0 && m.shard_failed.fail_class == DQ_FAIL_MODEL,
         "a model the node does not serve fails with class model");
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_CREDIT, &m, WAIT_MS, NULL) == 0, "and the slot is asked again");
    dq_msg_clear(&m);
    s_assign(fb, 2, &req, 1, "tiny");
    s_ok(fb,
         s_expect_failed(fb, 2, &m, WAIT_MS) == 0 && m.shard_failed.fail_class == DQ_FAIL_OOM &&
             strstr(m.shard_failed.message, "oom"),
         "an out-of-memory render fails with class oom (%s)", m.shard_failed.message);
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_CREDIT, &m, WAIT_MS, NULL) == 0, "credit again");
    dq_msg_clear(&m);
}

/* The node's only child process (its rank), 0 when none. */
static pid_t s_rank_pid(pid_t node) {
    pid_t pid = 0;
    return s_rank_pids(node, &pid, 1) == 1 ? pid : 0;
}

static void s_crash(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 64, 64, 1000);
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_t m;
    int64_t until = zclock_mono() + WAIT_MS;
    while (fb->progress == 0 && s_recv(fb, &m, until, true) == 0)
        dq_msg_clear(&m);
    pid_t rank = s_rank_pid(fb->node);
    s_ok(fb, fb->progress > 0 && rank > 0, "the shard runs on rank pid %d", (int) rank);
    if (rank > 0) kill(rank, SIGKILL);
    s_ok(fb,
         s_expect(fb, DQ_CMD_SHARD_FAILED, &m, WAIT_MS, NULL) == 0 &&
             m.shard_failed.fail_class == DQ_FAIL_INTERNAL &&
             strstr(m.shard_failed.message, "crashed"),
         "SIGKILL of the rank: SHARD_FAILED class internal (%s)", m.shard_failed.message);
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_CREDIT, &m, WAIT_MS, NULL) == 0,
         "the restarted rank's slot is asked for");
    dq_msg_clear(&m);
    s_ok(fb, s_rank_pid(fb->node) > 0 && s_rank_pid(fb->node) != rank, "a new rank process runs");
    s_request(&req, 2, 6, 0, 1, 1, 16, 16, 1);
    s_assign(fb, 2, &req, 1, "tiny");
    s_ok(fb, s_expect(fb, DQ_CMD_RESULT, &m, WAIT_MS, NULL) == 0, "the new rank renders");
    s_ack(fb, &m.result, true);
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, NULL) == 0, "and finishes the shard");
    dq_msg_clear(&m);
    s_check_node(fb);
    s_ok(fb, !fb->node_exited, "the node lived on");
}

static void s_reconnect(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 11, 0, 2, 2, 16, 16, 1);
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_t a, b, m;
    s_ok(fb,
         s_expect(fb, DQ_CMD_RESULT, &a, WAIT_MS, NULL) == 0 &&
             s_expect(fb, DQ_CMD_RESULT, &b, WAIT_MS, NULL) == 0,
         "two RESULTs, left unacknowledged");
    dq_msg_clear(&a);
    dq_msg_clear(&b);
    int port = fb->port;
    s_unbind(fb); /* the broker restarts and does not know the node any more */
    fb->inflight = 0;
    zclock_sleep(500);
    s_ok(fb, s_bind(fb, port) == 0, "the broker is back on port %d", port);
    fb->strict = true;
    s_ok(fb,
         s_expect(fb, DQ_CMD_READY, &m, WAIT_MS, NULL) == 0 && m.ready.boot == fb->boot,
         "told DISCONNECT by the restarted broker, the node reconnects with a new READY, the same "
         "boot number (the same process)");
    dq_msg_clear(&m);
    unsigned chunks = 0;
    for (int i = 0; i < 2 && s_expect(fb, DQ_CMD_RESULT, &m, WAIT_MS, NULL) == 0; i++) {
        chunks |= 1u << m.result.chunk;
        s_ack(fb, &m.result, true);
        dq_msg_clear(&m);
    }
    s_ok(fb, chunks == 3, "the unacknowledged chunks 0 and 1 are sent again");
    s_ok(fb, s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, NULL) == 0 && m.shard_done.images == 2,
         "then SHARD_DONE");
    dq_msg_clear(&m);
    /* A hung broker: bound but silent. The node must give up on the socket and make a new one. */
    fb->beating = false;
    fb->silent = true;
    int64_t t0 = zclock_mono();
    s_ok(fb, s_expect(fb, DQ_CMD_READY, &m, WAIT_MS, NULL) == 0,
         "a silent broker is left after liveness: READY on a new socket");
    dq_msg_clear(&m);
    int64_t took = zclock_mono() - t0;
    s_ok(fb, took >= DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS,
         "not before %d ms of silence (%lld ms)",
         DQ_PROTO_HEARTBEAT_INTERVAL_MS * DQ_PROTO_HEARTBEAT_LIVENESS, (long long) took);
}

static void s_drain(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 64, 64, 20); /* 20 x 50 ms */
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_t m;
    int64_t until = zclock_mono() + WAIT_MS;
    while (fb->progress == 0 && s_recv(fb, &m, until, true) == 0)
        dq_msg_clear(&m);
    kill(fb->node, SIGUSR1);
    unsigned skipped[DQ_CMD_COUNT] = {0};
    s_ok(fb, s_expect(fb, DQ_CMD_RESULT, &m, WAIT_MS, skipped) == 0,
         "SIGUSR1 mid-shard: the shard still finishes");
    s_ack(fb, &m.result, true);
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, skipped) == 0, "SHARD_DONE");
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_DISCONNECT, &m, WAIT_MS, skipped) == 0, "then DISCONNECT");
    dq_msg_clear(&m);
    s_ok(fb, skipped[DQ_CMD_CREDIT] == 0, "no new credit while draining");
    s_ok(fb, s_wait_exit(fb, WAIT_MS) == 0, "exit status 0");
}

/* The result window: small PNGs fill it up to DQ_PROTO_RESULT_WINDOW_MAX chunks, never more,
 * and each acknowledgement lets one more go. */
static void s_window(fb_t *fb) {
    s_handshake(fb, 1);
    enum { IMAGES = 2 * DQ_PROTO_MAX_IMAGES_PER_PROMPT };
    _Static_assert(IMAGES > DQ_PROTO_RESULT_WINDOW_MAX, "the shard must overfill the window");
    dq_wire_request_t reqs[2];
    s_request(&reqs[0], 1, 5, 0, IMAGES / 2, IMAGES / 2, 64, 64, 1);
    s_request(&reqs[1], 2, 6, 0, IMAGES / 2, IMAGES / 2, 64, 64, 1);
    s_assign(fb, 4, reqs, 2, "tiny");
    static dq_msg_t res[IMAGES];
    unsigned skipped[DQ_CMD_COUNT] = {0};
    int got = 0;
    while (got < DQ_PROTO_RESULT_WINDOW_MAX &&
           s_expect(fb, DQ_CMD_RESULT, &res[got], WAIT_MS, skipped) == 0)
        got++;
    s_ok(fb, got == DQ_PROTO_RESULT_WINDOW_MAX, "%d RESULTs arrive without acknowledgement",
         got);
    /* The node has more images ready at once; give it ample time to (wrongly) send one. */
    dq_msg_t extra;
    int64_t until = zclock_mono() + 1500;
    bool more = false;
    while (s_recv(fb, &extra, until, false) == 0) {
        more |= extra.cmd == DQ_CMD_RESULT;
        dq_msg_clear(&extra);
    }
    s_ok(fb, !more && fb->max_inflight == DQ_PROTO_RESULT_WINDOW_MAX,
         "no more while %d are unacknowledged (max in flight %u)", DQ_PROTO_RESULT_WINDOW_MAX,
         fb->max_inflight);
    int acked = 0;
    while (acked < got) {
        s_ack(fb, &res[acked++].result, true);
        if (got < IMAGES && s_expect(fb, DQ_CMD_RESULT, &res[got], WAIT_MS, skipped) == 0) got++;
    }
    s_ok(fb, got == IMAGES && fb->max_inflight == DQ_PROTO_RESULT_WINDOW_MAX,
         "each acknowledgement lets one more go: %d RESULTs, never over %d in flight", got,
         DQ_PROTO_RESULT_WINDOW_MAX);
    bool order = true;
    for (int i = 0; i < got; i++)
        order &= res[i].result.chunk == (uint32_t) i;
    s_ok(fb, order, "chunks are numbered in order");
    dq_msg_t m;
    s_ok(fb,
         s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, skipped) == 0 &&
             m.shard_done.images == IMAGES,
         "SHARD_DONE with %d images once all are acknowledged", IMAGES);
    dq_msg_clear(&m);
    for (int i = 0; i < got; i++)
        dq_msg_clear(&res[i]);
    kill(fb->node, SIGTERM);
    s_ok(fb, s_expect(fb, DQ_CMD_DISCONNECT, &m, WAIT_MS, NULL) == 0,
         "SIGTERM: the node says DISCONNECT");
    dq_msg_clear(&m);
    s_ok(fb, s_wait_exit(fb, WAIT_MS) == 0, "exit status 0");
}

/* A second signal does not wait for the running shard: DISCONNECT hands it back at once. */
static void s_handback(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 64, 64, 1000); /* 50 s */
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_t m;
    int64_t until = zclock_mono() + WAIT_MS;
    while (fb->progress == 0 && s_recv(fb, &m, until, true) == 0)
        dq_msg_clear(&m);
    kill(fb->node, SIGTERM);
    /* Both signals are read by the same loop; the second is what must end the drain. */
    while (fb->progress < 3 && s_recv(fb, &m, until, true) == 0)
        dq_msg_clear(&m);
    kill(fb->node, SIGINT);
    unsigned skipped[DQ_CMD_COUNT] = {0};
    s_ok(fb, s_expect(fb, DQ_CMD_DISCONNECT, &m, WAIT_MS, skipped) == 0,
         "SIGTERM then SIGINT: DISCONNECT while the shard still runs");
    dq_msg_clear(&m);
    s_ok(fb, !skipped[DQ_CMD_SHARD_DONE] && !skipped[DQ_CMD_RESULT] && !skipped[DQ_CMD_CREDIT],
         "without finishing the shard or asking for more");
    s_ok(fb, s_wait_exit(fb, WAIT_MS) == 0, "exit status 0");
}

/* --drain-timeout bounds a drain: the long shard is handed back when it runs out. */
static void s_draintimeout(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 64, 64, 1000); /* 50 s, far past the 1 s drain timeout */
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_t m;
    int64_t until = zclock_mono() + WAIT_MS;
    while (fb->progress == 0 && s_recv(fb, &m, until, true) == 0)
        dq_msg_clear(&m);
    kill(fb->node, SIGTERM);
    unsigned skipped[DQ_CMD_COUNT] = {0};
    s_ok(fb,
         s_expect(fb, DQ_CMD_DISCONNECT, &m, WAIT_MS, skipped) == 0 &&
             strstr(m.disconnect.reason, "drain timeout"),
         "SIGTERM with --drain-timeout 1: DISCONNECT (%s)", m.disconnect.reason);
    dq_msg_clear(&m);
    s_ok(fb, !skipped[DQ_CMD_SHARD_DONE] && !skipped[DQ_CMD_RESULT], "the shard was not finished");
    s_ok(fb, s_wait_exit(fb, WAIT_MS) == 0, "exit status 0");
}

/* A shard waiting for its acknowledgements keeps its lease: PROGRESS repeats every 10 s. */
static void s_lease(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 16, 16, 2);
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_t res, m;
    s_ok(fb, s_expect(fb, DQ_CMD_RESULT, &res, WAIT_MS, NULL) == 0, "a RESULT, not acknowledged");
    int64_t t0 = zclock_mono();
    s_ok(fb,
         s_expect(fb, DQ_CMD_PROGRESS, &m, DQ_PROTO_PROGRESS_INTERVAL_MS + WAIT_MS, NULL) == 0 &&
             m.progress.step == 2 && m.progress.steps == 2,
         "PROGRESS repeats the last step while the shard waits");
    dq_msg_clear(&m);
    int64_t took = zclock_mono() - t0;
    s_ok(fb,
         took >= DQ_PROTO_PROGRESS_INTERVAL_MS - 1000 &&
             took < DQ_PROTO_PROGRESS_INTERVAL_MS + WAIT_MS,
         "after about %d ms (%lld ms)", DQ_PROTO_PROGRESS_INTERVAL_MS, (long long) took);
    s_ack(fb, &res.result, true);
    dq_msg_clear(&res);
    s_ok(fb, s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, NULL) == 0, "SHARD_DONE after the ack");
    dq_msg_clear(&m);
}

/* The engine backend on the tiny fixture model: a real render through the whole daemon. */
static void s_engine(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 3, 42, 1, 1, 2, 64, 48, 2); /* image 1 of 2 */
    s_assign(fb, 1, &req, 1, "tiny-sd");
    dq_msg_t m;
    unsigned skipped[DQ_CMD_COUNT] = {0};
    s_ok(fb,
         s_expect(fb, DQ_CMD_RESULT, &m, WAIT_MS * 3, skipped) == 0 && m.result.line == 3 &&
             m.result.image_index == 1 && m.result.seed == 42,
         "a RESULT for line 3 image 1");
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    bool decoded = m.result.png &&
                   png_image_begin_read_from_memory(&img, m.result.png, m.result.png_size) &&
                   img.width == 64 && img.height == 48;
    png_image_free(&img);
    s_ok(fb, decoded, "its PNG decodes as 64x48");
    s_ok(fb, m.result.png && memmem(m.result.png, m.result.png_size, "Model: tiny-sd", 14),
         "with the model in its parameters");
    for (uint32_t i = 0; i < m.result.n_meta; i++)
        if (!strcmp(m.result.meta[i].key, "backend"))
            s_ok(fb, !strcmp(m.result.meta[i].value, "engine"), "meta backend=engine");
    if (m.cmd == DQ_CMD_RESULT) s_ack(fb, &m.result, true);
    dq_msg_clear(&m);
    s_ok(fb, s_expect(fb, DQ_CMD_SHARD_DONE, &m, WAIT_MS, skipped) == 0 && m.shard_done.images == 1,
         "SHARD_DONE with 1 image");
    dq_msg_clear(&m);
    /* Step progress is coalesced (DQ_PROTO_PROGRESS_MIN_MS); the last step always arrives. */
    s_ok(fb,
         skipped[DQ_CMD_PROGRESS] == 0 && fb->progress >= 1 && fb->last_steps > 0 &&
             fb->last_step == fb->last_steps,
         "PROGRESS reached step %u of %u (%u messages)", fb->last_step, fb->last_steps,
         fb->progress);
}

static bool s_lists(const dq_msg_heartbeat_t *hb, uint64_t shard) {
    for (uint32_t i = 0; i < hb->n_held; i++)
        if (hb->held[i] == shard) return true;
    return false;
}

/* Held-shard sync with a broker of minor 5: an ASSIGN lost on the way (numbered, never sent) is
 * named in the node's HEARTBEATs and dropped should it come late; `held` names what the node has;
 * a repeated ASSIGN of a finished shard is not run again. */
static void s_heldsync(fb_t *fb) {
    fb->sync = true;
    s_handshake(fb, 2);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 16, 16, 60); /* 60 steps of 50 ms: 3 s */
    fb->asg++;                                  /* seq 1 (shard 11) is lost on the way */
    fb->assign_seq = ++fb->asg;
    s_assign(fb, 12, &req, 1, "tiny");
    bool named = false, held = false, ran_lost = false;
    dq_msg_t m;
    int64_t until = zclock_mono() + WAIT_MS;
    while (!named && s_recv(fb, &m, until, true) == 0) {
        if (m.cmd == DQ_CMD_HEARTBEAT && m.heartbeat.n_lost > 0) {
            named = m.heartbeat.n_lost == 1 && m.heartbeat.lost[0] == 1;
            held = m.heartbeat.minor == DQ_PROTO_MINOR && s_lists(&m.heartbeat, 12) &&
                   !s_lists(&m.heartbeat, 11);
        }
        if (m.cmd == DQ_CMD_RESULT) s_ack(fb, &m.result, true);
        dq_msg_clear(&m);
    }
    s_ok(fb, named, "the node names the lost ASSIGN (seq 1) in a HEARTBEAT");
    s_ok(fb, held, "... with minor %d and held listing the running shard, not the lost one",
         DQ_PROTO_MINOR);
    fb->assign_seq = 1; /* the lost one comes after all: dropped */
    s_assign(fb, 11, &req, 1, "tiny");
    bool done = false;
    while (!done && s_recv(fb, &m, until, true) == 0) {
        uint64_t shard = m.cmd == DQ_CMD_PROGRESS ? m.progress.shard
                         : m.cmd == DQ_CMD_RESULT ? m.result.shard
                                                  : 0;
        ran_lost |= shard == 11;
        if (m.cmd == DQ_CMD_RESULT) s_ack(fb, &m.result, true);
        done = m.cmd == DQ_CMD_SHARD_DONE && m.shard_done.shard == 12;
        dq_msg_clear(&m);
    }
    s_ok(fb, done, "the running shard finishes");
    s_ok(fb, !ran_lost, "the late ASSIGN was not run");
    fb->assign_seq = 2; /* the finished shard's ASSIGN repeated: not run again */
    s_assign(fb, 12, &req, 1, "tiny");
    unsigned empty_beats = 0;
    bool ran_again = false;
    until = zclock_mono() + WAIT_MS;
    while (empty_beats < 2 && s_recv(fb, &m, until, true) == 0) {
        ran_again |= m.cmd == DQ_CMD_PROGRESS || m.cmd == DQ_CMD_RESULT;
        empty_beats += m.cmd == DQ_CMD_HEARTBEAT && m.heartbeat.minor == DQ_PROTO_MINOR &&
                       m.heartbeat.n_held == 0;
        dq_msg_clear(&m);
    }
    s_ok(fb, empty_beats == 2 && !ran_again,
         "a repeated ASSIGN of the finished shard is not run; held lists nothing");
    s_ok(fb, fb->crd == 4, "credit: 2, 1 again for the lost ASSIGN, 1 after the shard (%llu)",
         (unsigned long long) fb->crd);
}

/* SHARD_FAILED repeats (node/flow.h): a failure goes out at once, then again just before each of
 * the next two HEARTBEATs, three times in all and word for word; repeats still due when the node
 * reconnects go out on the new connection right after READY, before its first HEARTBEAT. */
static void s_failrep(fb_t *fb) {
    s_handshake(fb, 1);
    dq_wire_request_t req;
    s_request(&req, 1, 5, 0, 1, 1, 16, 16, 1);
    s_assign(fb, 1, &req, 1, "tiny");
    dq_msg_shard_failed_t first = {0};
    unsigned copies = 0, with_beat = 0, beats_after = 0, after = 0; /* after: copy just seen */
    bool same = true, first_alone = false, unlisted = true;
    dq_msg_t m;
    int64_t until = zclock_mono() + WAIT_MS;
    /* Every message in order, until four HEARTBEATs after the third copy (time for a fourth). */
    while (beats_after < 4 && s_recv(fb, &m, until, true) == 0) {
        bool beat = m.cmd == DQ_CMD_HEARTBEAT;
        if (after == 1) first_alone = !beat; /* sent on its own, not with a HEARTBEAT */
        if (after >= 2 && beat) with_beat++; /* a repeat, followed at once by its HEARTBEAT */
        after = 0;
        if (m.cmd == DQ_CMD_SHARD_FAILED && m.shard_failed.shard == 1) {
            if (++copies == 1)
                first = m.shard_failed;
            else
                same &= s_same_failure(&first, &m.shard_failed);
            after = copies;
        }
        if (beat && copies > 0)
            unlisted &= m.heartbeat.minor == DQ_PROTO_MINOR && !s_lists(&m.heartbeat, 1);
        if (beat && copies >= 3) beats_after++;
        dq_msg_clear(&m);
    }
    s_ok(fb,
         copies >= 1 && first.fail_class == DQ_FAIL_OOM && first.job == 7 && first.attempt == 1 &&
             strstr(first.message, "oom"),
         "the rank fails the shard: SHARD_FAILED class oom (%s)", first.message);
    s_ok(fb, first_alone, "the first copy goes at once, not with a HEARTBEAT");
    s_ok(fb, copies == 3 && same,
         "sent 3 times in all, each the same job, shard, attempt, class and message (%u)", copies);
    s_ok(fb, with_beat == 2, "the two repeats each go just before a HEARTBEAT (%u)", with_beat);
    s_ok(fb, unlisted, "those HEARTBEATs' held lists no longer name the shard");

    s_request(&req, 2, 6, 0, 1, 1, 16, 16, 1);
    s_assign(fb, 2, &req, 1, "tiny");
    s_ok(fb, s_expect_failed(fb, 2, &m, WAIT_MS) == 0, "the next shard fails too: SHARD_FAILED");
    first = m.shard_failed;
    dq_msg_clear(&m);
    /* Before its repeats are out, the broker sends the node away (as one that never got its
     * READY would): the node comes back on a new connection after its back-off. */
    dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT};
    snprintf(bye.disconnect.reason, sizeof bye.disconnect.reason, "send READY first");
    s_send(fb, &bye);
    unsigned old_copies = 1, new_copies = 0;
    same = true;
    until = zclock_mono() + WAIT_MS;
    int got;
    while ((got = s_recv(fb, &m, until, true)) == 0 && m.cmd != DQ_CMD_READY) {
        if (m.cmd == DQ_CMD_SHARD_FAILED && m.shard_failed.shard == 2) {
            same &= s_same_failure(&first, &m.shard_failed);
            old_copies++;
        }
        dq_msg_clear(&m);
    }
    s_ok(fb, got == 0 && m.ready.boot == fb->boot,
         "told DISCONNECT, the node comes back with READY (the same process)");
    dq_msg_clear(&m);
    got = s_recv(fb, &m, until, true);
    s_ok(fb,
         got == 0 && m.cmd == DQ_CMD_SHARD_FAILED && m.shard_failed.shard == 2 &&
             s_same_failure(&first, &m.shard_failed),
         "right after READY, before any HEARTBEAT: the SHARD_FAILED again (%u copies went on the "
         "old connection; next %s)",
         old_copies, got == 0 ? dq_proto_command_name(m.cmd) : "nothing");
    new_copies += got == 0 && m.cmd == DQ_CMD_SHARD_FAILED && m.shard_failed.shard == 2;
    dq_msg_clear(&m);
    beats_after = 0;
    unlisted = true;
    while (beats_after < 4 && s_recv(fb, &m, until, true) == 0) {
        if (m.cmd == DQ_CMD_SHARD_FAILED && m.shard_failed.shard == 2) {
            same &= s_same_failure(&first, &m.shard_failed);
            new_copies++;
        }
        if (m.cmd == DQ_CMD_HEARTBEAT) {
            unlisted &= m.heartbeat.minor == DQ_PROTO_MINOR && !s_lists(&m.heartbeat, 2);
            beats_after++;
        }
        dq_msg_clear(&m);
    }
    s_ok(fb, old_copies + new_copies == 3 && same && unlisted,
         "3 copies in all over both connections, word for word (%u + %u); HEARTBEATs do not list "
         "the shard",
         old_copies, new_copies);
    s_check_node(fb);
    s_ok(fb, !fb->node_exited, "the node lived on");
}

static void s_death(fb_t *fb) {
    dq_msg_t m;
    s_ok(fb, s_expect(fb, DQ_CMD_READY, &m, WAIT_MS, NULL) == 0, "READY");
    dq_msg_clear(&m);
    fb->beating = false;
    s_unbind(fb); /* and never comes back */
    s_ok(fb, s_wait_exit(fb, WAIT_MS * 2) == DQ_NODE_EXIT_BROKER_LOST,
         "without the broker for --death-timeout the node exits %d", DQ_NODE_EXIT_BROKER_LOST);
}

typedef struct {
    const char *name;
    void (*run)(fb_t *fb);
    const char *args[8]; /* extra diffq-node arguments */
    const char *model;   /* under $top_srcdir, or NULL: a name the null backend takes */
} scenario_t;

static const scenario_t s_scenarios[] = {
    {"basic", s_basic, {NULL}, NULL},
    {"window", s_window, {NULL}, NULL},
    {"stop", s_stop, {"--null-step-ms", "50", NULL}, NULL},
    {"ranks", s_ranks, {"--cpu-ranks", "2", "--batch", "2", "--null-step-ms", "50", NULL}, NULL},
    {"fail", s_fail, {"--null-fail", "oom", NULL}, NULL},
    {"crash", s_crash, {"--null-step-ms", "50", NULL}, NULL},
    {"reconnect", s_reconnect, {NULL}, NULL},
    {"drain", s_drain, {"--null-step-ms", "50", NULL}, NULL},
    {"handback", s_handback, {"--null-step-ms", "50", NULL}, NULL},
    {"draintimeout", s_draintimeout, {"--null-step-ms", "50", "--drain-timeout", "1", NULL}, NULL},
    {"lease", s_lease, {NULL}, NULL},
    {"engine", s_engine, {"--backend", "engine", NULL}, "tests/fixtures/tiny-sd"},
    {"death", s_death, {"--death-timeout", "3", NULL}, NULL},
    {"heldsync", s_heldsync, {"--batch", "2", "--null-step-ms", "50", NULL}, NULL},
    {"failrep", s_failrep, {"--null-fail", "oom", NULL}, NULL},
};

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: node_fake_broker SCENARIO DIFFQ_NODE\n");
        return 2;
    }
    zsys_handler_set(NULL);
    const scenario_t *sc = NULL;
    for (size_t i = 0; i < sizeof s_scenarios / sizeof s_scenarios[0]; i++)
        if (!strcmp(argv[1], s_scenarios[i].name)) sc = &s_scenarios[i];
    if (!sc) {
        fprintf(stderr, "node_fake_broker: unknown scenario '%s'\n", argv[1]);
        return 2;
    }
    fb_t fb = {.beating = true, .model = "/models/tiny.safetensors", .model_name = "tiny"};
    char model[4096];
    if (sc->model) {
        const char *top = getenv("top_srcdir");
        snprintf(model, sizeof model, "%s/%s", top ? top : ".", sc->model);
        fb.model = model;
        fb.model_name = strrchr(sc->model, '/') + 1;
    }
    if (s_bind(&fb, 0) != 0) {
        printf("Bail out! cannot bind a loopback port\n");
        return 1;
    }
    const char *extra[12] = {NULL};
    int n = 0;
    for (int i = 0; sc->args[i]; i++)
        extra[n++] = sc->args[i];
    s_start_node(&fb, argv[2], extra);
    sc->run(&fb);
    s_check_node(&fb);
    if (!fb.node_exited) {
        kill(fb.node, SIGKILL);
        waitpid(fb.node, &fb.node_status, 0);
    }
    s_unbind(&fb);
    printf("1..%d\n", fb.tap);
    return fb.failed ? 1 : 0;
}
