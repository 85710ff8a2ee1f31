/* tests/integration/store_check.c: checks, after a broker stopped, what it promised about one job:
 * every image of the job committed exactly once (the event log has one "commit" per image), each
 * committed file exists in the output folder with the SHA-256 and size the store recorded, and
 * results.jsonl has one line per request. Usage: store_check STATE_DIR JOB [EXPECTED_IMAGES].
 * Prints what it found; exit 0 when all holds. `store_check --events STATE_DIR JOB` prints the
 * job's event log instead, one event a line (kind shard= attempt= node= line= image=, then the
 * event's detail, e.g. an assign's "requests=4 images=4"), for the tests' checks on who did
 * what. */
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store.h"

typedef struct {
    int64_t line;
    int image;
} key_t_;

typedef struct {
    key_t_ keys[100000];
    int n, dup;
} commits_t;

static int s_event(void *arg, const dq_event_t *ev) {
    commits_t *c = arg;
    if (strcmp(ev->kind, "commit") != 0) return 0;
    for (int i = 0; i < c->n; i++)
        if (c->keys[i].line == ev->line && c->keys[i].image == ev->image) {
            fprintf(stderr, "line %lld image %d committed twice\n", (long long) ev->line,
                    ev->image);
            c->dup++;
            return 0;
        }
    if (c->n < 100000) c->keys[c->n++] = (key_t_){ev->line, ev->image};
    return 0;
}

typedef struct {
    const char *dir;
    int files, bad, rows;
} manifest_t;

static int s_row(void *arg, const dq_manifest_row_t *row) {
    manifest_t *m = arg;
    m->rows++;
    for (int i = 0; i < row->n_files; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", m->dir, row->paths[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "%s: missing\n", path);
            m->bad++;
            continue;
        }
        static unsigned char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        unsigned char md[32];
        unsigned len = 0;
        EVP_Digest(buf, n, md, &len, EVP_sha256(), NULL);
        char hex[65];
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", md[k]);
        if (strcmp(hex, row->sha256[i]) != 0 || (int64_t) n != row->sizes[i]) {
            fprintf(stderr, "%s: sha256 %s size %zu, store says %s size %lld\n", path, hex, n,
                    row->sha256[i], (long long) row->sizes[i]);
            m->bad++;
        }
        m->files++;
    }
    return 0;
}

static int s_print_event(void *arg, const dq_event_t *ev) {
    (void) arg;
    printf("%s shard=%lld attempt=%d node=%s line=%lld image=%d%s%s\n", ev->kind,
           (long long) ev->shard, ev->attempt, ev->node, (long long) ev->line, ev->image,
           ev->detail[0] ? " " : "", ev->detail);
    return 0;
}

int main(int argc, char **argv) {
    bool events = argc > 1 && strcmp(argv[1], "--events") == 0;
    if (events) argv++, argc--;
    if (argc < 3) {
        fprintf(stderr, "usage: store_check [--events] STATE_DIR JOB [EXPECTED_IMAGES]\n");
        return 2;
    }
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/queue.db", argv[1]);
    dq_store_t *store = dq_store_open(path, NULL, err, sizeof err);
    if (!store) {
        fprintf(stderr, "store_check: %s\n", err);
        return 1;
    }
    int64_t job = atoll(argv[2]);
    if (events) {
        dq_store_rc_t rc = dq_store_events(store, job, s_print_event, NULL);
        if (rc != DQ_STORE_OK) fprintf(stderr, "store_check: %s\n", dq_store_errmsg(store));
        dq_store_destroy(&store);
        return rc == DQ_STORE_OK ? 0 : 1;
    }
    dq_job_status_t st;
    if (dq_store_job_status(store, job, 0, 1, &st) != DQ_STORE_OK) {
        fprintf(stderr, "store_check: %s\n", dq_store_errmsg(store));
        return 1;
    }
    static commits_t commits;
    dq_store_events(store, job, s_event, &commits);
    manifest_t m = {.dir = st.out_dir};
    dq_store_manifest(store, job, s_row, &m);
    snprintf(path, sizeof path, "%s/results.jsonl", st.out_dir);
    int lines = 0;
    FILE *f = fopen(path, "r");
    for (int c; f && (c = fgetc(f)) != EOF;)
        lines += c == '\n';
    if (f) fclose(f);
    printf("job %lld state=%s images=%lld commits=%d duplicates=%d files=%d bad=%d rows=%d "
           "manifest_lines=%d\n",
           (long long) job, dq_store_job_state_name(st.state), (long long) st.n_images, commits.n,
           commits.dup, m.files, m.bad, m.rows, lines);
    long want = argc > 3 ? atol(argv[3]) : st.n_images;
    int ok = commits.dup == 0 && m.bad == 0 && commits.n == want && m.files == want &&
             lines == m.rows && st.state == DQ_STORE_JOB_DONE;
    dq_store_destroy(&store);
    return ok ? 0 : 1;
}
