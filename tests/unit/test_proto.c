/* tests/unit/test_proto.c: the DQP codec: every message round-trips field for field (bytes and
 * zmsg), and each class of malformed input is rejected with its error code and a useful message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "common/proto_schema.h"
#include "tests/fuzz/proto_samples.h"

static char s_err[512];

/* ---- Field-by-field equality, written out per type (independent of the codec's tables). */

static void s_eq_str(const char *a, const char *b) {
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
}

static void s_eq_devices(const dq_device_t *a, const dq_device_t *b, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        s_eq_str(a[i].name, b[i].name);
        assert_int_equal(a[i].memory, b[i].memory);
    }
}

static void s_eq_models(char **a, char **b, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) s_eq_str(a[i], b[i]);
}

static void s_eq_requests(const dq_wire_request_t *a, const dq_wire_request_t *b, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(a[i].line, b[i].line);
        assert_int_equal(a[i].image_first, b[i].image_first);
        assert_int_equal(a[i].image_count, b[i].image_count);
        s_eq_str(a[i].prompt, b[i].prompt);
        s_eq_str(a[i].negative_prompt, b[i].negative_prompt);
        assert_true(a[i].seed == b[i].seed);
        assert_int_equal(a[i].steps, b[i].steps);
        assert_true(a[i].guidance == b[i].guidance);
        assert_int_equal(a[i].width, b[i].width);
        assert_int_equal(a[i].height, b[i].height);
        s_eq_str(a[i].scheduler, b[i].scheduler);
        assert_int_equal(a[i].num_images, b[i].num_images);
        s_eq_str(a[i].id, b[i].id);
    }
}

static void s_eq_meta(const dq_meta_t *a, uint32_t na, const dq_meta_t *b, uint32_t nb) {
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++) {
        s_eq_str(a[i].key, b[i].key);
        s_eq_str(a[i].value, b[i].value);
    }
}

static void s_eq_png(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    assert_int_equal(na, nb);
    assert_true(na > 0);
    assert_memory_equal(a, b, na);
}

static void s_eq_nodes(const dq_node_info_t *a, uint32_t na, const dq_node_info_t *b, uint32_t nb) {
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++) {
        s_eq_str(a[i].name, b[i].name);
        assert_int_equal(a[i].ranks, b[i].ranks);
        assert_int_equal(a[i].capacity, b[i].capacity);
        assert_int_equal(a[i].alive, b[i].alive);
        assert_int_equal(a[i].last_seen_ms, b[i].last_seen_ms);
        assert_int_equal(a[i].n_devices, b[i].n_devices);
        s_eq_devices(a[i].devices, b[i].devices, a[i].n_devices);
        assert_int_equal(a[i].n_models, b[i].n_models);
        s_eq_models(a[i].models, b[i].models, a[i].n_models);
        assert_int_equal(a[i].n_shards, b[i].n_shards);
        for (uint32_t k = 0; k < a[i].n_shards; k++)
            assert_true(a[i].shards[k] == b[i].shards[k]);
    }
}

static void s_eq_jobs(const dq_job_info_t *a, uint32_t na, const dq_job_info_t *b, uint32_t nb) {
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++) {
        assert_int_equal(a[i].id, b[i].id);
        s_eq_str(a[i].name, b[i].name);
        s_eq_str(a[i].model, b[i].model);
        s_eq_str(a[i].error, b[i].error);
        assert_int_equal(a[i].state, b[i].state);
        assert_int_equal(a[i].priority, b[i].priority);
        assert_int_equal(a[i].queued, b[i].queued);
        assert_int_equal(a[i].running, b[i].running);
        assert_int_equal(a[i].done, b[i].done);
        assert_int_equal(a[i].failed, b[i].failed);
        assert_true(a[i].images_per_s == b[i].images_per_s);
        assert_true(a[i].eta_s == b[i].eta_s);
    }
}

#define EQ(field) assert_true(a->field == b->field)

