/* tests/fuzz/proto_samples.c: sample DQP messages (every field set) for tests and seed corpora. */
#include "tests/fuzz/proto_samples.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t s_png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                'I',  'H', 'D', 'R', 0,    0,    0,    1,    0, 0, 0, 1};

static char *s_dup(const char *s) {
    return strdup(s);
}

static void s_copy(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}
#define COPY(dst, src) s_copy(dst, sizeof dst, src)

static dq_wire_request_t *s_requests(uint32_t n) {
    dq_wire_request_t *r = calloc(n, sizeof *r);
    if (!r) return NULL;
    for (uint32_t i = 0; i < n; i++) {
        r[i].line = 10 + i;
        r[i].image_first = 1;
        r[i].image_count = 2;
        r[i].prompt = s_dup(i == 0 ? "a watercolour fox, \xc3\xa9t\xc3\xa9 \xe2\x9c\x93" : "a castle");
        r[i].negative_prompt = s_dup(i == 0 ? "blurry" : "");
        r[i].seed = UINT64_C(0xfedcba9876543210) + i;
        r[i].steps = 25 + i;
        r[i].guidance = 7.5;
        r[i].width = 512;
        r[i].height = 768;
        COPY(r[i].scheduler, "euler_a");
        r[i].num_images = 4;
        COPY(r[i].id, i == 0 ? "fox-01" : ""); /* with an id, and without */
    }
    return r;
}

static char **s_models(void) {
    char **m = calloc(2, sizeof *m);
    if (!m) return NULL;
    m[0] = s_dup("sd15");
    m[1] = s_dup("sd15-inpaint");
    return m;
}

static dq_device_t *s_devices(void) {
    dq_device_t *d = calloc(2, sizeof *d);
    if (!d) return NULL;
    COPY(d[0].name, "cuda:0 NVIDIA H100");
    d[0].memory = UINT64_C(85899345920);
    COPY(d[1].name, "cuda:1 NVIDIA H100");
    d[1].memory = UINT64_C(85899345921);
    return d;
}

static dq_meta_t *s_meta(void) {
    dq_meta_t *m = calloc(2, sizeof *m);
    if (!m) return NULL;
    COPY(m[0].key, "sampler");
    m[0].value = s_dup("euler_a");
    COPY(m[1].key, "model_sha256");
    m[1].value = s_dup("0123abcd");
    return m;
}

static uint8_t *s_png_copy(size_t *size) {
    uint8_t *p = malloc(sizeof s_png);
    if (p) memcpy(p, s_png, sizeof s_png);
    *size = p ? sizeof s_png : 0;
    return p;
}

static dq_node_info_t *s_nodes(void) {
    dq_node_info_t *n = calloc(2, sizeof *n);
    if (!n) return NULL;
    COPY(n[0].name, "gpu-a01");
    n[0].ranks = 8;
    n[0].capacity = 16;
    n[0].alive = true;
    n[0].last_seen_ms = 250;
    n[0].devices = s_devices();
    n[0].n_devices = n[0].devices ? 2 : 0;
    n[0].models = s_models();
    n[0].n_models = n[0].models ? 2 : 0;
    n[0].shards = calloc(3, sizeof(uint64_t));
    if (n[0].shards) {
        n[0].shards[0] = 7, n[0].shards[1] = 8, n[0].shards[2] = UINT64_MAX;
        n[0].n_shards = 3;
    }
    COPY(n[1].name, "cpu-b02"); /* a second node with empty lists */
    n[1].ranks = 1;
    n[1].capacity = 1;
    n[1].alive = false;
    n[1].last_seen_ms = 61000;
    return n;
}

static dq_job_info_t *s_jobs(void) {
    dq_job_info_t *j = calloc(2, sizeof *j);
    if (!j) return NULL;
    for (int i = 0; i < 2; i++) {
        j[i].id = 41 + (uint64_t) i;
        COPY(j[i].name, i ? "night-run" : "portraits");
        COPY(j[i].model, "sd15");
        j[i].state = i ? DQ_JOB_PAUSED : DQ_JOB_RUNNING;
        j[i].priority = i ? -5 : 10;
        j[i].queued = 100, j[i].running = 8, j[i].done = 1234, j[i].failed = 2;
        j[i].images_per_s = 3.25;
        j[i].eta_s = i ? -1.0 : 33.5;
        COPY(j[i].error, i ? "" : "no connected node serves model 'sd21'; nodes serve: sd15");
    }
    return j;
}

static void s_ids(uint64_t *job, uint64_t *shard, uint32_t *attempt) {
    *job = 42;
    *shard = UINT64_C(1) << 40;
    *attempt = 3;
}

