/* broker/server_result.c: RESULT handling in batches (PNGs written and synced in parallel, renamed; SHA-256; one store
 * transaction, then RESULT_ACKs) and each job's results.jsonl manifest. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/png_out.h"

#include "broker/file_batch.h"
#include "broker/server_int.h"
#include "common/log.h"

dq_job_state_t dq_server_wire_state(dq_store_job_state_t state) {
    switch (state) {
    case DQ_STORE_JOB_RUNNING:
        return DQ_JOB_RUNNING;
    case DQ_STORE_JOB_PAUSED:
        return DQ_JOB_PAUSED;
    case DQ_STORE_JOB_CANCELLED:
        return DQ_JOB_CANCELLED;
    case DQ_STORE_JOB_DONE:
        return DQ_JOB_DONE;
    case DQ_STORE_JOB_FAILED:
        return DQ_JOB_FAILED;
    default:
        return DQ_JOB_QUEUED;
    }
}

static int s_sha256(const uint8_t *data, size_t size, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) || len != 32) return -1;
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Per-result scratch while a batch is written and committed. */
typedef struct {
    bool send_ack, stored, stop;       /* what to answer */
    bool in_batch;                     /* passed to commit_results */
    bool retry_later;                  /* its node must resend its un-acknowledged results */
    bool replace;                      /* the final name was taken (an earlier attempt's file) */
    char path[DQ_PROTO_MAX_PATH + 64]; /* final file */
    char temp[DQ_PROTO_MAX_PATH + 96]; /* where the bytes were written; "" once renamed */
    char name[160];
    char sha[65];
} s_item_t;

/* The output folders one batch writes into (usually one). */
typedef struct {
    char dir[DQ_BROKER_BATCH][DQ_PROTO_MAX_PATH];
    int n;
} s_dirs_t;

/* Adds a folder to the batch's, creating it the first time. Returns 0, or -1 (logged). */
static int s_dirs_add(s_dirs_t *d, const char *dir) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->dir[i], dir) == 0) return 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        dq_error("cannot create output folder %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(d->dir[d->n++], sizeof d->dir[0], "%s", dir);
    return 0;
}

/* Names one image's files: its final name (by the request's id, or its line, as recorded at
 * submit) and the temporary one it is written to first. Returns 0, -1 when it may work later
 * (database, folder), 1 when it never will (no such request or image). */
static int s_name(dq_server_t *self, const dq_job_status_t *job, const dq_msg_result_t *r,
                  unsigned serial, s_item_t *it) {
    dq_store_rc_t rc = dq_store_image_name(self->store, (int64_t) r->job, (int64_t) r->line,
                                           (int) r->image_index, it->name, sizeof it->name);
    if (rc != DQ_STORE_OK) {
        dq_warn("result job=%" PRIu64 " line=%" PRIu64 " image=%u: %s", r->job, r->line,
                r->image_index, dq_store_errmsg(self->store));
        return rc == DQ_STORE_DB ? -1 : 1;
    }
    snprintf(it->path, sizeof it->path, "%s/%s", job->out_dir, it->name);
    snprintf(it->temp, sizeof it->temp, "%s/.%s.a%u.%u.tmp", job->out_dir, it->name, r->attempt,
             serial);
    return s_sha256(r->png, r->png_size, it->sha);
}

