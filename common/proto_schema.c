/* common/proto_schema.c: the field tables of every DQP message body and the command table. This
 * file is the single definition of what each message carries on the wire (docs/protocol.md
 * repeats it in prose; keep the two in step). */
#include "common/proto_schema.h"

#include <stdbool.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define MEMBER_CAP(T, m) (sizeof(((T *) 0)->m) - 1)

#define F_U32(k, T, m, lo, hi) {.key = k, .type = DQ_F_U32, .off = offsetof(T, m), .min = lo, .max = hi}
#define F_U64(k, T, m, lo, hi) {.key = k, .type = DQ_F_U64, .off = offsetof(T, m), .min = lo, .max = hi}
#define F_ID(k, T, m) F_U64(k, T, m, 0, UINT64_MAX)
#define F_I32(k, T, m, lo, hi)                                                                     \
    {.key = k, .type = DQ_F_I32, .off = offsetof(T, m), .min = lo, .max = (uint64_t) (hi)}
#define F_F64(k, T, m, lo, hi) {.key = k, .type = DQ_F_F64, .off = offsetof(T, m), .dmin = lo, .dmax = hi}
#define F_BOOL(k, T, m) {.key = k, .type = DQ_F_BOOL, .off = offsetof(T, m)}
#define F_STR(k, T, m) {.key = k, .type = DQ_F_STR, .off = offsetof(T, m), .max = MEMBER_CAP(T, m)}
#define F_TEXT(k, T, m, n) {.key = k, .type = DQ_F_TEXT, .off = offsetof(T, m), .max = n}
#define F_LIST(k, T, m, cnt, lo, hi, sch)                                                          \
    {.key = k, .type = DQ_F_LIST, .off = offsetof(T, m), .count_off = offsetof(T, cnt), .min = lo, \
     .max = hi, .elem = &sch}
#define F_TEXTLIST(k, T, m, cnt, lo, hi, len)                                                      \
    {.key = k, .type = DQ_F_TEXTLIST, .off = offsetof(T, m), .count_off = offsetof(T, cnt),       \
     .min = lo, .max = hi, .elem_max = len}
#define F_U64LIST(k, T, m, cnt, hi)                                                                \
    {.key = k, .type = DQ_F_U64LIST, .off = offsetof(T, m), .count_off = offsetof(T, cnt), .max = hi}
#define F_META(k, T, m, cnt)                                                                       \
    {.key = k, .type = DQ_F_META, .off = offsetof(T, m), .count_off = offsetof(T, cnt),           \
     .max = DQ_PROTO_MAX_META}
/* Optional fields (added by a minor version; see dq_field_t.optional). */
#define F_OPT_STR(k, T, m)                                                                         \
    {.key = k, .type = DQ_F_STR, .off = offsetof(T, m), .max = MEMBER_CAP(T, m), .optional = true}
#define F_OPT_TEXTLIST(k, T, m, cnt, hi, len)                                                      \
    {.key = k, .type = DQ_F_TEXTLIST, .off = offsetof(T, m), .count_off = offsetof(T, cnt),       \
     .max = hi, .elem_max = len, .optional = true}
#define F_OPT_U32(k, T, m)                                                                         \
    {.key = k, .type = DQ_F_U32, .off = offsetof(T, m), .max = UINT32_MAX, .optional = true}
#define F_OPT_U32_RANGE(k, T, m, lo, hi) /* 0 is "absent"; a value sent must be in lo..hi */  \
    {.key = k, .type = DQ_F_U32, .off = offsetof(T, m), .min = lo, .max = hi, .optional = true}
#define F_OPT_U64LIST(k, T, m, cnt, hi)                                                            \
    {.key = k, .type = DQ_F_U64LIST, .off = offsetof(T, m), .count_off = offsetof(T, cnt),        \
     .max = hi, .optional = true}
#define F_OPT_U64(k, T, m)                                                                         \
    {.key = k, .type = DQ_F_U64, .off = offsetof(T, m), .max = UINT64_MAX, .optional = true}