static void s_eq_msg(const dq_msg_t *a, const dq_msg_t *b) {
    assert_int_equal(a->cmd, b->cmd);
    switch (a->cmd) {
    case DQ_CMD_READY:
        s_eq_str(a->ready.name, b->ready.name);
        s_eq_str(a->ready.version, b->ready.version);
        EQ(ready.proto_minor), EQ(ready.ranks), EQ(ready.capacity);
        EQ(ready.n_devices), EQ(ready.n_models);
        s_eq_devices(a->ready.devices, b->ready.devices, a->ready.n_devices);
        s_eq_models(a->ready.models, b->ready.models, a->ready.n_models);
        EQ(ready.n_paths);
        s_eq_models(a->ready.paths, b->ready.paths, a->ready.n_paths);
        EQ(ready.max_batch), EQ(ready.boot);
        break;
    case DQ_CMD_CREDIT: EQ(credit.credit); break;
    case DQ_CMD_ASSIGN:
        EQ(assign.job), EQ(assign.shard), EQ(assign.attempt), EQ(assign.lease_ms);
        s_eq_str(a->assign.model, b->assign.model);
        EQ(assign.n_requests);
        s_eq_requests(a->assign.requests, b->assign.requests, a->assign.n_requests);
        EQ(assign.seq);
        break;
    case DQ_CMD_PROGRESS:
        EQ(progress.job), EQ(progress.shard), EQ(progress.attempt), EQ(progress.step);
        EQ(progress.steps);
        break;
    case DQ_CMD_RESULT:
        EQ(result.job), EQ(result.shard), EQ(result.attempt), EQ(result.chunk), EQ(result.line);
        EQ(result.image_index), EQ(result.seed), EQ(result.elapsed_ms);
        s_eq_meta(a->result.meta, a->result.n_meta, b->result.meta, b->result.n_meta);
        s_eq_png(a->result.png, a->result.png_size, b->result.png, b->result.png_size);
        break;
    case DQ_CMD_RESULT_ACK:
        EQ(result_ack.job), EQ(result_ack.shard), EQ(result_ack.attempt), EQ(result_ack.chunk);
        EQ(result_ack.stored);
        break;
    case DQ_CMD_SHARD_DONE:
        EQ(shard_done.job), EQ(shard_done.shard), EQ(shard_done.attempt), EQ(shard_done.images);
        break;
    case DQ_CMD_SHARD_FAILED:
        EQ(shard_failed.job), EQ(shard_failed.shard), EQ(shard_failed.attempt);
        EQ(shard_failed.fail_class);
        s_eq_str(a->shard_failed.message, b->shard_failed.message);
        break;
    case DQ_CMD_STOP:
        EQ(stop.job), EQ(stop.shard), EQ(stop.attempt), EQ(stop.reason);
        break;
    case DQ_CMD_HEARTBEAT:
        EQ(heartbeat.minor), EQ(heartbeat.credit_total), EQ(heartbeat.assigned_total);
        EQ(heartbeat.n_held), EQ(heartbeat.n_lost);
        for (uint32_t i = 0; i < a->heartbeat.n_held; i++)
            assert_true(a->heartbeat.held[i] == b->heartbeat.held[i]);
        for (uint32_t i = 0; i < a->heartbeat.n_lost; i++)
            assert_true(a->heartbeat.lost[i] == b->heartbeat.lost[i]);
        break;
    case DQ_CMD_NODES: break;
    case DQ_CMD_DISCONNECT: s_eq_str(a->disconnect.reason, b->disconnect.reason); break;
    case DQ_CMD_SUBMIT_BEGIN:
        s_eq_str(a->submit_begin.name, b->submit_begin.name);
        s_eq_str(a->submit_begin.model, b->submit_begin.model);
        s_eq_str(a->submit_begin.out_dir, b->submit_begin.out_dir);
        EQ(submit_begin.priority), EQ(submit_begin.requests);
        break;
    case DQ_CMD_SUBMIT_READY: EQ(submit_ready.upload), EQ(submit_ready.max_requests); break;
    case DQ_CMD_SUBMIT_CHUNK:
        EQ(submit_chunk.upload), EQ(submit_chunk.seq), EQ(submit_chunk.n_requests);
        s_eq_requests(a->submit_chunk.requests, b->submit_chunk.requests,
                      a->submit_chunk.n_requests);
        break;
    case DQ_CMD_SUBMIT_CHUNK_OK: EQ(submit_chunk_ok.upload), EQ(submit_chunk_ok.seq); break;
    case DQ_CMD_SUBMIT_COMMIT:
        EQ(submit_commit.upload), EQ(submit_commit.chunks), EQ(submit_commit.requests);
        break;
    case DQ_CMD_SUBMIT_OK: EQ(submit_ok.upload), EQ(submit_ok.job); break;
    case DQ_CMD_ERROR:
        EQ(error.code);
        s_eq_str(a->error.message, b->error.message);
        break;
    case DQ_CMD_STATUS: EQ(status.job); break;
    case DQ_CMD_STATUS_REPLY:
        s_eq_jobs(a->status_reply.jobs, a->status_reply.n_jobs, b->status_reply.jobs,
                  b->status_reply.n_jobs);
        s_eq_nodes(a->status_reply.nodes, a->status_reply.n_nodes, b->status_reply.nodes,
                   b->status_reply.n_nodes);
        break;
    case DQ_CMD_NODES_REPLY:
        s_eq_nodes(a->nodes_reply.nodes, a->nodes_reply.n_nodes, b->nodes_reply.nodes,
                   b->nodes_reply.n_nodes);
        break;
    case DQ_CMD_CANCEL:
    case DQ_CMD_PAUSE:
    case DQ_CMD_RESUME:
    case DQ_CMD_RETRY: EQ(job.job); break;
    case DQ_CMD_JOB_OK: EQ(job_ok.job), EQ(job_ok.state), EQ(job_ok.affected); break;
    case DQ_CMD_RESULTS_LIST:
        EQ(results_list.job), EQ(results_list.cursor), EQ(results_list.limit);
        break;
    case DQ_CMD_RESULTS_LIST_REPLY:
        EQ(results_list_reply.job), EQ(results_list_reply.next), EQ(results_list_reply.n_items);
        for (uint32_t i = 0; i < a->results_list_reply.n_items; i++) {
            const dq_result_item_t *x = &a->results_list_reply.items[i];
            const dq_result_item_t *y = &b->results_list_reply.items[i];
            assert_true(x->line == y->line && x->image_index == y->image_index);
            assert_true(x->seed == y->seed && x->size == y->size);
            s_eq_str(x->path, y->path);
        }
        break;
    case DQ_CMD_RESULT_FETCH:
        EQ(result_fetch.job), EQ(result_fetch.line), EQ(result_fetch.image_index);
        break;
    case DQ_CMD_RESULT_DATA:
        EQ(result_data.job), EQ(result_data.line), EQ(result_data.image_index);
        EQ(result_data.seed);
        s_eq_meta(a->result_data.meta, a->result_data.n_meta, b->result_data.meta,
                  b->result_data.n_meta);
        s_eq_png(a->result_data.png, a->result_data.png_size, b->result_data.png,
                 b->result_data.png_size);
        break;
    case DQ_CMD_NONE:
    case DQ_CMD_COUNT: fail_msg("not a command");
    }
}

/* ---- Tests. */

static void test_names_and_tables(void **state) {
    (void) state;
    for (int c = 1; c < DQ_CMD_COUNT; c++) {
        const char *name = dq_proto_command_name(c);
        assert_string_not_equal(name, "UNKNOWN");
        for (int d = 1; d < c; d++) assert_string_not_equal(name, dq_proto_command_name(d));
        assert_true(dq_proto_command_peer(c) < DQ_PEER_KIND_COUNT);
        assert_true(dq_proto_command_dir(c) != 0);
    }
    assert_string_equal(dq_proto_command_name(DQ_CMD_ASSIGN), "ASSIGN");
    assert_string_equal(dq_proto_command_name(0), "UNKNOWN");
    assert_string_equal(dq_proto_command_name(DQ_CMD_COUNT), "UNKNOWN");
    assert_string_equal(dq_proto_command_name(-1), "UNKNOWN");
    assert_int_equal(dq_proto_command_dir(DQ_CMD_ASSIGN), DQ_DIR_FROM_BROKER);
    assert_int_equal(dq_proto_command_peer(DQ_CMD_SUBMIT_CHUNK), DQ_PEER_CLIENT);
    assert_string_equal(dq_proto_header(DQ_PEER_NODE), "DQPN01");
    assert_null(dq_proto_header(DQ_PEER_KIND_COUNT));
    assert_string_equal(dq_proto_strerror(-DQ_PROTO_ETRAILING), "trailing bytes after body");
    assert_string_equal(dq_proto_fail_class_name(DQ_FAIL_OOM), "oom");
    assert_string_equal(dq_proto_stop_reason_name(DQ_STOP_FENCED), "fenced");
    assert_string_equal(dq_proto_job_state_name(DQ_JOB_DONE), "done");
    assert_string_equal(dq_proto_err_code_name(DQ_ERR_NOT_FOUND), "not-found");
    assert_string_equal(dq_proto_job_state_name(DQ_JOB_STATE_COUNT), "unknown");
    for (int r = 0; r < DQ_PROTO_RC_COUNT; r++) assert_non_null(dq_proto_strerror(r));
}