/* fsync() of each folder: makes the batch's new names durable. */
static int s_sync_dirs(const s_dirs_t *d) {
    for (int i = 0; i < d->n; i++) {
        int dfd = open(d->dir[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = dfd < 0 ? -1 : fsync(dfd);
        int saved = errno;
        if (dfd >= 0) close(dfd);
        if (rc != 0) {
            dq_error("cannot sync folder %s: %s", d->dir[i], strerror(saved));
            return -1;
        }
    }
    return 0;
}

/* Drops an item from the batch: its temporary file goes, and it is not acknowledged. */
static void s_unwrite(s_item_t *it) {
    if (it->temp[0]) unlink(it->temp);
    it->temp[0] = '\0';
    it->in_batch = false;
}

static int64_t s_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_ack(dq_server_t *self, dq_pending_t *p, bool stored) {
    dq_msg_t ack = {.cmd = DQ_CMD_RESULT_ACK};
    const dq_msg_result_t *r = &p->msg.result;
    ack.result_ack = (dq_msg_result_ack_t){.job = r->job,
                                           .shard = r->shard,
                                           .attempt = r->attempt,
                                           .chunk = r->chunk,
                                           .stored = stored};
    dq_server_send(self, p->identity, &ack);
}

void dq_server_results_flush(dq_server_t *self) {
    int n = self->n_pending;
    if (n == 0) return;
    static s_item_t items[DQ_BROKER_BATCH];
    static dq_result_t results[DQ_BROKER_BATCH];
    static int index_of[DQ_BROKER_BATCH];
    int64_t t_start = s_mono_us();
    static s_dirs_t dirs;
    static dq_file_item_t files[DQ_BROKER_BATCH];
    static int file_of[DQ_BROKER_BATCH];
    int n_files = 0;
    static unsigned serial; /* tells apart one process's temporaries of the same attempt */
    int64_t jobs_touched[DQ_BROKER_BATCH];
    int n_jobs = 0, n_res = 0;
    dirs.n = 0;
    dq_job_status_t job;
    int64_t job_id = 0;
    int64_t now = dq_server_now();
    for (int i = 0; i < n; i++) {
        dq_pending_t *p = &self->pending[i];
        const dq_msg_result_t *r = &p->msg.result;
        s_item_t *it = &items[i];
        memset(it, 0, sizeof *it);
        dq_bnode_t *node = dq_server_node_find(self, p->identity);
        if (!node) continue; /* gone since: its window is gone too */
        if (!dq_server_node_check(self, node, r->job, r->shard, r->attempt)) {
            dq_info("stale result refused job=%" PRIu64 " shard=%" PRIu64 " attempt=%u node=%s",
                    r->job, r->shard, r->attempt, node->ready.name);
            it->send_ack = true;
            it->stop = true;
            continue;
        }
        if ((int64_t) r->job != job_id &&
            dq_store_job_brief(self->store, (int64_t) r->job, &job) != DQ_STORE_OK) {
            it->send_ack = true; /* no such job any more: drop it */
            it->stop = true;
            continue;
        }
        job_id = (int64_t) r->job;
        int named = s_name(self, &job, r, ++serial, it);
        if (named > 0) { /* no such request or image: nothing to store, ever */
            it->send_ack = true;
            continue;
        }
        if (named < 0 || s_dirs_add(&dirs, job.out_dir) < 0)
            continue; /* not acknowledged: sent again */
        it->in_batch = true;
        files[n_files++] = (dq_file_item_t){.path = it->temp, .bytes = r->png, .size = r->png_size};
        file_of[n_files - 1] = i;
    }
    /* Durable before committed: file data first (written and synced in parallel), then the new
     * names (renames and one fsync per folder). A file that replaces an earlier attempt's is
     * renamed only after the commit, below, so a committed file is never replaced by an
     * uncommitted one. */
    dq_file_batch_write(self->files, files, (size_t) n_files);
    int64_t t_written = s_mono_us();
    for (int f = 0; f < n_files; f++) {
        if (!files[f].what) continue;
        s_item_t *it = &items[file_of[f]];
        const dq_msg_result_t *r = &self->pending[file_of[f]].msg.result;
        dq_error("cannot write image job=%" PRIu64 " line=%" PRIu64 " image=%u: cannot %s %s: %s",
                 r->job, r->line, r->image_index, files[f].what, it->temp,
                 strerror(files[f].error));
        it->temp[0] = '\0'; /* removed by the writer */
        s_unwrite(it);
    }
    for (int i = 0; i < n; i++) {
        s_item_t *it = &items[i];
        if (!it->in_batch) continue;
        /* NOREPLACE: a name already taken (an earlier attempt's file, or another result of this
         * batch for the same image) is replaced only after the commit. */
        if (renameat2(AT_FDCWD, it->temp, AT_FDCWD, it->path, RENAME_NOREPLACE) == 0) {
            it->temp[0] = '\0';
        } else if (errno == EEXIST) {
            it->replace = true;
        } else {
            dq_error("cannot rename %s: %s", it->temp, strerror(errno));
            s_unwrite(it);
        }
    }
    if (s_sync_dirs(&dirs) != 0) {
        for (int i = 0; i < n; i++)
            if (items[i].in_batch) s_unwrite(&items[i]);
    }
    for (int i = 0; i < n; i++) {
        s_item_t *it = &items[i];
        if (!it->in_batch) continue;
        const dq_msg_result_t *r = &self->pending[i].msg.result;
        results[n_res] = (dq_result_t){.job = (int64_t) r->job,
                                       .line = (int64_t) r->line,
                                       .image = (int) r->image_index,
                                       .attempt = (int) r->attempt,
                                       .path = it->name,
                                       .sha256 = it->sha,
                                       .size = (int64_t) r->png_size};
        index_of[n_res++] = i;
    }
    int64_t t_synced = s_mono_us();
    bool committed = true;
    if (n_res > 0 &&
        dq_store_commit_results(self->store, results, (size_t) n_res, now) != DQ_STORE_OK) {
        dq_error("cannot commit %d results: %s", n_res, dq_store_errmsg(self->store));
        committed = false;
    }
    dq_debug("results batch=%d stored=%d write_us=%lld rename_us=%lld commit_us=%lld", n, n_res,
             (long long) (t_written - t_start), (long long) (t_synced - t_written),
             (long long) (s_mono_us() - t_synced));
    for (int k = 0; k < n_res; k++) {
        s_item_t *it = &items[index_of[k]];
        if (!committed) {
            if (it->temp[0]) unlink(it->temp); /* not acknowledged: the node sends it again */
            continue;
        }
        dq_store_rc_t rc = results[k].rc;
        it->send_ack = true;
        if (rc == DQ_STORE_OK) {
            it->stored = true;
            if (it->temp[0] && rename(it->temp, it->path) != 0)
                dq_error("cannot rename %s: %s", it->temp, strerror(errno));
            int64_t j = results[k].job;
            int seen = 0;
            for (int q = 0; q < n_jobs; q++)
                seen |= jobs_touched[q] == j;
            if (!seen) jobs_touched[n_jobs++] = j;
        } else if (rc == DQ_STORE_DUPLICATE) {
            it->stored = true; /* committed before: acknowledged and ignored */
            if (it->temp[0]) unlink(it->temp);
        } else {
            /* Stale or unknown: refuse. A file we created for it was never committed. */
            unlink(it->temp[0] ? it->temp : it->path);
            it->stop = rc == DQ_STORE_STALE;
            dq_warn("result refused (%s) job=%lld line=%lld image=%d", dq_store_rc_name(rc),
                    (long long) results[k].job, (long long) results[k].line, results[k].image);
        }
    }
    for (int i = 0; i < n; i++) {
        dq_pending_t *p = &self->pending[i];
        if (!items[i].send_ack && !items[i].retry_later) {
            /* Not stored (disk full, database fault): make the node send it again later. */
            for (int q = 0; q < n; q++)
                if (zframe_eq(self->pending[q].identity, p->identity)) items[q].retry_later = true;
        }
    }
    for (int i = 0; i < n; i++) {
        dq_pending_t *p = &self->pending[i];
        if (items[i].send_ack) s_ack(self, p, items[i].stored);
        if (items[i].stop) {
            dq_msg_t m = {.cmd = DQ_CMD_STOP};
            const dq_msg_result_t *r = &p->msg.result;
            m.stop = (dq_msg_stop_t){
                .job = r->job, .shard = r->shard, .attempt = r->attempt, .reason = DQ_STOP_FENCED};
            dq_server_send(self, p->identity, &m);
        }
    }
    for (int i = 0; i < n; i++) {
        dq_pending_t *p = &self->pending[i];
        dq_bnode_t *node = items[i].retry_later ? dq_server_node_find(self, p->identity) : NULL;
        if (node) {
            /* The protocol's way to have un-acknowledged results resent: the node reconnects
             * with back-off and sends them again. Its leases stay (it renews them). */
            dq_msg_t bye = {.cmd = DQ_CMD_DISCONNECT};
            snprintf(bye.disconnect.reason, sizeof bye.disconnect.reason,
                     "the broker could not store a result; send it again later");
            dq_warn("could not store results of node %s: disconnecting it so it resends them",
                    node->ready.name);
            dq_server_send(self, p->identity, &bye);
            dq_server_node_drop(self, node, false, NULL);
        }
        zframe_destroy(&p->identity);
        dq_msg_clear(&p->msg);
    }
    self->n_pending = 0;
    for (int q = 0; q < n_jobs; q++)
        dq_server_job_maybe_finished(self, jobs_touched[q]);
    if (n_res > 0) self->dispatch_due = true;
}

/* ---- results.jsonl ---- */

static int s_manifest_row(void *arg, const dq_manifest_row_t *row) {
    FILE *f = arg;
    json_t *o = json_object();
    if (!o) return 1;
    if (row->id) json_object_set_new(o, "id", json_string(row->id));
    json_object_set_new(o, "num_images", json_integer(row->num_images));
    json_t *files = json_array();
    for (int i = 0; i < row->n_files; i++)
        json_array_append_new(files, json_pack("{s:i, s:s, s:s, s:I}", "image", row->images[i],
                                               "path", row->paths[i], "sha256", row->sha256[i],
                                               "size", (json_int_t) row->sizes[i]));
    json_object_set_new(o, "images", files);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line) return 1;
    /* line and seed are written by hand: jansson's integers are signed, and a seed may use all
     * 64 bits. The rest ("{...}") follows them. */
    int rc = fprintf(f, "{\"line\":%lld,\"seed\":%" PRIu64 ",%s\n", (long long) row->line,
                     row->seed, line + 1) < 0;
    free(line);
    return rc;
}

int dq_server_write_manifest(dq_server_t *self, int64_t job_id) {
    dq_job_status_t job;
    if (dq_store_job_brief(self->store, job_id, &job) != DQ_STORE_OK)
        return -1;
    char path[sizeof job.out_dir + 32], temp[sizeof job.out_dir + 32];
    snprintf(path, sizeof path, "%s/results.jsonl", job.out_dir);
    snprintf(temp, sizeof temp, "%s/.results.jsonl.tmp", job.out_dir);
    mkdir(job.out_dir, 0755);
    FILE *f = fopen(temp, "w");
    if (!f) {
        dq_error("cannot write %s: %s", temp, strerror(errno));
        return -1;
    }
    int rc = dq_store_manifest(self->store, job_id, s_manifest_row, f) == DQ_STORE_OK ? 0 : -1;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = -1;
    if (fclose(f) != 0) rc = -1;
    if (rc == 0 && rename(temp, path) != 0) rc = -1;
    if (rc == 0) {
        int dfd = open(job.out_dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd); /* the rename itself survives a crash */
            close(dfd);
        }
        dq_info("manifest written job=%lld path=%s", (long long) job_id, path);
    } else {
        dq_error("cannot write %s: %s", path, strerror(errno));
        unlink(temp);
    }
    return rc;
}

void dq_server_job_maybe_finished(dq_server_t *self, int64_t job_id) {
    dq_job_status_t job;
    if (dq_store_job_brief(self->store, job_id, &job) != DQ_STORE_OK)
        return;
    if (job.state == DQ_STORE_JOB_DONE || job.state == DQ_STORE_JOB_FAILED ||
        job.state == DQ_STORE_JOB_CANCELLED) {
        dq_info("job finished job=%lld state=%s", (long long) job_id,
                dq_store_job_state_name(job.state));
        dq_server_write_manifest(self, job_id);
    }
}
