/* broker/server_client.c: the client side of the broker: job uploads (SUBMIT_BEGIN, CHUNK,
 * COMMIT), STATUS and NODES, job actions, and results paging and fetching. One reply each. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/server_int.h"
#include "common/job_wire.h"
#include "common/log.h"

#define DQ_BROKER_RATE_WINDOW_MS 30000 /* images/s is measured over the last 30 s */

static dq_upload_t *s_upload(dq_server_t *self, uint64_t id) {
    for (int i = 0; i < self->n_uploads; i++)
        if (self->uploads[i].id == id) return &self->uploads[i];
    return NULL;
}

static void s_upload_remove(dq_server_t *self, dq_upload_t *up) {
    if (!up->committed && dq_store_job_abort(self->store, up->job) != DQ_STORE_OK)
        dq_warn("discarding upload %" PRIu64 ": %s", up->id, dq_store_errmsg(self->store));
    *up = self->uploads[--self->n_uploads];
}

void dq_server_uploads_tick(dq_server_t *self, int64_t now) {
    for (int i = self->n_uploads - 1; i >= 0; i--) {
        dq_upload_t *up = &self->uploads[i];
        if (now - up->last_ms < self->params.upload_timeout_ms) continue;
        if (!up->committed)
            dq_info("upload idle for %lld ms: discarded upload=%" PRIu64 " job=%lld",
                    (long long) (now - up->last_ms), up->id, (long long) up->job);
        s_upload_remove(self, up);
    }
}