int dq_test_proto_sample(dq_cmd_t cmd, dq_msg_t *msg) {
    memset(msg, 0, sizeof *msg);
    msg->cmd = cmd;
    switch (cmd) {
    case DQ_CMD_READY: {
        dq_msg_ready_t *m = &msg->ready;
        COPY(m->name, "gpu-a01");
        COPY(m->version, "diffq 0.1.0");
        m->proto_minor = DQ_PROTO_MINOR + 7;
        m->ranks = 8;
        m->capacity = 16;
        m->max_batch = 5;
        m->boot = UINT64_C(0x8000000000000001); /* needs all 8 bytes */
        m->devices = s_devices();
        m->n_devices = 2;
        m->models = s_models();
        m->n_models = 2;
        m->paths = calloc(2, sizeof *m->paths);
        if (m->paths) {
            m->paths[0] = s_dup("/models/sd15.safetensors");
            m->paths[1] = s_dup(""); /* given by name */
            m->n_paths = 2;
        }
        return m->devices && m->models && m->paths && m->paths[0] && m->paths[1] ? 0 : -1;
    }
    case DQ_CMD_CREDIT:
        msg->credit.credit = 5;
        return 0;
    case DQ_CMD_ASSIGN: {
        dq_msg_assign_t *m = &msg->assign;
        s_ids(&m->job, &m->shard, &m->attempt);
        m->lease_ms = 90000;
        COPY(m->model, "sd15");
        m->requests = s_requests(2);
        m->n_requests = 2;
        m->seq = 7;
        return m->requests ? 0 : -1;
    }
    case DQ_CMD_PROGRESS:
        s_ids(&msg->progress.job, &msg->progress.shard, &msg->progress.attempt);
        msg->progress.step = 12;
        msg->progress.steps = 50;
        return 0;
    case DQ_CMD_RESULT: {
        dq_msg_result_t *m = &msg->result;
        s_ids(&m->job, &m->shard, &m->attempt);
        m->chunk = 6;
        m->line = 11;
        m->image_index = 3;
        m->seed = 987654321;
        m->elapsed_ms = 4200;
        m->meta = s_meta();
        m->n_meta = 2;
        m->png = s_png_copy(&m->png_size);
        return m->meta && m->png ? 0 : -1;
    }
    case DQ_CMD_RESULT_ACK:
        s_ids(&msg->result_ack.job, &msg->result_ack.shard, &msg->result_ack.attempt);
        msg->result_ack.chunk = 6;
        msg->result_ack.stored = true;
        return 0;
    case DQ_CMD_SHARD_DONE:
        s_ids(&msg->shard_done.job, &msg->shard_done.shard, &msg->shard_done.attempt);
        msg->shard_done.images = 8;
        return 0;
    case DQ_CMD_SHARD_FAILED:
        s_ids(&msg->shard_failed.job, &msg->shard_failed.shard, &msg->shard_failed.attempt);
        msg->shard_failed.fail_class = DQ_FAIL_OOM;
        COPY(msg->shard_failed.message, "CUDA out of memory: tried to allocate 2.00 GiB");
        return 0;
    case DQ_CMD_STOP:
        s_ids(&msg->stop.job, &msg->stop.shard, &msg->stop.attempt);
        msg->stop.reason = DQ_STOP_FENCED;
        return 0;
    case DQ_CMD_HEARTBEAT: { /* every key: a broker's credit counts, a node's held and lost */
        dq_msg_heartbeat_t *h = &msg->heartbeat;
        *h = (dq_msg_heartbeat_t){.minor = DQ_PROTO_MINOR, .credit_total = 12,
                                  .assigned_total = 9};
        h->held = malloc(2 * sizeof *h->held);
        h->lost = malloc(sizeof *h->lost);
        if (!h->held || !h->lost) return -1;
        h->held[0] = 41, h->held[1] = 3, h->n_held = 2;
        h->lost[0] = 8, h->n_lost = 1;
        return 0;
    }
    case DQ_CMD_NODES:
        return 0;
    case DQ_CMD_DISCONNECT:
        COPY(msg->disconnect.reason, "SIGTERM");
        return 0;
    case DQ_CMD_SUBMIT_BEGIN: {
        dq_msg_submit_begin_t *m = &msg->submit_begin;
        COPY(m->name, "portraits");
        COPY(m->model, "sd15");
        m->out_dir = s_dup("/data/out/portraits");
        m->priority = -7;
        m->requests = 100000;
        return m->out_dir ? 0 : -1;
    }
    case DQ_CMD_SUBMIT_READY:
        msg->submit_ready.upload = 77;
        msg->submit_ready.max_requests = 200;
        return 0;
    case DQ_CMD_SUBMIT_CHUNK:
        msg->submit_chunk.upload = 77;
        msg->submit_chunk.seq = 4;
        msg->submit_chunk.requests = s_requests(3);
        msg->submit_chunk.n_requests = 3;
        return msg->submit_chunk.requests ? 0 : -1;
    case DQ_CMD_SUBMIT_CHUNK_OK:
        msg->submit_chunk_ok.upload = 77;
        msg->submit_chunk_ok.seq = 4;
        return 0;
    case DQ_CMD_SUBMIT_COMMIT:
        msg->submit_commit.upload = 77;
        msg->submit_commit.chunks = 500;
        msg->submit_commit.requests = 100000;
        return 0;
    case DQ_CMD_SUBMIT_OK:
        msg->submit_ok.upload = 77;
        msg->submit_ok.job = 42;
        return 0;
    case DQ_CMD_ERROR:
        msg->error.code = DQ_ERR_UNKNOWN_MODEL;
        COPY(msg->error.message, "no node serves model \"sd21\"");
        return 0;
    case DQ_CMD_STATUS:
        msg->status.job = 42;
        return 0;
    case DQ_CMD_STATUS_REPLY:
        msg->status_reply.jobs = s_jobs();
        msg->status_reply.n_jobs = 2;
        msg->status_reply.nodes = s_nodes();
        msg->status_reply.n_nodes = 2;
        return msg->status_reply.jobs && msg->status_reply.nodes ? 0 : -1;
    case DQ_CMD_NODES_REPLY:
        msg->nodes_reply.nodes = s_nodes();
        msg->nodes_reply.n_nodes = 2;
        return msg->nodes_reply.nodes ? 0 : -1;
    case DQ_CMD_CANCEL:
    case DQ_CMD_PAUSE:
    case DQ_CMD_RESUME:
    case DQ_CMD_RETRY:
        msg->job.job = 40 + (uint64_t) cmd;
        return 0;
    case DQ_CMD_JOB_OK:
        msg->job_ok.job = 42;
        msg->job_ok.state = DQ_JOB_CANCELLED;
        msg->job_ok.affected = 108;
        return 0;
    case DQ_CMD_RESULTS_LIST:
        msg->results_list.job = 42;
        msg->results_list.cursor = 1000;
        msg->results_list.limit = 100;
        return 0;
    case DQ_CMD_RESULTS_LIST_REPLY: {
        dq_msg_results_list_reply_t *m = &msg->results_list_reply;
        m->job = 42;
        m->next = 1100;
        m->items = calloc(2, sizeof *m->items);
        if (!m->items) return -1;
        m->n_items = 2;
        for (uint32_t i = 0; i < 2; i++) {
            m->items[i].line = 5 + i;
            m->items[i].image_index = i;
            m->items[i].seed = 1000 + i;
            m->items[i].path = s_dup(i ? "000006-01.png" : "000005-00.png");
            m->items[i].size = 654321 + i;
            if (!m->items[i].path) return -1;
        }
        return 0;
    }
    case DQ_CMD_RESULT_FETCH:
        msg->result_fetch.job = 42;
        msg->result_fetch.line = 5;
        msg->result_fetch.image_index = 1;
        return 0;
    case DQ_CMD_RESULT_DATA: {
        dq_msg_result_data_t *m = &msg->result_data;
        m->job = 42;
        m->line = 5;
        m->image_index = 1;
        m->seed = 1001;
        m->meta = s_meta();
        m->n_meta = 2;
        m->png = s_png_copy(&m->png_size);
        return m->meta && m->png ? 0 : -1;
    }
    case DQ_CMD_NONE:
    case DQ_CMD_COUNT:
        break;
    }
    msg->cmd = DQ_CMD_NONE;
    return -1;
}

size_t dq_test_proto_pack_input(const dq_proto_frames_t *frames, uint8_t *buf, size_t cap) {
    size_t need = 0;
    for (size_t i = 0; i < frames->n; i++) {
        uint32_t len = (uint32_t) frames->size[i];
        uint8_t prefix[4] = {(uint8_t) len, (uint8_t) (len >> 8), (uint8_t) (len >> 16),
                             (uint8_t) (len >> 24)};
        if (need + 4 <= cap) memcpy(buf + need, prefix, 4);
        need += 4;
        if (need + len <= cap && len) memcpy(buf + need, frames->data[i], len);
        need += len;
    }
    return need;
}