#define SCHEMA(var, nm, T, arr) static const dq_schema_t var = {nm, sizeof(T), arr, N_OF(arr)}

/* ---- Shared element types. */
static const dq_field_t s_device_f[] = {
    F_STR("name", dq_device_t, name),
    F_ID("mem", dq_device_t, memory),
};
SCHEMA(s_device, "device", dq_device_t, s_device_f);

static const dq_field_t s_request_f[] = {
    F_U64("line", dq_wire_request_t, line, 1, UINT64_MAX),
    F_U32("img0", dq_wire_request_t, image_first, 0, DQ_PROTO_MAX_IMAGES_PER_PROMPT - 1),
    F_U32("imgn", dq_wire_request_t, image_count, 1, DQ_PROTO_MAX_IMAGES_PER_PROMPT),
    F_TEXT("prompt", dq_wire_request_t, prompt, DQ_PROTO_MAX_PROMPT),
    F_TEXT("neg", dq_wire_request_t, negative_prompt, DQ_PROTO_MAX_PROMPT),
    F_ID("seed", dq_wire_request_t, seed),
    F_U32("steps", dq_wire_request_t, steps, 1, DQ_PROTO_MAX_STEPS),
    F_F64("cfg", dq_wire_request_t, guidance, 0.0, DQ_PROTO_MAX_GUIDANCE),
    F_U32("w", dq_wire_request_t, width, 8, DQ_PROTO_MAX_SIDE),
    F_U32("h", dq_wire_request_t, height, 8, DQ_PROTO_MAX_SIDE),
    F_STR("sched", dq_wire_request_t, scheduler),
    F_U32("n", dq_wire_request_t, num_images, 1, DQ_PROTO_MAX_IMAGES_PER_PROMPT),
    F_OPT_STR("id", dq_wire_request_t, id), /* minor 2 */
};
SCHEMA(s_request, "request", dq_wire_request_t, s_request_f);

static const dq_field_t s_job_info_f[] = {
    F_ID("id", dq_job_info_t, id),
    F_STR("name", dq_job_info_t, name),
    F_STR("model", dq_job_info_t, model),
    F_U32("state", dq_job_info_t, state, 0, DQ_JOB_STATE_COUNT - 1),
    F_I32("prio", dq_job_info_t, priority, -1000, 1000),
    F_ID("queued", dq_job_info_t, queued),
    F_ID("running", dq_job_info_t, running),
    F_ID("done", dq_job_info_t, done),
    F_ID("failed", dq_job_info_t, failed),
    F_F64("ips", dq_job_info_t, images_per_s, 0.0, 1e9),
    F_F64("eta", dq_job_info_t, eta_s, -1.0, 1e12),
    F_OPT_STR("error", dq_job_info_t, error), /* minor 1 */
};
SCHEMA(s_job_info, "job", dq_job_info_t, s_job_info_f);

static const dq_field_t s_node_info_f[] = {
    F_STR("name", dq_node_info_t, name),
    F_U32("ranks", dq_node_info_t, ranks, 0, DQ_PROTO_MAX_RANKS),
    F_U32("cap", dq_node_info_t, capacity, 0, DQ_PROTO_MAX_CREDIT),
    F_BOOL("alive", dq_node_info_t, alive),
    F_ID("seen", dq_node_info_t, last_seen_ms),
    F_LIST("devs", dq_node_info_t, devices, n_devices, 0, DQ_PROTO_MAX_DEVICES, s_device),
    F_TEXTLIST("models", dq_node_info_t, models, n_models, 0, DQ_PROTO_MAX_MODELS, DQ_PROTO_MAX_NAME),
    F_U64LIST("shards", dq_node_info_t, shards, n_shards, DQ_PROTO_MAX_NODE_SHARDS),
};
SCHEMA(s_node_info, "node", dq_node_info_t, s_node_info_f);