/* mkdir -p */
static int s_mkdirs(const char *path) {
    char buf[DQ_PROTO_MAX_PATH + 64];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void s_submit_begin(dq_server_t *self, zframe_t *id, const dq_msg_submit_begin_t *b) {
    if (self->n_uploads == DQ_BROKER_MAX_UPLOADS) {
        dq_server_error(self, id, DQ_ERR_LIMIT, "too many uploads in progress (%d); try again",
                        DQ_BROKER_MAX_UPLOADS);
        return;
    }
    uint64_t upload = ++self->next_upload;
    bool own_out = b->out_dir && b->out_dir[0];
    if (own_out && b->out_dir[0] != '/') {
        dq_server_error(self, id, DQ_ERR_BAD_REQUEST, "output folder '%s' is not an absolute path",
                        b->out_dir);
        return;
    }
    if (!b->model[0]) {
        dq_server_error(self, id, DQ_ERR_BAD_REQUEST, "no model named");
        return;
    }
    /* Without --out the images go to <state>/out/<job id>. */
    char base[DQ_PROTO_MAX_PATH + 64];
    snprintf(base, sizeof base, "%s/out", self->state_dir);
    dq_job_params_t jp = {.name = b->name[0] ? b->name : "job",
                          .model = b->model,
                          .out_dir = own_out ? b->out_dir : NULL,
                          .out_base = base,
                          .priority = b->priority,
                          .shard_size = self->params.shard_size};
    int64_t job = 0;
    char made[DQ_PROTO_MAX_PATH + 64];
    if (dq_store_job_begin(self->store, &jp, dq_server_now(), &job) != DQ_STORE_OK) {
        dq_server_error(self, id, DQ_ERR_INTERNAL, "cannot create the job: %s",
                        dq_store_errmsg(self->store));
        return;
    }
    const char *out = b->out_dir;
    if (!own_out) {
        if (dq_store_job_out_dir(self->store, job, made, sizeof made) != DQ_STORE_OK) {
            dq_server_error(self, id, DQ_ERR_INTERNAL, "cannot create the job: %s",
                            dq_store_errmsg(self->store));
            dq_store_job_abort(self->store, job);
            return;
        }
        out = made;
    }
    if (s_mkdirs(out) != 0) {
        dq_server_error(self, id, DQ_ERR_BAD_REQUEST, "cannot create output folder %s: %s", out,
                        strerror(errno));
        dq_store_job_abort(self->store, job);
        return;
    }
    dq_upload_t *up = &self->uploads[self->n_uploads++];
    *up = (dq_upload_t){
        .id = upload, .job = job, .expected = b->requests, .last_ms = dq_server_now()};
    up->owner_len = zframe_size(id) <= sizeof up->owner ? zframe_size(id) : 0;
    memcpy(up->owner, zframe_data(id), up->owner_len);
    dq_msg_t m = {.cmd = DQ_CMD_SUBMIT_READY};
    m.submit_ready =
        (dq_msg_submit_ready_t){.upload = upload, .max_requests = DQ_PROTO_MAX_REQUESTS};
    dq_info("upload begun upload=%" PRIu64 " job=%lld name=%s out=%s requests=%" PRIu64, upload,
            (long long) job, jp.name, out, b->requests);
    dq_server_send(self, id, &m);
}

static void s_submit_chunk(dq_server_t *self, zframe_t *id, const dq_msg_submit_chunk_t *c) {
    dq_upload_t *up = s_upload(self, c->upload);
    if (!up || up->committed) {
        dq_server_error(self, id, DQ_ERR_UPLOAD, "no upload %" PRIu64 " in progress (expired?)",
                        c->upload);
        return;
    }
    dq_msg_t ok = {.cmd = DQ_CMD_SUBMIT_CHUNK_OK};
    ok.submit_chunk_ok = (dq_msg_submit_chunk_ok_t){.upload = c->upload, .seq = c->seq};
    if (c->seq + 1 == up->next_seq) { /* a retry of the chunk stored last: already done */
        dq_server_send(self, id, &ok);
        return;
    }
    if (c->seq != up->next_seq) {
        dq_server_error(self, id, DQ_ERR_UPLOAD, "upload %" PRIu64 ": chunk %u, expected %u",
                        c->upload, c->seq, up->next_seq);
        return;
    }
    if (up->n_requests + c->n_requests > up->expected) {
        dq_server_error(self, id, DQ_ERR_UPLOAD,
                        "upload %" PRIu64 ": more requests than the %" PRIu64 " announced",
                        c->upload, up->expected);
        return;
    }
    /* Each request is checked as a job file's line would be and stored as its canonical JSON:
     * the job form is the only stored form (common/job_wire.h). */
    dq_store_request_t reqs[DQ_PROTO_MAX_REQUESTS];
    dq_request_t parsed[DQ_PROTO_MAX_REQUESTS];
    char *json[DQ_PROTO_MAX_REQUESTS] = {0};
    char name[48], why[DQ_PROTO_MAX_MESSAGE - 64] = "";
    snprintf(name, sizeof name, "job %lld", (long long) up->job);
    uint32_t n = 0;
    for (; n < c->n_requests; n++) {
        dq_request_t *q = &parsed[n];
        if (dq_request_from_wire(name, &c->requests[n], NULL, q, NULL, NULL, why, sizeof why) != 0)
            break;
        if (!(json[n] = dq_request_to_json(q))) {
            snprintf(why, sizeof why, "out of memory");
            dq_request_clear(q);
            break;
        }
        reqs[n] = (dq_store_request_t){.line = (int64_t) q->line,
                                       .json = json[n],
                                       .id = q->id_assigned ? NULL : q->id,
                                       .seed = q->seed,
                                       .num_images = q->num_images_per_prompt,
                                       .width = q->width,
                                       .height = q->height,
                                       .steps = q->num_inference_steps,
                                       .scheduler = dq_scheduler_name(q->scheduler)};
    }
    dq_store_rc_t rc = n < c->n_requests ? DQ_STORE_INVALID
                                         : dq_store_job_add(self->store, up->job, reqs, n);
    for (uint32_t i = 0; i < n; i++) {
        free(json[i]);
        dq_request_clear(&parsed[i]);
    }
    if (rc != DQ_STORE_OK) {
        dq_server_error(self, id, rc == DQ_STORE_DB ? DQ_ERR_INTERNAL : DQ_ERR_BAD_REQUEST,
                        "upload %" PRIu64 " chunk %u: %s", c->upload, c->seq,
                        why[0] ? why : dq_store_errmsg(self->store));
        return;
    }
    up->next_seq++;
    up->n_requests += c->n_requests;
    up->last_ms = dq_server_now();
    dq_server_send(self, id, &ok);
}

static void s_submit_commit(dq_server_t *self, zframe_t *id, const dq_msg_submit_commit_t *c) {
    dq_upload_t *up = s_upload(self, c->upload);
    if (!up) {
        dq_server_error(self, id, DQ_ERR_UPLOAD, "no upload %" PRIu64 " (expired?)", c->upload);
        return;
    }
    if (!up->committed) {
        if (c->chunks != up->next_seq || c->requests != up->n_requests ||
            c->requests != up->expected) {
            dq_server_error(self, id, DQ_ERR_UPLOAD,
                            "upload %" PRIu64 ": commit says %u chunks and %" PRIu64
                            " requests, the broker stored %u and %" PRIu64 " of %" PRIu64,
                            c->upload, c->chunks, c->requests, up->next_seq, up->n_requests,
                            up->expected);
            return;
        }
        if (dq_store_job_commit(self->store, up->job, dq_server_now()) != DQ_STORE_OK) {
            dq_server_error(self, id, DQ_ERR_INTERNAL, "cannot queue the job: %s",
                            dq_store_errmsg(self->store));
            return;
        }
        up->committed = true; /* kept a while so a retried COMMIT gets the same answer */
        up->last_ms = dq_server_now();
        self->dispatch_due = true;
        dq_info("job queued job=%lld requests=%" PRIu64, (long long) up->job, up->n_requests);
    }
    dq_msg_t m = {.cmd = DQ_CMD_SUBMIT_OK};
    m.submit_ok = (dq_msg_submit_ok_t){.upload = c->upload, .job = (uint64_t) up->job};
    dq_server_send(self, id, &m);
}

static void s_job_info(const dq_job_status_t *s, dq_job_info_t *j) {
    memset(j, 0, sizeof *j);
    j->id = (uint64_t) s->id;
    snprintf(j->name, sizeof j->name, "%.128s", s->name);
    snprintf(j->model, sizeof j->model, "%.128s", s->model);
    j->state = dq_server_wire_state(s->state);
    j->priority = s->priority;
    j->done = (uint64_t) s->images_committed;
    j->failed = (uint64_t) s->images_failed;
    j->running = (uint64_t) s->images_running;
    j->queued = s->state == DQ_STORE_JOB_CANCELLED ? 0 : (uint64_t) s->images_queued;
    j->images_per_s = s->images_per_s;
    j->eta_s = s->eta_s;
    if (j->failed > 0) snprintf(j->error, sizeof j->error, "%s", s->last_error);
}

typedef struct {
    dq_job_info_t *jobs;
    uint32_t n;
} s_list_t;

static int s_list_job(void *arg, const dq_job_status_t *s) {
    s_list_t *l = arg;
    if (l->n == DQ_PROTO_MAX_JOBS) { /* keep the newest: drop the oldest */
        memmove(l->jobs, l->jobs + 1, (DQ_PROTO_MAX_JOBS - 1) * sizeof *l->jobs);
        l->n--;
    }
    s_job_info(s, &l->jobs[l->n++]);
    return 0;
}

static int s_nodes(dq_server_t *self, dq_node_info_t **nodes, uint32_t *n) {
    *nodes = calloc((size_t) self->n_nodes + 1, sizeof **nodes);
    *n = 0;
    if (!*nodes) return -1;
    int64_t now = dq_server_now();
    for (int i = 0; i < self->n_nodes; i++) {
        (*n)++;
        if (dq_server_node_info(self->nodes[i], now, &(*nodes)[i]) != 0) return -1;
    }
    return 0;
}

static void s_status(dq_server_t *self, zframe_t *id, uint64_t job) {
    dq_msg_t m = {.cmd = DQ_CMD_STATUS_REPLY};
    dq_msg_status_reply_t *r = &m.status_reply;
    int64_t now = dq_server_now();
    if (job) {
        dq_job_status_t s;
        dq_store_rc_t rc =
            dq_store_job_status(self->store, (int64_t) job, now, DQ_BROKER_RATE_WINDOW_MS, &s);
        if (rc != DQ_STORE_OK) {
            dq_server_error(self, id, rc == DQ_STORE_NOT_FOUND ? DQ_ERR_NOT_FOUND : DQ_ERR_INTERNAL,
                            "job %" PRIu64 ": %s", job, dq_store_errmsg(self->store));
            return;
        }
        r->jobs = calloc(1, sizeof *r->jobs);
        if (r->jobs) {
            s_job_info(&s, r->jobs);
            r->n_jobs = 1;
        }
    } else {
        s_list_t l = {calloc(DQ_PROTO_MAX_JOBS, sizeof *l.jobs), 0};
        r->jobs = l.jobs;
        if (l.jobs && dq_store_job_list(self->store, now, DQ_BROKER_RATE_WINDOW_MS, s_list_job,
                                        &l) != DQ_STORE_OK) {
            dq_msg_clear(&m);
            dq_server_error(self, id, DQ_ERR_INTERNAL, "%s", dq_store_errmsg(self->store));
            return;
        }
        r->n_jobs = l.n;
    }
    if (!r->jobs || s_nodes(self, &r->nodes, &r->n_nodes) != 0) {
        dq_msg_clear(&m);
        dq_server_error(self, id, DQ_ERR_INTERNAL, "out of memory");
        return;
    }
    dq_server_send(self, id, &m);
    dq_msg_clear(&m);
}

static void s_action(dq_server_t *self, zframe_t *id, dq_cmd_t cmd, uint64_t job_id) {
    int64_t now = dq_server_now(), job = (int64_t) job_id;
    int n = 0;
    dq_job_status_t before;
    dq_store_rc_t rc = dq_store_job_status(self->store, job, now, 1000, &before);
    if (rc == DQ_STORE_OK) {
        switch (cmd) {
        case DQ_CMD_CANCEL:
            rc = dq_store_cancel(self->store, job, now);
            break;
        case DQ_CMD_PAUSE:
            rc = dq_store_pause(self->store, job, now);
            break;
        case DQ_CMD_RESUME:
            rc = dq_store_resume(self->store, job, now);
            break;
        default:
            rc = dq_store_retry(self->store, job, now, &n);
            break;
        }
    }
    if (rc != DQ_STORE_OK) {
        dq_err_code_t code = rc == DQ_STORE_NOT_FOUND ? DQ_ERR_NOT_FOUND
                             : rc == DQ_STORE_INVALID ? DQ_ERR_STATE
                                                      : DQ_ERR_INTERNAL;
        dq_server_error(self, id, code, "%s job %" PRIu64 ": %s", dq_proto_command_name(cmd),
                        job_id, dq_store_errmsg(self->store));
        return;
    }
    dq_job_status_t after;
    dq_store_job_status(self->store, job, now, 1000, &after);
    dq_msg_t m = {.cmd = DQ_CMD_JOB_OK};
    m.job_ok.job = job_id;
    m.job_ok.state = dq_server_wire_state(after.state);
    /* Images the action touched: those not yet rendered (cancel, pause, resume), or the
     * images of the requeued requests (retry). */
    int64_t open = before.n_images - before.images_committed;
    m.job_ok.affected =
        (uint64_t) (cmd == DQ_CMD_RETRY
                        ? (before.requests_failed - after.requests_failed) *
                              (before.n_requests ? before.n_images / before.n_requests : 1)
                        : open);
    if (cmd == DQ_CMD_CANCEL) {
        dq_server_nodes_stop_job(self, job, DQ_STOP_CANCELLED);
        dq_server_write_manifest(self, job);
    }
    if (cmd == DQ_CMD_RESUME || cmd == DQ_CMD_RETRY) self->dispatch_due = true;
    dq_info("%s job=%lld state=%s", dq_proto_command_name(cmd), (long long) job,
            dq_store_job_state_name(after.state));
    dq_server_send(self, id, &m);
}

/* Pages through a job's results.jsonl rows: cursor is the first line to include. */
typedef struct {
    uint64_t cursor, next;
    uint32_t limit;
    dq_result_item_t *items;
    uint32_t n;
    uint64_t want_line; /* RESULT_FETCH: the line and image looked for */
    int want_image;
    char path[DQ_PROTO_MAX_PATH + 1];
    uint64_t seed;
    bool found;
} s_page_t;

static int s_page_row(void *arg, const dq_manifest_row_t *row) {
    s_page_t *p = arg;
    if (p->want_line) {
        if ((uint64_t) row->line != p->want_line) return 0;
        for (int i = 0; i < row->n_files; i++)
            if (row->images[i] == p->want_image) {
                snprintf(p->path, sizeof p->path, "%s", row->paths[i]);
                p->seed = row->seed;
                p->found = true;
            }
        return 1; /* stop: the line is unique */
    }
    if ((uint64_t) row->line < p->cursor || row->n_files == 0) return 0;
    if (p->n + (uint32_t) row->n_files > p->limit) {
        if (p->n == 0) return 1; /* a row larger than the page cannot happen: limit >= 64 */
        p->next = (uint64_t) row->line;
        return 1;
    }
    for (int i = 0; i < row->n_files; i++) {
        dq_result_item_t *it = &p->items[p->n];
        it->line = (uint64_t) row->line;
        it->image_index = (uint32_t) row->images[i];
        it->seed = row->seed;
        it->size = (uint64_t) row->sizes[i];
        it->path = strdup(row->paths[i]);
        if (!it->path) return 1;
        p->n++;
    }
    return 0;
}

static void s_results_list(dq_server_t *self, zframe_t *id, const dq_msg_results_list_t *l) {
    dq_job_status_t s;
    if (dq_store_job_status(self->store, (int64_t) l->job, dq_server_now(), 1000, &s) !=
        DQ_STORE_OK) {
        dq_server_error(self, id, DQ_ERR_NOT_FOUND, "no job %" PRIu64, l->job);
        return;
    }
    s_page_t p = {.cursor = l->cursor, .limit = l->limit < 64 ? 64 : l->limit};
    if (p.limit > DQ_PROTO_MAX_RESULTS) p.limit = DQ_PROTO_MAX_RESULTS;
    dq_msg_t m = {.cmd = DQ_CMD_RESULTS_LIST_REPLY};
    p.items = calloc(p.limit, sizeof *p.items);
    m.results_list_reply.items = p.items;
    if (!p.items) {
        dq_server_error(self, id, DQ_ERR_INTERNAL, "out of memory");
        return;
    }
    dq_store_rc_t rc = dq_store_manifest(self->store, (int64_t) l->job, s_page_row, &p);
    m.results_list_reply.n_items = p.n;
    if (rc != DQ_STORE_OK && rc != DQ_STORE_INVALID) { /* INVALID: we stopped the walk */
        dq_msg_clear(&m);
        dq_server_error(self, id, DQ_ERR_INTERNAL, "%s", dq_store_errmsg(self->store));
        return;
    }
    m.results_list_reply.job = l->job;
    m.results_list_reply.next = p.next;
    dq_server_send(self, id, &m);
    dq_msg_clear(&m);
}

static void s_result_fetch(dq_server_t *self, zframe_t *id, const dq_msg_result_fetch_t *f) {
    dq_job_status_t s;
    if (dq_store_job_status(self->store, (int64_t) f->job, dq_server_now(), 1000, &s) !=
        DQ_STORE_OK) {
        dq_server_error(self, id, DQ_ERR_NOT_FOUND, "no job %" PRIu64, f->job);
        return;
    }
    s_page_t p = {.want_line = f->line, .want_image = (int) f->image_index};
    dq_store_manifest(self->store, (int64_t) f->job, s_page_row, &p);
    if (!p.found) {
        dq_server_error(self, id, DQ_ERR_NOT_FOUND, "job %" PRIu64 ": no image %u of line %" PRIu64,
                        f->job, f->image_index, f->line);
        return;
    }
    char path[sizeof s.out_dir + DQ_PROTO_MAX_PATH + 2];
    snprintf(path, sizeof path, "%s/%s", s.out_dir, p.path);
    zchunk_t *data = NULL;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        data = zchunk_read(fp, DQ_PROTO_MAX_PNG + 1);
        fclose(fp);
    }
    if (!data || zchunk_size(data) == 0 || zchunk_size(data) > DQ_PROTO_MAX_PNG) {
        dq_server_error(self, id, DQ_ERR_INTERNAL, "cannot read %s: %s", path,
                        data ? "empty or too large" : strerror(errno));
        zchunk_destroy(&data);
        return;
    }
    dq_msg_t m = {.cmd = DQ_CMD_RESULT_DATA};
    m.result_data.job = f->job;
    m.result_data.line = f->line;
    m.result_data.image_index = f->image_index;
    m.result_data.seed = p.seed;
    m.result_data.png = zchunk_data(data); /* borrowed for the send */
    m.result_data.png_size = zchunk_size(data);
    dq_server_send(self, id, &m);
    zchunk_destroy(&data);
}