static void s_check_schema(const dq_schema_t *schema, int depth) {
    assert_true(depth < 4);
    assert_true(schema->n_fields <= 64); /* the decoder's seen-mask */
    for (size_t i = 0; i < schema->n_fields; i++) {
        const dq_field_t *f = &schema->fields[i];
        assert_true(f->key[0] != '\0' && strlen(f->key) <= 16);
        for (size_t j = 0; j < i; j++) assert_string_not_equal(f->key, schema->fields[j].key);
        assert_true(f->type < DQ_F_TYPE_COUNT);
        if (f->type == DQ_F_LIST) {
            assert_non_null(f->elem);
            s_check_schema(f->elem, depth + 1);
        }
        if (f->type >= DQ_F_LIST) assert_true(f->max > 0 && f->max < UINT32_MAX);
    }
}

/* The field tables themselves: unique short keys, bounded lists, PNG only where documented. */
static void test_schema_tables_sane(void **state) {
    (void) state;
    for (int c = 1; c < DQ_CMD_COUNT; c++) {
        const dq_cmd_info_t *info = dq_proto_cmd_info(c);
        assert_non_null(info);
        assert_non_null(info->body);
        s_check_schema(info->body, 0);
        assert_int_equal(info->has_png, c == DQ_CMD_RESULT || c == DQ_CMD_RESULT_DATA);
    }
    assert_null(dq_proto_cmd_info(0));
    assert_null(dq_proto_cmd_info(DQ_CMD_COUNT));
}

static void test_round_trip_every_message_bytes(void **state) {
    (void) state;
    for (int c = 1; c < DQ_CMD_COUNT; c++) {
        dq_msg_t in, out, again;
        dq_proto_frames_t f1, f2;
        assert_int_equal(dq_test_proto_sample((dq_cmd_t) c, &in), 0);
        s_err[0] = '\0';
        int rc = dq_proto_encode_frames(&in, &f1, s_err, sizeof s_err);
        if (rc != 0) fail_msg("%s: encode: %s", dq_proto_command_name(c), s_err);
        assert_int_equal(f1.n, (c == DQ_CMD_RESULT || c == DQ_CMD_RESULT_DATA) ? 4 : 3);
        assert_memory_equal(f1.data[0], dq_proto_header(dq_proto_command_peer(c)), 6);
        assert_int_equal(f1.data[1][0], c);
        rc = dq_proto_decode_frames(f1.data, f1.size, f1.n, &out, s_err, sizeof s_err);
        if (rc != 0) fail_msg("%s: decode: %s", dq_proto_command_name(c), s_err);
        s_eq_msg(&in, &out);
        assert_int_equal(out.peer, dq_proto_command_peer(c));
        /* Encoding is canonical: the decoded message encodes to the same bytes. */
        assert_int_equal(dq_proto_encode_frames(&out, &f2, s_err, sizeof s_err), 0);
        assert_int_equal(f1.n, f2.n);
        for (size_t i = 0; i < f1.n; i++) {
            assert_int_equal(f1.size[i], f2.size[i]);
            assert_memory_equal(f1.data[i], f2.data[i], f1.size[i]);
        }
        /* A second decode of the re-encoding (which borrows out's PNG) gives the same again. */
        assert_int_equal(dq_proto_decode_frames(f2.data, f2.size, f2.n, &again, NULL, 0), 0);
        s_eq_msg(&in, &again);
        dq_proto_frames_free(&f1);
        dq_proto_frames_free(&f2);
        dq_msg_clear(&out);
        assert_int_equal(out.cmd, DQ_CMD_NONE);
        dq_msg_clear(&again);
        dq_msg_clear(&again); /* idempotent */
        dq_msg_clear(&in);
    }
}

static void test_round_trip_every_message_zmsg(void **state) {
    (void) state;
    for (int c = 1; c < DQ_CMD_COUNT; c++) {
        dq_msg_t in, out;
        zmsg_t *zm = NULL;
        assert_int_equal(dq_test_proto_sample((dq_cmd_t) c, &in), 0);
        assert_int_equal(dq_proto_encode(&in, &zm, s_err, sizeof s_err), 0);
        assert_non_null(zm);
        /* The broker's ROUTER would see [identity] in front; it pops it before decoding. */
        zmsg_pushstr(zm, "node-identity");
        char *identity = zmsg_popstr(zm);
        assert_string_equal(identity, "node-identity");
        free(identity);
        int rc = dq_proto_decode(zm, &out, s_err, sizeof s_err);
        if (rc != 0) fail_msg("%s: %s", dq_proto_command_name(c), s_err);
        s_eq_msg(&in, &out);
        zmsg_destroy(&zm);
        dq_msg_clear(&out);
        dq_msg_clear(&in);
    }
}

/* Decodes [header][cmd][body](+[extra]) and checks the result code and that the message names
 * `needle`; a failed decode must leave the message cleared. */