static const dq_field_t s_result_item_f[] = {
    F_U64("line", dq_result_item_t, line, 1, UINT64_MAX),
    F_U32("img", dq_result_item_t, image_index, 0, DQ_PROTO_MAX_IMAGES_PER_PROMPT - 1),
    F_ID("seed", dq_result_item_t, seed),
    F_TEXT("path", dq_result_item_t, path, DQ_PROTO_MAX_PATH),
    F_U64("size", dq_result_item_t, size, 0, DQ_PROTO_MAX_PNG),
};
SCHEMA(s_result_item, "result", dq_result_item_t, s_result_item_f);

/* ---- Node <-> broker bodies. */
static const dq_field_t s_ready_f[] = {
    F_STR("name", dq_msg_ready_t, name),
    F_STR("ver", dq_msg_ready_t, version),
    F_U32("minor", dq_msg_ready_t, proto_minor, 0, UINT32_MAX),
    F_U32("ranks", dq_msg_ready_t, ranks, 1, DQ_PROTO_MAX_RANKS),
    F_U32("cap", dq_msg_ready_t, capacity, 1, DQ_PROTO_MAX_CREDIT),
    F_LIST("devs", dq_msg_ready_t, devices, n_devices, 1, DQ_PROTO_MAX_DEVICES, s_device),
    F_TEXTLIST("models", dq_msg_ready_t, models, n_models, 1, DQ_PROTO_MAX_MODELS, DQ_PROTO_MAX_NAME),
    F_OPT_TEXTLIST("paths", dq_msg_ready_t, paths, n_paths, DQ_PROTO_MAX_MODELS,
                   DQ_PROTO_MAX_PATH), /* minor 1 */
    F_OPT_U32_RANGE("bimg", dq_msg_ready_t, max_batch, 1, DQ_PROTO_MAX_BATCH_IMAGES), /* minor 4 */
    F_OPT_U64("boot", dq_msg_ready_t, boot), /* minor 6 */
};
SCHEMA(s_ready, "READY", dq_msg_ready_t, s_ready_f);

static const dq_field_t s_credit_f[] = {
    F_U32("credit", dq_msg_credit_t, credit, 1, DQ_PROTO_MAX_CREDIT),
};
SCHEMA(s_credit, "CREDIT", dq_msg_credit_t, s_credit_f);

static const dq_field_t s_assign_f[] = {
    F_ID("job", dq_msg_assign_t, job),
    F_ID("shard", dq_msg_assign_t, shard),
    F_U32("att", dq_msg_assign_t, attempt, 0, UINT32_MAX),
    F_U32("lease", dq_msg_assign_t, lease_ms, 1, UINT32_MAX),
    F_STR("model", dq_msg_assign_t, model),
    F_LIST("reqs", dq_msg_assign_t, requests, n_requests, 1, DQ_PROTO_MAX_REQUESTS, s_request),
    F_OPT_U64("seq", dq_msg_assign_t, seq), /* minor 5 */
};
SCHEMA(s_assign, "ASSIGN", dq_msg_assign_t, s_assign_f);

static const dq_field_t s_progress_f[] = {
    F_ID("job", dq_msg_progress_t, job),
    F_ID("shard", dq_msg_progress_t, shard),
    F_U32("att", dq_msg_progress_t, attempt, 0, UINT32_MAX),
    F_U32("step", dq_msg_progress_t, step, 0, UINT32_MAX),
    F_U32("steps", dq_msg_progress_t, steps, 0, UINT32_MAX),
};
SCHEMA(s_progress, "PROGRESS", dq_msg_progress_t, s_progress_f);