void dq_server_client_message(dq_server_t *self, zframe_t *identity, dq_msg_t *msg) {
    switch (msg->cmd) {
    case DQ_CMD_SUBMIT_BEGIN:
        s_submit_begin(self, identity, &msg->submit_begin);
        break;
    case DQ_CMD_SUBMIT_CHUNK:
        s_submit_chunk(self, identity, &msg->submit_chunk);
        break;
    case DQ_CMD_SUBMIT_COMMIT:
        s_submit_commit(self, identity, &msg->submit_commit);
        break;
    case DQ_CMD_STATUS:
        s_status(self, identity, msg->status.job);
        break;
    case DQ_CMD_NODES: {
        dq_msg_t m = {.cmd = DQ_CMD_NODES_REPLY};
        if (s_nodes(self, &m.nodes_reply.nodes, &m.nodes_reply.n_nodes) != 0)
            dq_server_error(self, identity, DQ_ERR_INTERNAL, "out of memory");
        else
            dq_server_send(self, identity, &m);
        dq_msg_clear(&m);
        break;
    }
    case DQ_CMD_CANCEL:
    case DQ_CMD_PAUSE:
    case DQ_CMD_RESUME:
    case DQ_CMD_RETRY:
        s_action(self, identity, msg->cmd, msg->job.job);
        break;
    case DQ_CMD_RESULTS_LIST:
        s_results_list(self, identity, &msg->results_list);
        break;
    case DQ_CMD_RESULT_FETCH:
        s_result_fetch(self, identity, &msg->result_fetch);
        break;
    case DQ_CMD_DISCONNECT:
        /* The client is gone: its unfinished uploads go at once (committed ones stay). */
        for (int i = self->n_uploads - 1; i >= 0; i--) {
            dq_upload_t *up = &self->uploads[i];
            if (up->committed || up->owner_len != zframe_size(identity) ||
                memcmp(up->owner, zframe_data(identity), up->owner_len) != 0)
                continue;
            dq_info("client disconnected: discarded upload=%" PRIu64 " job=%lld", up->id,
                    (long long) up->job);
            s_upload_remove(self, up);
        }
        break;
    default:
        dq_server_error(self, identity, DQ_ERR_BAD_REQUEST, "unexpected %s",
                        dq_proto_command_name(msg->cmd));
    }
}
