/* bench/store_bench.c: committed results per second through the queue store (not a test).
 * Usage: store_bench DIR [N_RESULTS] — writes DIR/bench-*.db and prints one line per mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "broker/store.h"

#define IMAGES 4    /* images per request */
#define SHARD  16   /* requests per shard */
#define SINGLE 5000 /* results committed one per transaction (one fsync each) */

static double s_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) this process has used: less noisy than wall time on a busy host. */
static double s_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void s_die(dq_store_t *st, const char *what) {
    fprintf(stderr, "store_bench: %s: %s\n", what, st ? dq_store_errmsg(st) : "");
    exit(1);
}

/* One run: submit n/IMAGES requests, lease everything, commit every image; batch 1 commits
 * only the first SINGLE results that way and the rest in batches of 256. */
static void s_run(const char *dir, long n, bool sync_full, int batch) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/bench-%s-%d.db", dir, sync_full ? "full" : "normal", batch);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    dq_store_params_t params;
    dq_store_params_init(&params);
    params.sync_full = sync_full;
    dq_store_t *st = dq_store_open(path, &params, err, sizeof err);
    if (!st) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    int64_t now = 1700000000000LL, job;
    long n_req = n / IMAGES;
    dq_job_params_t jp = {.name = "bench", .model = "sd15", .out_dir = "/o", .shard_size = SHARD};
    double t0 = s_now_s();
    if (dq_store_job_begin(st, &jp, now, &job)) s_die(st, "begin");
    enum { PIECE = 1000 };
    static dq_store_request_t reqs[PIECE];
    static char json[PIECE][160];
    for (long base = 0; base < n_req; base += PIECE) {
        int k = 0;
        for (; k < PIECE && base + k < n_req; k++) {
            long line = base + k + 1;
            snprintf(json[k], sizeof json[k],
                     "{\"prompt\":\"a photo of object %ld on a table\",\"seed\":%ld,"
                     "\"num_inference_steps\":20,\"width\":512,\"height\":512}",
                     line, line);
            reqs[k] = (dq_store_request_t){.line = line,
                                     .json = json[k],
                                     .seed = (uint64_t)line,
                                     .num_images = IMAGES,
                                     .width = 512,
                                     .height = 512,
                                     .steps = 20,
                                     .scheduler = "euler"};
        }
        if (dq_store_job_add(st, job, reqs, (size_t)k)) s_die(st, "add");
    }
    if (dq_store_job_commit(st, job, now)) s_die(st, "commit job");
    double t1 = s_now_s();
    static dq_lease_t leases[256];
    int got;
    long shards = 0;
    do {
        if (dq_store_lease(st, "node1", 256, now, 600000, leases, &got)) s_die(st, "lease");
        shards += got;
    } while (got > 0);
    double t2 = s_now_s();
    /* Shards are leased in line order with attempt 1, so results can be generated directly. */
    static dq_result_t res[256];
    char pathbuf[64];
    snprintf(pathbuf, sizeof pathbuf, "/o/000000-0.png");
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    long done = 0, single = 0;
    double single_s = 0, cpu0 = s_cpu_s(), single_cpu = 0;
    while (done < n_req * IMAGES) {
        int m = 0;
        int size = (batch == 1 && done < SINGLE) ? 1 : (batch == 1 ? 256 : batch);
        for (; m < size && done + m < n_req * IMAGES; m++) {
            long i = done + m;
            res[m] = (dq_result_t){.job = job,
                                   .line = i / IMAGES + 1,
                                   .image = (int)(i % IMAGES),
                                   .attempt = 1,
                                   .path = pathbuf,
                                   .sha256 = sha,
                                   .size = 123456};
        }
        double a = s_now_s(), c = s_cpu_s();
        if (m == 1) {
            if (dq_store_commit_result(st, &res[0], now) != DQ_STORE_OK) s_die(st, "commit");
            single_s += s_now_s() - a;
            single_cpu += s_cpu_s() - c;
            single++;
        } else {
            if (dq_store_commit_results(st, res, (size_t)m, now)) s_die(st, "commit batch");
            for (int j = 0; j < m; j++)
                if (res[j].rc != DQ_STORE_OK) s_die(st, "batch item");
        }
        done += m;
    }
    double t3 = s_now_s(), cpu = s_cpu_s() - cpu0;
    dq_job_status_t js;
    if (dq_store_job_status(st, job, now, 60000, &js) || js.state != DQ_STORE_JOB_DONE)
        s_die(st, "job not done");
    double batched_s = (t3 - t2) - single_s;
    long batched = done - single;
    printf("sync=%-6s batch=%-4d requests=%ld shards=%ld submit=%.2fs (%.0f req/s) "
           "lease=%.2fs",
           sync_full ? "FULL" : "NORMAL", batch, n_req, shards, t1 - t0, n_req / (t1 - t0),
           t2 - t1);
    if (single)
        printf(" single=%ld at %.0f/s (%.0f us CPU each)", single, single / single_s,
               single_cpu * 1e6 / (double)single);
    if (batched)
        printf(" batched=%ld at %.0f/s (%.0f us CPU each)", batched, batched / batched_s,
               (cpu - single_cpu) * 1e6 / (double)batched);
    printf("\n");
    fflush(stdout);
    dq_store_destroy(&st);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: store_bench DIR [N_RESULTS]\n");
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 100000;
    if (n < IMAGES * SHARD) n = IMAGES * SHARD;
    s_run(argv[1], n, true, 1);
    s_run(argv[1], n, true, 64);
    s_run(argv[1], n, true, 256);
    s_run(argv[1], n, false, 256);
    return 0;
}