static const dq_field_t s_result_f[] = {
    F_ID("job", dq_msg_result_t, job),
    F_ID("shard", dq_msg_result_t, shard),
    F_U32("att", dq_msg_result_t, attempt, 0, UINT32_MAX),
    F_U32("chunk", dq_msg_result_t, chunk, 0, UINT32_MAX),
    F_U64("line", dq_msg_result_t, line, 1, UINT64_MAX),
    F_U32("img", dq_msg_result_t, image_index, 0, DQ_PROTO_MAX_IMAGES_PER_PROMPT - 1),
    F_ID("seed", dq_msg_result_t, seed),
    F_U32("ms", dq_msg_result_t, elapsed_ms, 0, UINT32_MAX),
    F_META("meta", dq_msg_result_t, meta, n_meta),
};
SCHEMA(s_result, "RESULT", dq_msg_result_t, s_result_f);

static const dq_field_t s_result_ack_f[] = {
    F_ID("job", dq_msg_result_ack_t, job),
    F_ID("shard", dq_msg_result_ack_t, shard),
    F_U32("att", dq_msg_result_ack_t, attempt, 0, UINT32_MAX),
    F_U32("chunk", dq_msg_result_ack_t, chunk, 0, UINT32_MAX),
    F_BOOL("stored", dq_msg_result_ack_t, stored),
};
SCHEMA(s_result_ack, "RESULT_ACK", dq_msg_result_ack_t, s_result_ack_f);

static const dq_field_t s_shard_done_f[] = {
    F_ID("job", dq_msg_shard_done_t, job),
    F_ID("shard", dq_msg_shard_done_t, shard),
    F_U32("att", dq_msg_shard_done_t, attempt, 0, UINT32_MAX),
    F_U32("images", dq_msg_shard_done_t, images, 0, UINT32_MAX),
};
SCHEMA(s_shard_done, "SHARD_DONE", dq_msg_shard_done_t, s_shard_done_f);

static const dq_field_t s_shard_failed_f[] = {
    F_ID("job", dq_msg_shard_failed_t, job),
    F_ID("shard", dq_msg_shard_failed_t, shard),
    F_U32("att", dq_msg_shard_failed_t, attempt, 0, UINT32_MAX),
    F_U32("class", dq_msg_shard_failed_t, fail_class, 0, DQ_FAIL_CLASS_COUNT - 1),
    F_STR("msg", dq_msg_shard_failed_t, message),
};
SCHEMA(s_shard_failed, "SHARD_FAILED", dq_msg_shard_failed_t, s_shard_failed_f);

static const dq_field_t s_stop_f[] = {
    F_ID("job", dq_msg_stop_t, job),
    F_ID("shard", dq_msg_stop_t, shard),
    F_U32("att", dq_msg_stop_t, attempt, 0, UINT32_MAX),
    F_U32("reason", dq_msg_stop_t, reason, 0, DQ_STOP_REASON_COUNT - 1),
};
SCHEMA(s_stop, "STOP", dq_msg_stop_t, s_stop_f);

/* NODES: an empty map. */
static const dq_schema_t s_empty = {"empty", 0, NULL, 0};

static const dq_field_t s_heartbeat_f[] = {
    F_OPT_U32("minor", dq_msg_heartbeat_t, minor),        /* minor 3 (broker), 5 (node) */
    F_OPT_U64("crd", dq_msg_heartbeat_t, credit_total),   /* minor 3, broker to node */
    F_OPT_U64("asg", dq_msg_heartbeat_t, assigned_total), /* minor 3, broker to node */
    F_OPT_U64LIST("held", dq_msg_heartbeat_t, held, n_held,
                  DQ_PROTO_MAX_NODE_SHARDS), /* minor 5, node to broker */
    F_OPT_U64LIST("lost", dq_msg_heartbeat_t, lost, n_lost,
                  DQ_PROTO_MAX_LOST_ASSIGNS), /* minor 5, node to broker */
};
SCHEMA(s_heartbeat, "HEARTBEAT", dq_msg_heartbeat_t, s_heartbeat_f);

static const dq_field_t s_disconnect_f[] = {
    F_STR("reason", dq_msg_disconnect_t, reason),
};
SCHEMA(s_disconnect, "DISCONNECT", dq_msg_disconnect_t, s_disconnect_f);