static void s_expect(const char *header, int cmd, const void *body, size_t len, const void *extra,
                     size_t extra_len, int want_rc, const char *needle) {
    uint8_t c = (uint8_t) cmd;
    const uint8_t *frames[4] = {(const uint8_t *) header, &c, body, extra};
    size_t sizes[4] = {strlen(header), 1, len, extra_len};
    dq_msg_t out;
    s_err[0] = '\0';
    int rc = dq_proto_decode_frames(frames, sizes, extra ? 4 : 3, &out, s_err, sizeof s_err);
    if (rc != -want_rc)
        fail_msg("want %s (%d), got %d: %s", dq_proto_strerror(want_rc), -want_rc, rc, s_err);
    if (want_rc != 0) {
        assert_int_equal(out.cmd, DQ_CMD_NONE);
        if (needle && !strstr(s_err, needle)) fail_msg("message \"%s\" lacks \"%s\"", s_err, needle);
    } else {
        dq_msg_clear(&out);
    }
}

/* A tiny msgpack writer for hand-made bodies. */
static msgpack_sbuffer s_sb;
static msgpack_packer s_pk;

static void s_begin(uint32_t map_entries) {
    msgpack_sbuffer_init(&s_sb);
    msgpack_packer_init(&s_pk, &s_sb, msgpack_sbuffer_write);
    msgpack_pack_map(&s_pk, map_entries);
}

static void s_str(const char *s) {
    msgpack_pack_str(&s_pk, strlen(s));
    msgpack_pack_str_body(&s_pk, s, strlen(s));
}

static void s_kv_u(const char *key, uint64_t v) {
    s_str(key);
    msgpack_pack_uint64(&s_pk, v);
}

static void s_expect_body(int cmd, int want_rc, const char *needle) {
    const char *hdr = dq_proto_header(dq_proto_command_peer(cmd));
    s_expect(hdr, cmd, s_sb.data, s_sb.size, NULL, 0, want_rc, needle);
    msgpack_sbuffer_destroy(&s_sb);
}

static void test_bad_header(void **state) {
    (void) state;
    const uint8_t body[] = {0x81, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 0x01};
    s_expect("DQPN01", DQ_CMD_CREDIT, body, sizeof body, NULL, 0, 0, NULL); /* control */
    s_expect("MDPW01", DQ_CMD_CREDIT, body, sizeof body, NULL, 0, DQ_PROTO_EHEADER, "frame 0");
    s_expect("DQPN02", DQ_CMD_CREDIT, body, sizeof body, NULL, 0, DQ_PROTO_EHEADER, "version 02");
    s_expect("DQPN0", DQ_CMD_CREDIT, body, sizeof body, NULL, 0, DQ_PROTO_EHEADER, "header");
    s_expect("", DQ_CMD_CREDIT, body, sizeof body, NULL, 0, DQ_PROTO_EHEADER, "header");
}

static void test_unknown_or_misplaced_command(void **state) {
    (void) state;
    const uint8_t body[] = {0x80};
    s_expect("DQPN01", 0, body, 1, NULL, 0, DQ_PROTO_ECOMMAND, "unknown command 0");
    s_expect("DQPN01", DQ_CMD_COUNT, body, 1, NULL, 0, DQ_PROTO_ECOMMAND, "unknown command");
    s_expect("DQPN01", 255, body, 1, NULL, 0, DQ_PROTO_ECOMMAND, "unknown command 255");
    /* A client command under the node header, and the reverse. */
    s_expect("DQPN01", DQ_CMD_NODES, body, 1, NULL, 0, DQ_PROTO_ECOMMAND, "NODES");
    s_expect("DQPC01", DQ_CMD_HEARTBEAT, body, 1, NULL, 0, DQ_PROTO_ECOMMAND, "DQPC01");
    s_expect("DQPC01", DQ_CMD_NODES, body, 1, NULL, 0, 0, NULL);
    s_expect("DQPN01", DQ_CMD_HEARTBEAT, body, 1, NULL, 0, 0, NULL);
    /* Command frame of the wrong size. */
    const uint8_t *frames[3] = {(const uint8_t *) "DQPN01", (const uint8_t *) "\x0a\x0a", body};
    size_t sizes[3] = {6, 2, 1};
    dq_msg_t out;
    assert_int_equal(dq_proto_decode_frames(frames, sizes, 3, &out, s_err, sizeof s_err),
                     -DQ_PROTO_ECOMMAND);
}

static void test_wrong_frame_count(void **state) {
    (void) state;
    const uint8_t body[] = {0x80};
    const uint8_t *frames[2] = {(const uint8_t *) "DQPN01", (const uint8_t *) "\x0a"};
    size_t sizes[2] = {6, 1};
    dq_msg_t out;
    assert_int_equal(dq_proto_decode_frames(frames, sizes, 2, &out, s_err, sizeof s_err),
                     -DQ_PROTO_EFRAMES);
    assert_int_equal(dq_proto_decode_frames(NULL, NULL, 0, &out, s_err, sizeof s_err),
                     -DQ_PROTO_EFRAMES);
    /* HEARTBEAT with a stray raw frame; RESULT without its PNG. */
    s_expect("DQPN01", DQ_CMD_HEARTBEAT, body, 1, "x", 1, DQ_PROTO_EFRAMES, "expected 3");
    dq_msg_t res;
    dq_proto_frames_t f;
    assert_int_equal(dq_test_proto_sample(DQ_CMD_RESULT, &res), 0);
    assert_int_equal(dq_proto_encode_frames(&res, &f, s_err, sizeof s_err), 0);
    assert_int_equal(dq_proto_decode_frames(f.data, f.size, 3, &out, s_err, sizeof s_err),
                     -DQ_PROTO_EFRAMES);
    /* A raw frame that is not a PNG. */
    s_expect("DQPN01", DQ_CMD_RESULT, f.data[2], f.size[2], "GIF89a...", 9, DQ_PROTO_ETYPE,
             "not a PNG");
    dq_proto_frames_free(&f);
    dq_msg_clear(&res);
    /* Too many frames through the zmsg layer. */
    zmsg_t *zm = zmsg_new();
    for (int i = 0; i < 5; i++) zmsg_addstr(zm, "DQPN01");
    assert_int_equal(dq_proto_decode(zm, &out, s_err, sizeof s_err), -DQ_PROTO_EFRAMES);
    zmsg_destroy(&zm);
}

static void test_oversized_body(void **state) {
    (void) state;
    size_t n = DQ_PROTO_MAX_BODY + 1;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    s_expect("DQPN01", DQ_CMD_HEARTBEAT, big, n, NULL, 0, DQ_PROTO_ESIZE, "limit");
    free(big);
}