/* ---- Client <-> broker bodies. */
static const dq_field_t s_submit_begin_f[] = {
    F_STR("name", dq_msg_submit_begin_t, name),
    F_STR("model", dq_msg_submit_begin_t, model),
    F_TEXT("out", dq_msg_submit_begin_t, out_dir, DQ_PROTO_MAX_PATH),
    F_I32("prio", dq_msg_submit_begin_t, priority, -1000, 1000),
    F_U64("reqs", dq_msg_submit_begin_t, requests, 1, UINT64_MAX),
};
SCHEMA(s_submit_begin, "SUBMIT_BEGIN", dq_msg_submit_begin_t, s_submit_begin_f);

static const dq_field_t s_submit_ready_f[] = {
    F_ID("upload", dq_msg_submit_ready_t, upload),
    F_U32("max", dq_msg_submit_ready_t, max_requests, 1, DQ_PROTO_MAX_REQUESTS),
};
SCHEMA(s_submit_ready, "SUBMIT_READY", dq_msg_submit_ready_t, s_submit_ready_f);

static const dq_field_t s_submit_chunk_f[] = {
    F_ID("upload", dq_msg_submit_chunk_t, upload),
    F_U32("seq", dq_msg_submit_chunk_t, seq, 0, UINT32_MAX),
    F_LIST("reqs", dq_msg_submit_chunk_t, requests, n_requests, 1, DQ_PROTO_MAX_REQUESTS, s_request),
};
SCHEMA(s_submit_chunk, "SUBMIT_CHUNK", dq_msg_submit_chunk_t, s_submit_chunk_f);

static const dq_field_t s_submit_chunk_ok_f[] = {
    F_ID("upload", dq_msg_submit_chunk_ok_t, upload),
    F_U32("seq", dq_msg_submit_chunk_ok_t, seq, 0, UINT32_MAX),
};
SCHEMA(s_submit_chunk_ok, "SUBMIT_CHUNK_OK", dq_msg_submit_chunk_ok_t, s_submit_chunk_ok_f);

static const dq_field_t s_submit_commit_f[] = {
    F_ID("upload", dq_msg_submit_commit_t, upload),
    F_U32("chunks", dq_msg_submit_commit_t, chunks, 1, UINT32_MAX),
    F_U64("reqs", dq_msg_submit_commit_t, requests, 1, UINT64_MAX),
};
SCHEMA(s_submit_commit, "SUBMIT_COMMIT", dq_msg_submit_commit_t, s_submit_commit_f);

static const dq_field_t s_submit_ok_f[] = {
    F_ID("upload", dq_msg_submit_ok_t, upload),
    F_ID("job", dq_msg_submit_ok_t, job),
};
SCHEMA(s_submit_ok, "SUBMIT_OK", dq_msg_submit_ok_t, s_submit_ok_f);

static const dq_field_t s_error_f[] = {
    F_U32("code", dq_msg_error_t, code, 1, DQ_ERR_CODE_COUNT - 1),
    F_STR("msg", dq_msg_error_t, message),
};
SCHEMA(s_error, "ERROR", dq_msg_error_t, s_error_f);

static const dq_field_t s_status_f[] = {
    F_ID("job", dq_msg_status_t, job),
};
SCHEMA(s_status, "STATUS", dq_msg_status_t, s_status_f);

static const dq_field_t s_status_reply_f[] = {
    F_LIST("jobs", dq_msg_status_reply_t, jobs, n_jobs, 0, DQ_PROTO_MAX_JOBS, s_job_info),
    F_LIST("nodes", dq_msg_status_reply_t, nodes, n_nodes, 0, DQ_PROTO_MAX_NODES, s_node_info),
};
SCHEMA(s_status_reply, "STATUS_REPLY", dq_msg_status_reply_t, s_status_reply_f);

static const dq_field_t s_nodes_reply_f[] = {
    F_LIST("nodes", dq_msg_nodes_reply_t, nodes, n_nodes, 0, DQ_PROTO_MAX_NODES, s_node_info),
};
SCHEMA(s_nodes_reply, "NODES_REPLY", dq_msg_nodes_reply_t, s_nodes_reply_f);

static const dq_field_t s_job_f[] = {
    F_U64("job", dq_msg_job_t, job, 1, UINT64_MAX),
};
SCHEMA(s_job, "job control", dq_msg_job_t, s_job_f);

static const dq_field_t s_job_ok_f[] = {
    F_ID("job", dq_msg_job_ok_t, job),
    F_U32("state", dq_msg_job_ok_t, state, 0, DQ_JOB_STATE_COUNT - 1),
    F_ID("affected", dq_msg_job_ok_t, affected),
};
SCHEMA(s_job_ok, "JOB_OK", dq_msg_job_ok_t, s_job_ok_f);

static const dq_field_t s_results_list_f[] = {
    F_U64("job", dq_msg_results_list_t, job, 1, UINT64_MAX),
    F_ID("cursor", dq_msg_results_list_t, cursor),
    F_U32("limit", dq_msg_results_list_t, limit, 1, DQ_PROTO_MAX_RESULTS),
};
SCHEMA(s_results_list, "RESULTS_LIST", dq_msg_results_list_t, s_results_list_f);

static const dq_field_t s_results_list_reply_f[] = {
    F_ID("job", dq_msg_results_list_reply_t, job),
    F_ID("next", dq_msg_results_list_reply_t, next),
    F_LIST("items", dq_msg_results_list_reply_t, items, n_items, 0, DQ_PROTO_MAX_RESULTS,
           s_result_item),
};
SCHEMA(s_results_list_reply, "RESULTS_LIST_REPLY", dq_msg_results_list_reply_t,
       s_results_list_reply_f);

static const dq_field_t s_result_fetch_f[] = {
    F_U64("job", dq_msg_result_fetch_t, job, 1, UINT64_MAX),
    F_U64("line", dq_msg_result_fetch_t, line, 1, UINT64_MAX),
    F_U32("img", dq_msg_result_fetch_t, image_index, 0, DQ_PROTO_MAX_IMAGES_PER_PROMPT - 1),
};
SCHEMA(s_result_fetch, "RESULT_FETCH", dq_msg_result_fetch_t, s_result_fetch_f);

static const dq_field_t s_result_data_f[] = {
    F_ID("job", dq_msg_result_data_t, job),
    F_U64("line", dq_msg_result_data_t, line, 1, UINT64_MAX),
    F_U32("img", dq_msg_result_data_t, image_index, 0, DQ_PROTO_MAX_IMAGES_PER_PROMPT - 1),
    F_ID("seed", dq_msg_result_data_t, seed),
    F_META("meta", dq_msg_result_data_t, meta, n_meta),
};
SCHEMA(s_result_data, "RESULT_DATA", dq_msg_result_data_t, s_result_data_f);

/* ---- The command table, indexed by dq_cmd_t. */
#define CMD(nm, peer, dir, body) {nm, peer, dir, &body, 0, 0, 0}
#define CMD_PNG(nm, peer, dir, body, T)                                                            \
    {nm, peer, dir, &body, 1, offsetof(T, png), offsetof(T, png_size)}
#define NODE DQ_PEER_NODE
#define CLIENT DQ_PEER_CLIENT
#define UP DQ_DIR_TO_BROKER
#define DOWN DQ_DIR_FROM_BROKER