static void test_truncated_msgpack_every_prefix(void **state) {
    (void) state;
    dq_msg_t in;
    dq_proto_frames_t f;
    assert_int_equal(dq_test_proto_sample(DQ_CMD_ASSIGN, &in), 0);
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    for (size_t len = 0; len < f.size[2]; len++)
        s_expect("DQPN01", DQ_CMD_ASSIGN, f.data[2], len, NULL, 0, DQ_PROTO_EMSGPACK, NULL);
    s_expect("DQPN01", DQ_CMD_ASSIGN, f.data[2], f.size[2] - 1, NULL, 0, DQ_PROTO_EMSGPACK,
             "truncated");
    /* Trailing bytes after a complete body. */
    uint8_t *longer = malloc(f.size[2] + 1);
    assert_non_null(longer);
    memcpy(longer, f.data[2], f.size[2]);
    longer[f.size[2]] = 0xc0;
    s_expect("DQPN01", DQ_CMD_ASSIGN, longer, f.size[2] + 1, NULL, 0, DQ_PROTO_ETRAILING,
             "1 bytes after");
    free(longer);
    dq_proto_frames_free(&f);
    dq_msg_clear(&in);
    /* The never-used byte 0xc1. */
    const uint8_t c1[] = {0xc1};
    s_expect("DQPN01", DQ_CMD_HEARTBEAT, c1, 1, NULL, 0, DQ_PROTO_EMSGPACK, "0xc1");
}

static void test_lying_counts_do_not_allocate(void **state) {
    (void) state;
    /* {"reqs": array32 of 4294967295 values} in 11 bytes: must fail before msgpack-c allocates. */
    const uint8_t arr[] = {0x81, 0xa4, 'r', 'e', 'q', 's', 0xdd, 0xff, 0xff, 0xff, 0xff};
    s_expect("DQPN01", DQ_CMD_ASSIGN, arr, sizeof arr, NULL, 0, DQ_PROTO_EMSGPACK, "declares");
    const uint8_t map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    s_expect("DQPN01", DQ_CMD_ASSIGN, map, sizeof map, NULL, 0, DQ_PROTO_EMSGPACK, "declares");
    const uint8_t str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    s_expect("DQPN01", DQ_CMD_ASSIGN, str, sizeof str, NULL, 0, DQ_PROTO_EMSGPACK, "truncated");
    /* Nesting deeper than the limit: [[[[[[[[[[]]]]]]]]]]. */
    uint8_t deep[12];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0x90;
    s_expect("DQPN01", DQ_CMD_HEARTBEAT, deep, sizeof deep, NULL, 0, DQ_PROTO_EMSGPACK, "nested");
}

static void test_wrong_types(void **state) {
    (void) state;
    s_begin(1);
    s_str("credit");
    s_str("5");
    s_expect_body(DQ_CMD_CREDIT, DQ_PROTO_ETYPE, "credit: expected an integer, got string");
    /* Body that is not a map. */
    msgpack_sbuffer_init(&s_sb);
    msgpack_packer_init(&s_pk, &s_sb, msgpack_sbuffer_write);
    msgpack_pack_array(&s_pk, 0);
    s_expect_body(DQ_CMD_HEARTBEAT, DQ_PROTO_ETYPE, "expected a map");
    /* Non-string key. */
    s_begin(1);
    msgpack_pack_uint32(&s_pk, 1);
    msgpack_pack_uint32(&s_pk, 1);
    s_expect_body(DQ_CMD_CREDIT, DQ_PROTO_ETYPE, "expected a string");
    /* A boolean where a string list is expected, and a float where a bool is. */
    s_begin(1);
    s_str("stored");
    msgpack_pack_double(&s_pk, 1.0);
    s_expect_body(DQ_CMD_RESULT_ACK, DQ_PROTO_ETYPE, "stored: expected a boolean");
}

static void test_missing_and_duplicate_keys(void **state) {
    (void) state;
    s_begin(0);
    s_expect_body(DQ_CMD_CREDIT, DQ_PROTO_EMISSING, "credit: required key missing");
    s_begin(3);
    s_kv_u("job", 1);
    s_kv_u("shard", 2);
    s_kv_u("att", 3);
    s_expect_body(DQ_CMD_STOP, DQ_PROTO_EMISSING, "STOP: reason");
    s_begin(2);
    s_kv_u("credit", 1);
    s_kv_u("credit", 2);
    s_expect_body(DQ_CMD_CREDIT, DQ_PROTO_EDUPLICATE, "credit");
}

static void test_unknown_keys_are_ignored(void **state) {
    (void) state;
    s_begin(3);
    s_str("future");
    msgpack_pack_array(&s_pk, 2);
    msgpack_pack_nil(&s_pk);
    msgpack_pack_map(&s_pk, 0);
    s_kv_u("credit", 9);
    s_kv_u("zz", 1);
    const char *hdr = DQ_PROTO_HEADER_NODE;
    uint8_t c = DQ_CMD_CREDIT;
    const uint8_t *frames[3] = {(const uint8_t *) hdr, &c, (const uint8_t *) s_sb.data};
    size_t sizes[3] = {6, 1, s_sb.size};
    dq_msg_t out;
    assert_int_equal(dq_proto_decode_frames(frames, sizes, 3, &out, s_err, sizeof s_err), 0);
    assert_int_equal(out.credit.credit, 9);
    dq_msg_clear(&out);
    msgpack_sbuffer_destroy(&s_sb);
}

/* Keys added by a minor version are optional: a body without them (an older peer's) decodes,
 * and the encoder leaves them out when empty, so an older peer gets the body it knows. */