static const dq_cmd_info_t s_cmds[DQ_CMD_COUNT] = {
    [DQ_CMD_READY] = CMD("READY", NODE, UP, s_ready),
    [DQ_CMD_CREDIT] = CMD("CREDIT", NODE, UP, s_credit),
    [DQ_CMD_ASSIGN] = CMD("ASSIGN", NODE, DOWN, s_assign),
    [DQ_CMD_PROGRESS] = CMD("PROGRESS", NODE, UP, s_progress),
    [DQ_CMD_RESULT] = CMD_PNG("RESULT", NODE, UP, s_result, dq_msg_result_t),
    [DQ_CMD_RESULT_ACK] = CMD("RESULT_ACK", NODE, DOWN, s_result_ack),
    [DQ_CMD_SHARD_DONE] = CMD("SHARD_DONE", NODE, UP, s_shard_done),
    [DQ_CMD_SHARD_FAILED] = CMD("SHARD_FAILED", NODE, UP, s_shard_failed),
    [DQ_CMD_STOP] = CMD("STOP", NODE, DOWN, s_stop),
    [DQ_CMD_HEARTBEAT] = CMD("HEARTBEAT", NODE, DQ_DIR_BOTH, s_heartbeat),
    /* DISCONNECT is listed as a node command but accepted under both headers (see codec). */
    [DQ_CMD_DISCONNECT] = CMD("DISCONNECT", NODE, DQ_DIR_BOTH, s_disconnect),
    [DQ_CMD_SUBMIT_BEGIN] = CMD("SUBMIT_BEGIN", CLIENT, UP, s_submit_begin),
    [DQ_CMD_SUBMIT_READY] = CMD("SUBMIT_READY", CLIENT, DOWN, s_submit_ready),
    [DQ_CMD_SUBMIT_CHUNK] = CMD("SUBMIT_CHUNK", CLIENT, UP, s_submit_chunk),
    [DQ_CMD_SUBMIT_CHUNK_OK] = CMD("SUBMIT_CHUNK_OK", CLIENT, DOWN, s_submit_chunk_ok),
    [DQ_CMD_SUBMIT_COMMIT] = CMD("SUBMIT_COMMIT", CLIENT, UP, s_submit_commit),
    [DQ_CMD_SUBMIT_OK] = CMD("SUBMIT_OK", CLIENT, DOWN, s_submit_ok),
    [DQ_CMD_ERROR] = CMD("ERROR", CLIENT, DOWN, s_error),
    [DQ_CMD_STATUS] = CMD("STATUS", CLIENT, UP, s_status),
    [DQ_CMD_STATUS_REPLY] = CMD("STATUS_REPLY", CLIENT, DOWN, s_status_reply),
    [DQ_CMD_NODES] = CMD("NODES", CLIENT, UP, s_empty),
    [DQ_CMD_NODES_REPLY] = CMD("NODES_REPLY", CLIENT, DOWN, s_nodes_reply),
    [DQ_CMD_CANCEL] = CMD("CANCEL", CLIENT, UP, s_job),
    [DQ_CMD_PAUSE] = CMD("PAUSE", CLIENT, UP, s_job),
    [DQ_CMD_RESUME] = CMD("RESUME", CLIENT, UP, s_job),
    [DQ_CMD_RETRY] = CMD("RETRY", CLIENT, UP, s_job),
    [DQ_CMD_JOB_OK] = CMD("JOB_OK", CLIENT, DOWN, s_job_ok),
    [DQ_CMD_RESULTS_LIST] = CMD("RESULTS_LIST", CLIENT, UP, s_results_list),
    [DQ_CMD_RESULTS_LIST_REPLY] = CMD("RESULTS_LIST_REPLY", CLIENT, DOWN, s_results_list_reply),
    [DQ_CMD_RESULT_FETCH] = CMD("RESULT_FETCH", CLIENT, UP, s_result_fetch),
    [DQ_CMD_RESULT_DATA] = CMD_PNG("RESULT_DATA", CLIENT, DOWN, s_result_data, dq_msg_result_data_t),
};

const dq_cmd_info_t *dq_proto_cmd_info(int cmd) {
    if (cmd <= DQ_CMD_NONE || cmd >= DQ_CMD_COUNT) return NULL;
    return &s_cmds[cmd];
}