static void test_optional_keys(void **state) {
    (void) state;
    dq_msg_t in, out;
    dq_proto_frames_t f;
    assert_int_equal(dq_test_proto_sample(DQ_CMD_READY, &in), 0);
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    assert_non_null(memmem(f.data[2], f.size[2], "paths", 5));
    dq_proto_frames_free(&f);
    for (uint32_t i = 0; i < in.ready.n_paths; i++) free(in.ready.paths[i]);
    free(in.ready.paths);
    in.ready.paths = NULL;
    in.ready.n_paths = 0;
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    assert_null(memmem(f.data[2], f.size[2], "paths", 5));
    assert_int_equal(dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err), 0);
    assert_int_equal(out.ready.n_paths, 0);
    assert_null(out.ready.paths);
    assert_int_equal(out.ready.n_models, 2);
    dq_msg_clear(&out);
    dq_proto_frames_free(&f);
    dq_msg_clear(&in);
    /* A job without an error sends no "error" key; one with it round-trips (sample job 0). */
    assert_int_equal(dq_test_proto_sample(DQ_CMD_STATUS_REPLY, &in), 0);
    in.status_reply.n_jobs = 1;
    in.status_reply.jobs[0].error[0] = '\0';
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    assert_null(memmem(f.data[2], f.size[2], "error", 5));
    assert_int_equal(dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err), 0);
    assert_string_equal(out.status_reply.jobs[0].error, "");
    dq_msg_clear(&out);
    dq_proto_frames_free(&f);
    in.status_reply.n_jobs = 2;
    dq_msg_clear(&in);
    /* READY's batch size (minor 4): sent when known, absent (0) from an older node, and a value
     * outside 1..DQ_PROTO_MAX_BATCH_IMAGES is refused both ways. */
    assert_int_equal(dq_test_proto_sample(DQ_CMD_READY, &in), 0);
    assert_int_equal(in.ready.max_batch, 5);
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    const uint8_t *bimg = memmem(f.data[2], f.size[2], "\xa4" "bimg\x05", 6);
    assert_non_null(bimg);
    char *zero = f.body + (bimg + 5 - f.data[2]); /* the value, a positive fixint */
    *zero = 0;
    assert_int_equal(dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err),
                     -DQ_PROTO_ERANGE);
    assert_non_null(strstr(s_err, "0 outside 1..1024"));
    dq_proto_frames_free(&f);
    in.ready.max_batch = 0;
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    assert_null(memmem(f.data[2], f.size[2], "bimg", 4));
    assert_int_equal(dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err), 0);
    assert_int_equal(out.ready.max_batch, 0);
    dq_msg_clear(&out);
    dq_proto_frames_free(&f);
    in.ready.max_batch = DQ_PROTO_MAX_BATCH_IMAGES + 1;
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), -DQ_PROTO_ERANGE);
    /* READY's boot (minor 6): an older node sends none, and the broker reads 0. */
    in.ready.max_batch = 5;
    in.ready.boot = 0;
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    assert_null(memmem(f.data[2], f.size[2], "boot", 4));
    assert_int_equal(dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err), 0);
    assert_int_equal(out.ready.boot, 0);
    dq_msg_clear(&out);
    dq_proto_frames_free(&f);
    dq_msg_clear(&in);
    /* A node's HEARTBEAT (all counts 0) is the empty map an older broker expects. */
    in = (dq_msg_t){.cmd = DQ_CMD_HEARTBEAT};
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    assert_int_equal(f.size[2], 1);
    assert_int_equal(f.data[2][0], 0x80); /* fixmap of 0 entries */
    dq_proto_frames_free(&f);
}

static void test_counts_over_limit(void **state) {
    (void) state;
    /* ASSIGN with one request more than allowed: rejected on the count, before the entries. */
    s_begin(6);
    s_kv_u("job", 1);
    s_kv_u("shard", 1);
    s_kv_u("att", 0);
    s_kv_u("lease", 1000);
    s_str("model");
    s_str("sd15");
    s_str("reqs");
    msgpack_pack_array(&s_pk, DQ_PROTO_MAX_REQUESTS + 1);
    for (int i = 0; i <= DQ_PROTO_MAX_REQUESTS; i++) msgpack_pack_nil(&s_pk);
    s_expect_body(DQ_CMD_ASSIGN, DQ_PROTO_ECOUNT, "reqs: 257 entries, allowed 1..256");
    /* Empty list where at least one is required. */
    s_begin(6);
    s_kv_u("job", 1);
    s_kv_u("shard", 1);
    s_kv_u("att", 0);
    s_kv_u("lease", 1000);
    s_str("model");
    s_str("sd15");
    s_str("reqs");
    msgpack_pack_array(&s_pk, 0);
    s_expect_body(DQ_CMD_ASSIGN, DQ_PROTO_ECOUNT, "0 entries");
    /* The encoder refuses too. */
    dq_msg_t m;
    dq_proto_frames_t f;
    assert_int_equal(dq_test_proto_sample(DQ_CMD_ASSIGN, &m), 0);
    uint32_t n = m.assign.n_requests;
    m.assign.n_requests = DQ_PROTO_MAX_REQUESTS + 1;
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ECOUNT);
    assert_non_null(strstr(s_err, "ASSIGN: reqs"));
    m.assign.n_requests = n;
    dq_msg_clear(&m);
}

static void test_strings_too_long_or_not_utf8(void **state) {
    (void) state;
    char big[DQ_PROTO_MAX_MESSAGE + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    s_begin(2);
    s_kv_u("code", DQ_ERR_INTERNAL);
    s_str("msg");
    s_str(big);
    s_expect_body(DQ_CMD_ERROR, DQ_PROTO_ELENGTH, "msg: 1025 bytes, limit 1024");
    /* A bad prompt deep inside a SUBMIT_CHUNK names its path. */
    dq_msg_t m;
    dq_proto_frames_t f;
    assert_int_equal(dq_test_proto_sample(DQ_CMD_SUBMIT_CHUNK, &m), 0);
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), 0);
    uint8_t *body = malloc(f.size[2]);
    assert_non_null(body);
    memcpy(body, f.data[2], f.size[2]);
    uint8_t *hit = memmem(body, f.size[2], "a castle", 8);
    assert_non_null(hit);
    hit[2] = 0xff; /* invalid UTF-8 in reqs[1].prompt */
    s_expect("DQPC01", DQ_CMD_SUBMIT_CHUNK, body, f.size[2], NULL, 0, DQ_PROTO_EENCODING,
             "reqs[1].prompt");
    hit[2] = 0x00; /* embedded NUL */
    s_expect("DQPC01", DQ_CMD_SUBMIT_CHUNK, body, f.size[2], NULL, 0, DQ_PROTO_EENCODING,
             "reqs[1].prompt");
    free(body);
    dq_proto_frames_free(&f);
    /* The encoder checks prompts as well. */
    free(m.submit_chunk.requests[0].prompt);
    m.submit_chunk.requests[0].prompt = calloc(1, DQ_PROTO_MAX_PROMPT + 2);
    assert_non_null(m.submit_chunk.requests[0].prompt);
    memset(m.submit_chunk.requests[0].prompt, 'p', DQ_PROTO_MAX_PROMPT + 1);
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ELENGTH);
    assert_non_null(strstr(s_err, "reqs[0].prompt"));
    dq_msg_clear(&m);
}

static void test_integers_out_of_range(void **state) {
    (void) state;
    s_begin(1);
    s_kv_u("credit", 0);
    s_expect_body(DQ_CMD_CREDIT, DQ_PROTO_ERANGE, "0 outside 1..1024");
    s_begin(1);
    s_kv_u("credit", DQ_PROTO_MAX_CREDIT + 1);
    s_expect_body(DQ_CMD_CREDIT, DQ_PROTO_ERANGE, "outside");
    s_begin(1);
    s_str("credit");
    msgpack_pack_int64(&s_pk, -1);
    s_expect_body(DQ_CMD_CREDIT, DQ_PROTO_ERANGE, "negative value -1");
    s_begin(4);
    s_kv_u("job", 1);
    s_kv_u("shard", 1);
    s_kv_u("att", UINT64_C(1) << 32); /* does not fit uint32 */
    s_kv_u("reason", 0);
    s_expect_body(DQ_CMD_STOP, DQ_PROTO_ERANGE, "att");
    s_begin(4);
    s_kv_u("job", 1);
    s_kv_u("shard", 1);
    s_kv_u("att", 1);
    s_kv_u("reason", DQ_STOP_REASON_COUNT); /* enum out of range */
    s_expect_body(DQ_CMD_STOP, DQ_PROTO_ERANGE, "reason");
    /* Signed field: priority beyond its range either way. */
    dq_msg_t m;
    dq_proto_frames_t f;
    assert_int_equal(dq_test_proto_sample(DQ_CMD_SUBMIT_BEGIN, &m), 0);
    m.submit_begin.priority = 1001;
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ERANGE);
    m.submit_begin.priority = -1000;
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), 0);
    dq_proto_frames_free(&f);
    dq_msg_clear(&m);
    /* Doubles: NaN and out of range are refused by the encoder. */
    assert_int_equal(dq_test_proto_sample(DQ_CMD_ASSIGN, &m), 0);
    m.assign.requests[0].guidance = NAN;
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ERANGE);
    m.assign.requests[0].guidance = DQ_PROTO_MAX_GUIDANCE * 2;
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ERANGE);
    assert_non_null(strstr(s_err, "reqs[0].cfg"));
    dq_msg_clear(&m);
}

static void test_disconnect_under_both_headers(void **state) {
    (void) state;
    for (int k = 0; k < DQ_PEER_KIND_COUNT; k++) {
        dq_msg_t in, out;
        dq_proto_frames_t f;
        assert_int_equal(dq_test_proto_sample(DQ_CMD_DISCONNECT, &in), 0);
        in.peer = (dq_peer_kind_t) k;
        assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
        assert_memory_equal(f.data[0], dq_proto_header((dq_peer_kind_t) k), DQ_PROTO_HEADER_LEN);
        assert_int_equal(dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err), 0);
        assert_int_equal(out.peer, k);
        s_eq_msg(&in, &out);
        dq_proto_frames_free(&f);
        dq_msg_clear(&out);
        dq_msg_clear(&in);
    }
    /* Other commands keep their own header whatever peer says; decoding reports it. */
    dq_msg_t in, out;
    dq_proto_frames_t f;
    assert_int_equal(dq_test_proto_sample(DQ_CMD_STATUS, &in), 0);
    in.peer = DQ_PEER_NODE;
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), 0);
    assert_memory_equal(f.data[0], DQ_PROTO_HEADER_CLIENT, DQ_PROTO_HEADER_LEN);
    assert_int_equal(dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err), 0);
    assert_int_equal(out.peer, DQ_PEER_CLIENT);
    dq_proto_frames_free(&f);
    dq_msg_clear(&out);
    dq_msg_clear(&in);
    /* An invalid peer for DISCONNECT is refused. */
    assert_int_equal(dq_test_proto_sample(DQ_CMD_DISCONNECT, &in), 0);
    in.peer = DQ_PEER_KIND_COUNT;
    assert_int_equal(dq_proto_encode_frames(&in, &f, s_err, sizeof s_err), -DQ_PROTO_ERANGE);
    dq_msg_clear(&in);
}

/* A string of n copies of c (owned). */
static char *s_fill(char c, size_t n) {
    char *p = malloc(n + 1);
    assert_non_null(p);
    memset(p, c, n);
    p[n] = '\0';
    return p;
}

static void s_round_trip_big(const dq_msg_t *in) {
    dq_proto_frames_t f;
    dq_msg_t out;
    int rc = dq_proto_encode_frames(in, &f, s_err, sizeof s_err);
    if (rc != 0) fail_msg("%s", s_err);
    assert_true(f.size[2] <= DQ_PROTO_MAX_BODY);
    rc = dq_proto_decode_frames(f.data, f.size, f.n, &out, s_err, sizeof s_err);
    if (rc != 0) fail_msg("%s", s_err);
    s_eq_msg(in, &out);
    dq_msg_clear(&out);
    dq_proto_frames_free(&f);
}

/* The limits agree with each other: the largest legal messages fit the body limit and the
 * decoder's value budget. */
static void test_largest_messages_fit(void **state) {
    (void) state;
    dq_msg_t m;
    memset(&m, 0, sizeof m);
    m.cmd = DQ_CMD_SUBMIT_CHUNK;
    m.submit_chunk.upload = UINT64_MAX;
    m.submit_chunk.seq = UINT32_MAX;
    m.submit_chunk.requests = calloc(DQ_PROTO_MAX_REQUESTS, sizeof(dq_wire_request_t));
    assert_non_null(m.submit_chunk.requests);
    m.submit_chunk.n_requests = DQ_PROTO_MAX_REQUESTS;
    for (int i = 0; i < DQ_PROTO_MAX_REQUESTS; i++) {
        dq_wire_request_t *r = &m.submit_chunk.requests[i];
        r->line = UINT64_MAX;
        r->image_first = DQ_PROTO_MAX_IMAGES_PER_PROMPT - 1;
        r->image_count = DQ_PROTO_MAX_IMAGES_PER_PROMPT;
        r->prompt = s_fill('p', DQ_PROTO_MAX_PROMPT);
        r->negative_prompt = s_fill('n', DQ_PROTO_MAX_PROMPT);
        r->seed = UINT64_MAX;
        r->steps = DQ_PROTO_MAX_STEPS;
        r->guidance = 7.25;
        r->width = r->height = DQ_PROTO_MAX_SIDE;
        memset(r->scheduler, 's', DQ_PROTO_MAX_NAME);
        r->num_images = DQ_PROTO_MAX_IMAGES_PER_PROMPT;
        memset(r->id, 'i', DQ_PROTO_MAX_NAME);
    }
    s_round_trip_big(&m);
    dq_msg_clear(&m);

    m.cmd = DQ_CMD_STATUS_REPLY;
    dq_msg_status_reply_t *st = &m.status_reply;
    st->jobs = calloc(DQ_PROTO_MAX_JOBS, sizeof *st->jobs);
    st->nodes = calloc(DQ_PROTO_MAX_NODES, sizeof *st->nodes);
    assert_non_null(st->jobs);
    assert_non_null(st->nodes);
    st->n_jobs = DQ_PROTO_MAX_JOBS;
    st->n_nodes = DQ_PROTO_MAX_NODES;
    for (int i = 0; i < DQ_PROTO_MAX_JOBS; i++) {
        dq_job_info_t *j = &st->jobs[i];
        j->id = j->queued = j->running = j->done = j->failed = UINT64_MAX;
        memset(j->name, 'j', DQ_PROTO_MAX_NAME);
        memset(j->model, 'm', DQ_PROTO_MAX_NAME);
        j->priority = -1000;
        j->images_per_s = 1.5;
        j->eta_s = 1e9;
    }
    for (int i = 0; i < DQ_PROTO_MAX_NODES; i++) {
        dq_node_info_t *n = &st->nodes[i];
        memset(n->name, 'n', DQ_PROTO_MAX_NAME);
        n->ranks = DQ_PROTO_MAX_RANKS;
        n->capacity = DQ_PROTO_MAX_CREDIT;
        n->last_seen_ms = UINT64_MAX;
        n->devices = calloc(DQ_PROTO_MAX_DEVICES, sizeof *n->devices);
        n->models = calloc(DQ_PROTO_MAX_MODELS, sizeof *n->models);
        n->shards = calloc(DQ_PROTO_MAX_NODE_SHARDS, sizeof *n->shards);
        assert_true(n->devices && n->models && n->shards);
        n->n_devices = DQ_PROTO_MAX_DEVICES;
        n->n_models = DQ_PROTO_MAX_MODELS;
        n->n_shards = DQ_PROTO_MAX_NODE_SHARDS;
        for (int d = 0; d < DQ_PROTO_MAX_DEVICES; d++) {
            memset(n->devices[d].name, 'd', DQ_PROTO_MAX_NAME);
            n->devices[d].memory = UINT64_MAX;
        }
        for (int k = 0; k < DQ_PROTO_MAX_MODELS; k++) n->models[k] = s_fill('m', DQ_PROTO_MAX_NAME);
        for (int k = 0; k < DQ_PROTO_MAX_NODE_SHARDS; k++) n->shards[k] = UINT64_MAX - (uint64_t) k;
    }
    s_round_trip_big(&m);
    dq_msg_clear(&m);
}

static void test_encoder_rejects_bad_messages(void **state) {
    (void) state;
    dq_msg_t m;
    dq_proto_frames_t f;
    memset(&m, 0, sizeof m);
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ECOMMAND);
    m.cmd = DQ_CMD_COUNT;
    assert_int_equal(dq_proto_encode_frames(&m, &f, NULL, 0), -DQ_PROTO_ECOMMAND);
    /* A list count without its array. */
    memset(&m, 0, sizeof m);
    m.cmd = DQ_CMD_ASSIGN;
    m.assign.lease_ms = 1;
    m.assign.n_requests = 1;
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ECOUNT);
    assert_non_null(strstr(s_err, "no array"));
    /* A fixed-size name without its terminating NUL. */
    memset(&m, 0, sizeof m);
    m.cmd = DQ_CMD_DISCONNECT;
    memset(m.disconnect.reason, 'r', sizeof m.disconnect.reason);
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ELENGTH);
    /* RESULT without a PNG. */
    assert_int_equal(dq_test_proto_sample(DQ_CMD_RESULT, &m), 0);
    m.result.png[1] = 'X';
    assert_int_equal(dq_proto_encode_frames(&m, &f, s_err, sizeof s_err), -DQ_PROTO_ETYPE);
    dq_msg_clear(&m);
    zmsg_t *zm = (zmsg_t *) &m; /* must be reset to NULL on failure */
    memset(&m, 0, sizeof m);
    assert_int_equal(dq_proto_encode(&m, &zm, s_err, sizeof s_err), -DQ_PROTO_ECOMMAND);
    assert_null(zm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_tables),
        cmocka_unit_test(test_schema_tables_sane),
        cmocka_unit_test(test_round_trip_every_message_bytes),
        cmocka_unit_test(test_round_trip_every_message_zmsg),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_unknown_or_misplaced_command),
        cmocka_unit_test(test_wrong_frame_count),
        cmocka_unit_test(test_oversized_body),
        cmocka_unit_test(test_truncated_msgpack_every_prefix),
        cmocka_unit_test(test_lying_counts_do_not_allocate),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_and_duplicate_keys),
        cmocka_unit_test(test_unknown_keys_are_ignored),
        cmocka_unit_test(test_optional_keys),
        cmocka_unit_test(test_counts_over_limit),
        cmocka_unit_test(test_strings_too_long_or_not_utf8),
        cmocka_unit_test(test_integers_out_of_range),
        cmocka_unit_test(test_disconnect_under_both_headers),
        cmocka_unit_test(test_largest_messages_fit),
        cmocka_unit_test(test_encoder_rejects_bad_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
