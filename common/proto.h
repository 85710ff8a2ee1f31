/* common/proto.h: the diffq wire protocol (DQP): commands, message structs, limits, liveness
 * constants and the codec between dq_msg_t and ZeroMQ frames. docs/protocol.md is the prose. */
#ifndef DQ_PROTO_H
#define DQ_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Version. Frame 0 of every message names the peer kind and the major version. A change
 * that an old peer would misread (a field's meaning or type, a new required key, a renumbered
 * command) bumps DQ_PROTO_VERSION and so both header strings. Adding a command or an optional key
 * that old peers may ignore bumps only DQ_PROTO_MINOR, which READY carries. */
#define DQ_PROTO_VERSION 1
#define DQ_PROTO_MINOR 6 /* 1: READY.paths, job.error; 2: request.id; 3: HEARTBEAT credit sync;
                           4: READY.bimg; 5: ASSIGN.seq, a node's HEARTBEAT held and lost;
                           6: READY.boot */
#define DQ_PROTO_HEADER_NODE "DQPN01"   /* node <-> broker */
#define DQ_PROTO_HEADER_CLIENT "DQPC01" /* client (diffq CLI) <-> broker */
#define DQ_PROTO_HEADER_LEN 6           /* bytes; both headers, no terminating NUL on the wire */

/* ---- Where the broker listens unless told otherwise (diffq-broker --bind, diffq-node --broker,
 * DIFFQ_BROKER). 5555 is the ZeroMQ guide's customary port; nothing registered uses it. */
#define DQ_PROTO_DEFAULT_PORT 5555
#define DQ_PROTO_DEFAULT_ENDPOINT "tcp://127.0.0.1:5555"

/* ---- Liveness (Paranoid Pirate). Both ends of a node connection send HEARTBEAT when they have
 * sent nothing else for one interval; any message counts as a sign of life. */
#define DQ_PROTO_HEARTBEAT_INTERVAL_MS 1000 /* ms; 1 s: cheap, and detects loss in seconds */
#define DQ_PROTO_HEARTBEAT_LIVENESS 3       /* intervals of silence before the peer is dead:
                                               tolerates one or two lost or late beats */
#define DQ_PROTO_RECONNECT_INITIAL_MS 1000  /* ms; node's first reconnect delay, doubled each try */
#define DQ_PROTO_RECONNECT_MAX_MS 32000     /* ms; cap of that back-off */
#define DQ_PROTO_NODE_DEATH_TIMEOUT_MS 300000 /* ms; 5 min without the broker: the node exits
                                                 (non-zero) so its supervisor (systemd, Slurm)
                                                 sees it, instead of holding GPUs forever */
#define DQ_PROTO_LEASE_DEFAULT_MS 120000    /* ms; a shard's lease unless ASSIGN says otherwise;
                                               one CPU denoising step can take tens of seconds */
#define DQ_PROTO_PROGRESS_INTERVAL_MS 10000 /* ms; a node sends PROGRESS at least this often per
                                               running shard (repeating the last step) */
#define DQ_PROTO_PROGRESS_MIN_MS 250       /* ms; a node forwards a shard's step progress at
                                               most this often (the last step at once): one
                                               message per denoising step from every GPU of a
                                               cluster would be the broker's main load */
#define DQ_PROTO_RESULT_WINDOW 4            /* RESULT chunks a node may always have
                                               un-acknowledged */
#define DQ_PROTO_RESULT_WINDOW_BYTES (4u << 20) /* more chunks while their PNGs in flight stay
                                                   within this: broker memory per node is at
                                                   most 4 PNGs or 4 MiB, and small images still
                                                   fill a commit batch */
#define DQ_PROTO_RESULT_WINDOW_MAX 64           /* and never more chunks than this */
#define DQ_PROTO_SUBMIT_WINDOW 4            /* SUBMIT_CHUNKs a client may have un-acknowledged */
#define DQ_PROTO_UPLOAD_TIMEOUT_MS 60000    /* ms; an upload idle this long is discarded: a client
                                               that vanishes mid-submit leaves nothing queued */

/* ---- Limits. The decoder rejects anything larger; the encoder refuses to produce it. String
 * limits are in bytes of UTF-8, without a terminating NUL. */
#define DQ_PROTO_MAX_BODY (4u << 20)     /* bytes; frame 2 (msgpack); a full SUBMIT_CHUNK of
                                            maximal requests is about 2.2 MiB */
#define DQ_PROTO_MAX_PNG (64u << 20)     /* bytes; one raw PNG frame (8192x8192 RGB fits) */
#define DQ_PROTO_MAX_FRAMES 4            /* header, command, body, at most one raw frame */
#define DQ_PROTO_MAX_NAME 128            /* node, job, model, device, scheduler names */
#define DQ_PROTO_MAX_PATH 4096           /* bytes; output directory, result file names (PATH_MAX) */
#define DQ_PROTO_MAX_PROMPT 4096         /* bytes; CLIP reads 77 tokens, 4 KiB is generous */
#define DQ_PROTO_MAX_MESSAGE 1024        /* bytes; error and failure messages */
#define DQ_PROTO_MAX_REQUESTS 256        /* requests per ASSIGN or SUBMIT_CHUNK */
#define DQ_PROTO_MAX_DEVICES 16          /* devices per node */
#define DQ_PROTO_MAX_MODELS 16           /* models a node can serve */
#define DQ_PROTO_MAX_NODES 256           /* nodes per STATUS/NODES reply */
#define DQ_PROTO_MAX_NODE_SHARDS 256     /* shards listed per node */
#define DQ_PROTO_MAX_LOST_ASSIGNS 64     /* lost ASSIGNs named per node HEARTBEAT */
#define DQ_PROTO_MAX_JOBS 1024           /* jobs per STATUS reply */
#define DQ_PROTO_MAX_RESULTS 1024        /* items per RESULTS_LIST_REPLY */
#define DQ_PROTO_MAX_META 32             /* metadata entries per RESULT */
#define DQ_PROTO_MAX_META_KEY 64         /* bytes */
#define DQ_PROTO_MAX_META_VALUE 1024     /* bytes */
#define DQ_PROTO_MAX_DEPTH 8             /* msgpack nesting; our deepest body uses 4 */
/* Value ranges checked on the wire (sanity; the job format checks semantics). */
#define DQ_PROTO_MAX_SIDE 8192           /* pixels; width and height */
#define DQ_PROTO_MAX_STEPS 1000
#define DQ_PROTO_MAX_IMAGES_PER_PROMPT 64
#define DQ_PROTO_MAX_GUIDANCE 100.0
#define DQ_PROTO_MAX_CREDIT 1024         /* shards one CREDIT may ask for */
#define DQ_PROTO_MAX_RANKS 1024
#define DQ_PROTO_MAX_BATCH_IMAGES 1024   /* images one rank renders in one batch (READY bimg) */

/* ---- Commands: frame 1, one byte. Values are wire values; never renumber (see version rule). */
typedef enum {
    DQ_CMD_NONE = 0, /* invalid on the wire; a zeroed dq_msg_t */
    /* node <-> broker (header DQPN01) */
    DQ_CMD_READY = 1,       /* node -> broker: hello, capabilities */
    DQ_CMD_CREDIT = 2,      /* node -> broker: "send me N more shards" */
    DQ_CMD_ASSIGN = 3,      /* broker -> node: one shard (only against credit) */
    DQ_CMD_PROGRESS = 4,    /* node -> broker: denoising step; renews the lease */
    DQ_CMD_RESULT = 5,      /* node -> broker: one image (+ raw PNG frame) */
    DQ_CMD_RESULT_ACK = 6,  /* broker -> node: image committed or dropped; frees a window slot */
    DQ_CMD_SHARD_DONE = 7,  /* node -> broker: every image of the shard was sent */
    DQ_CMD_SHARD_FAILED = 8, /* node -> broker: the shard failed (class + message) */
    DQ_CMD_STOP = 9,        /* broker -> node: stop a shard (cancelled, fenced, ...) */
    DQ_CMD_HEARTBEAT = 10,  /* both ways */
    DQ_CMD_DISCONNECT = 11, /* both ways; also client -> broker (drops its uploads) */
    /* client <-> broker (header DQPC01) */
    DQ_CMD_SUBMIT_BEGIN = 12,     /* client -> broker: job header; opens an upload */
    DQ_CMD_SUBMIT_READY = 13,     /* broker -> client: upload id */
    DQ_CMD_SUBMIT_CHUNK = 14,     /* client -> broker: up to MAX_REQUESTS requests */
    DQ_CMD_SUBMIT_CHUNK_OK = 15,  /* broker -> client: chunk stored in the upload */
    DQ_CMD_SUBMIT_COMMIT = 16,    /* client -> broker: queue the upload as one job, atomically */
    DQ_CMD_SUBMIT_OK = 17,        /* broker -> client: job id */
    DQ_CMD_ERROR = 18,            /* broker -> client: code + message, answers any request */
    DQ_CMD_STATUS = 19,           /* client -> broker: jobs (one or all) and nodes */
    DQ_CMD_STATUS_REPLY = 20,     /* broker -> client */
    DQ_CMD_NODES = 21,            /* client -> broker: nodes only */
    DQ_CMD_NODES_REPLY = 22,      /* broker -> client */
    DQ_CMD_CANCEL = 23,           /* client -> broker: job id */
    DQ_CMD_PAUSE = 24,            /* client -> broker: job id */
    DQ_CMD_RESUME = 25,           /* client -> broker: job id */
    DQ_CMD_RETRY = 26,            /* client -> broker: job id (failed images again) */
    DQ_CMD_JOB_OK = 27,           /* broker -> client: reply to CANCEL/PAUSE/RESUME/RETRY */
    DQ_CMD_RESULTS_LIST = 28,     /* client -> broker: page through a job's images */
    DQ_CMD_RESULTS_LIST_REPLY = 29, /* broker -> client */
    DQ_CMD_RESULT_FETCH = 30,     /* client -> broker: one image */
    DQ_CMD_RESULT_DATA = 31,      /* broker -> client: its metadata + raw PNG frame */
    DQ_CMD_COUNT
} dq_cmd_t;

typedef enum { DQ_PEER_NODE, DQ_PEER_CLIENT, DQ_PEER_KIND_COUNT } dq_peer_kind_t;

/* Which way a command may travel; receivers check it with dq_proto_command_dir(). */
typedef enum {
    DQ_DIR_TO_BROKER = 1,
    DQ_DIR_FROM_BROKER = 2,
    DQ_DIR_BOTH = 3,
} dq_dir_t;

/* ---- Wire enums (encoded as unsigned integers; out-of-range values are rejected). */
typedef enum {
    DQ_FAIL_OOM,      /* device or host out of memory: retry elsewhere or with a smaller batch */
    DQ_FAIL_MODEL,    /* model missing or unloadable on this node: retry on another node */
    DQ_FAIL_INPUT,    /* the request itself is invalid: do not retry */
    DQ_FAIL_INTERNAL, /* bug or device fault: retry, count towards the attempt limit */
    DQ_FAIL_CLASS_COUNT
} dq_fail_class_t;

typedef enum {
    DQ_STOP_CANCELLED, /* the job was cancelled */
    DQ_STOP_PAUSED,    /* the job was paused; the shard goes back to the queue */
    DQ_STOP_FENCED,    /* this attempt lost its lease; another attempt owns the shard */
    DQ_STOP_SHUTDOWN,  /* the broker is shutting down */
    DQ_STOP_REASON_COUNT
} dq_stop_reason_t;

typedef enum {
    DQ_JOB_QUEUED,
    DQ_JOB_RUNNING,
    DQ_JOB_PAUSED,
    DQ_JOB_DONE,
    DQ_JOB_FAILED, /* finished with some images failed for good */
    DQ_JOB_CANCELLED,
    DQ_JOB_STATE_COUNT
} dq_job_state_t;

/* Codes carried by ERROR (broker -> client). */
typedef enum {
    DQ_ERR_NONE,
    DQ_ERR_BAD_REQUEST,   /* message decoded but makes no sense (wrong direction, bad values) */
    DQ_ERR_NOT_FOUND,     /* no such job, upload or image */
    DQ_ERR_STATE,         /* not allowed in the job's state (e.g. RESUME a done job) */
    DQ_ERR_UNKNOWN_MODEL, /* no node has announced this model */
    DQ_ERR_LIMIT,         /* a broker limit (queue size, uploads per client) was reached */
    DQ_ERR_UPLOAD,        /* upload out of sequence, expired, or counts do not match */
    DQ_ERR_VERSION,       /* header names another protocol version */
    DQ_ERR_INTERNAL,      /* broker fault (disk, database) */
    DQ_ERR_CODE_COUNT
} dq_err_code_t;

/* ---- Message bodies. Strings are NUL-terminated UTF-8 without embedded NULs. Fixed arrays hold
 * short names; pointer members are owned by the message (malloc'd; dq_msg_clear frees them). For
 * encoding, pointer members may be borrowed as long as the message is not cleared; a NULL string
 * pointer encodes as "". Counts are uint32_t beside their arrays. */

typedef struct {
    char name[DQ_PROTO_MAX_NAME + 1]; /* "cuda:0 NVIDIA H100", "cpu" */
    uint64_t memory;                  /* bytes of device memory (host RAM for cpu) */
} dq_device_t;

/* One prompt line of a job (SUBMIT_CHUNK) or the part of it a shard renders (ASSIGN). */
typedef struct {
    uint64_t line;           /* 1-based line number in the job file */
    uint32_t image_first;    /* first image index rendered (SUBMIT: 0) */
    uint32_t image_count;    /* images rendered from image_first (SUBMIT: num_images) */
    char *prompt;            /* owned */
    char *negative_prompt;   /* owned; "" for none */
    uint64_t seed;           /* seed as the job file gives it (see docs/job-format) */
    uint32_t steps;          /* 1..DQ_PROTO_MAX_STEPS */
    double guidance;         /* classifier-free guidance scale, 0..DQ_PROTO_MAX_GUIDANCE */
    uint32_t width, height;  /* pixels, 8..DQ_PROTO_MAX_SIDE */
    char scheduler[DQ_PROTO_MAX_NAME + 1]; /* "ddim", "euler", ... */
    uint32_t num_images;     /* num_images_per_prompt, 1..DQ_PROTO_MAX_IMAGES_PER_PROMPT */
    char id[DQ_PROTO_MAX_NAME + 1]; /* the job file's "id"; "" when the line had none (then the
                                       line number names its files). Optional (minor 2) */
} dq_wire_request_t;

typedef struct {
    char key[DQ_PROTO_MAX_META_KEY + 1];
    char *value; /* owned */
} dq_meta_t;

typedef struct {
    uint64_t id;
    char name[DQ_PROTO_MAX_NAME + 1];
    char model[DQ_PROTO_MAX_NAME + 1];
    uint32_t state;     /* dq_job_state_t */
    int32_t priority;
    uint64_t queued, running, done, failed; /* image counts */
    double images_per_s; /* recent throughput */
    double eta_s;        /* seconds to finish; -1 when unknown */
    char error[DQ_PROTO_MAX_MESSAGE + 1]; /* why images failed (the latest failed shard's
                                             error); "" when none. Optional (minor 1) */
} dq_job_info_t;

typedef struct {
    char name[DQ_PROTO_MAX_NAME + 1];
    uint32_t ranks;
    uint32_t capacity;        /* batch slots */
    bool alive;               /* heartbeats within liveness */
    uint64_t last_seen_ms;    /* ms since the broker last heard from it */
    dq_device_t *devices;     /* owned */
    uint32_t n_devices;
    char **models;            /* owned, each owned */
    uint32_t n_models;
    uint64_t *shards;         /* owned; shard ids running there */
    uint32_t n_shards;
} dq_node_info_t;

typedef struct {
    uint64_t line;
    uint32_t image_index;
    uint64_t seed;
    char *path;     /* owned; file name relative to the job's output directory */
    uint64_t size;  /* bytes of PNG */
} dq_result_item_t;

typedef struct {
    char name[DQ_PROTO_MAX_NAME + 1]; /* node name, unique in the cluster */
    char version[DQ_PROTO_MAX_NAME + 1]; /* software, "diffq 0.1.0" (for logs) */
    uint32_t proto_minor;     /* DQ_PROTO_MINOR of the node */
    uint32_t ranks;           /* rank processes (1 per device) */
    uint32_t capacity;        /* batch slots: shards it can run at once */
    dq_device_t *devices;     /* owned */
    uint32_t n_devices;
    char **models;            /* owned; model names it can serve */
    uint32_t n_models;
    char **paths;             /* owned; optional (minor 1): n_models entries, the path each model
                                 was given by ("" for one given by name), or none at all */
    uint32_t n_paths;         /* 0 or n_models */
    uint32_t max_batch;       /* optional (minor 4): images one rank renders in one pipeline
                                 batch, 1..DQ_PROTO_MAX_BATCH_IMAGES; 0 (absent): not known, so
                                 the broker leases shards whole */
    uint64_t boot;            /* optional (minor 6): drawn at random when the node process starts,
                                 never 0; the same on a reconnect, another after a restart (the
                                 broker requeues a restarted node's shards at once). 0: absent */
} dq_msg_ready_t;

typedef struct {
    uint32_t credit; /* additional shards wanted, 1..DQ_PROTO_MAX_CREDIT */
} dq_msg_credit_t;

typedef struct {
    uint64_t job, shard;
    uint32_t attempt;    /* fencing token: results of an older attempt are dropped */
    uint32_t lease_ms;   /* the lease; renewed by PROGRESS */
    char model[DQ_PROTO_MAX_NAME + 1];
    dq_wire_request_t *requests; /* owned */
    uint32_t n_requests;    /* 1..DQ_PROTO_MAX_REQUESTS */
    uint64_t seq; /* minor 5: this ASSIGN's number on the connection (1, 2, ...); 0: not sent
                     (an older broker) */
} dq_msg_assign_t;

typedef struct {
    uint64_t job, shard;
    uint32_t attempt;
    uint32_t step, steps; /* step done of steps total (over the whole shard) */
} dq_msg_progress_t;

typedef struct {
    uint64_t job, shard;
    uint32_t attempt;
    uint32_t chunk;       /* per (shard, attempt) sequence number, from 0; echoed in RESULT_ACK */
    uint64_t line;        /* request line */
    uint32_t image_index;
    uint64_t seed;        /* the seed this image used */
    uint32_t elapsed_ms;  /* render time */
    dq_meta_t *meta;      /* owned; free-form text metadata (sampler, model hash...) */
    uint32_t n_meta;
    uint8_t *png;         /* owned; frame 3, raw PNG bytes, 1..DQ_PROTO_MAX_PNG */
    size_t png_size;
} dq_msg_result_t;

typedef struct {
    uint64_t job, shard;
    uint32_t attempt, chunk;
    bool stored;          /* true: on disk; false: dropped (fenced or cancelled) */
} dq_msg_result_ack_t;

typedef struct {
    uint64_t job, shard;
    uint32_t attempt;
    uint32_t images;      /* images sent for this shard */
} dq_msg_shard_done_t;

typedef struct {
    uint64_t job, shard;
    uint32_t attempt;
    uint32_t fail_class;  /* dq_fail_class_t */
    char message[DQ_PROTO_MAX_MESSAGE + 1];
} dq_msg_shard_failed_t;

typedef struct {
    uint64_t job, shard;
    uint32_t attempt;
    uint32_t reason;      /* dq_stop_reason_t */
} dq_msg_stop_t;

/* HEARTBEAT. From a broker of minor 3 or later: the broker's minor and its count of this
 * connection's credit and ASSIGNs, so the node can repair a lost CREDIT or ASSIGN
 * (docs/protocol.md, "Credit sync"). From a node of minor 5 or later: what it holds and the
 * ASSIGNs it judged lost, so the broker can repair its side ("Held-shard sync"). All optional:
 * absent reads as 0 or an empty list (an older peer's empty map). */
typedef struct {
    uint32_t minor;          /* DQ_PROTO_MINOR of the sender; 0: an older peer. From a node: set
                                only when `held` lists every shard it holds */
    uint64_t credit_total;   /* broker: shards asked for by the CREDITs of this connection */
    uint64_t assigned_total; /* broker: ASSIGNs sent on this connection */
    uint64_t *held;          /* owned; node: the shard ids it holds (any attempt) */
    uint32_t n_held;         /* 0..DQ_PROTO_MAX_NODE_SHARDS */
    uint64_t *lost;          /* owned; node: ASSIGN.seq numbers it judged lost on this
                                connection (never received, and dropped should they come late) */
    uint32_t n_lost;         /* 0..DQ_PROTO_MAX_LOST_ASSIGNS */
} dq_msg_heartbeat_t;

typedef struct {
    char reason[DQ_PROTO_MAX_MESSAGE + 1]; /* may be "" */
} dq_msg_disconnect_t;

typedef struct {
    char name[DQ_PROTO_MAX_NAME + 1];
    char model[DQ_PROTO_MAX_NAME + 1];
    char *out_dir;        /* owned; absolute, on the broker's filesystem */
    int32_t priority;     /* higher runs first, -1000..1000 */
    uint64_t requests;    /* request lines the upload will carry */
} dq_msg_submit_begin_t;

typedef struct {
    uint64_t upload;      /* from SUBMIT_READY */
    uint32_t max_requests; /* per SUBMIT_CHUNK the broker accepts */
} dq_msg_submit_ready_t;

typedef struct {
    uint64_t upload;
    uint32_t seq;         /* chunk number from 0, no gaps */
    dq_wire_request_t *requests; /* owned */
    uint32_t n_requests;  /* 1..DQ_PROTO_MAX_REQUESTS */
} dq_msg_submit_chunk_t;

typedef struct {
    uint64_t upload;
    uint32_t seq;
} dq_msg_submit_chunk_ok_t;

typedef struct {
    uint64_t upload;
    uint32_t chunks;      /* chunks sent; must match what the broker stored */
    uint64_t requests;    /* requests sent; must match too */
} dq_msg_submit_commit_t;

typedef struct {
    uint64_t upload, job;
} dq_msg_submit_ok_t;

typedef struct {
    uint32_t code;        /* dq_err_code_t */
    char message[DQ_PROTO_MAX_MESSAGE + 1];
} dq_msg_error_t;

typedef struct {
    uint64_t job;         /* 0: every job */
} dq_msg_status_t;

typedef struct {
    dq_job_info_t *jobs;  /* owned */
    uint32_t n_jobs;
    dq_node_info_t *nodes; /* owned */
    uint32_t n_nodes;
} dq_msg_status_reply_t;

typedef struct {
    dq_node_info_t *nodes; /* owned */
    uint32_t n_nodes;
} dq_msg_nodes_reply_t;

/* CANCEL, PAUSE, RESUME, RETRY. */
typedef struct {
    uint64_t job;
} dq_msg_job_t;

typedef struct {
    uint64_t job;
    uint32_t state;       /* dq_job_state_t after the action */
    uint64_t affected;    /* images the action touched */
} dq_msg_job_ok_t;

typedef struct {
    uint64_t job;
    uint64_t cursor;      /* 0 for the first page, then the reply's next */
    uint32_t limit;       /* items wanted, 1..DQ_PROTO_MAX_RESULTS */
} dq_msg_results_list_t;

typedef struct {
    uint64_t job;
    uint64_t next;        /* cursor of the next page; 0 when this was the last */
    dq_result_item_t *items; /* owned */
    uint32_t n_items;
} dq_msg_results_list_reply_t;

typedef struct {
    uint64_t job, line;
    uint32_t image_index;
} dq_msg_result_fetch_t;

typedef struct {
    uint64_t job, line;
    uint32_t image_index;
    uint64_t seed;
    dq_meta_t *meta;      /* owned */
    uint32_t n_meta;
    uint8_t *png;         /* owned; the raw PNG frame */
    size_t png_size;
} dq_msg_result_data_t;

/* One decoded or to-be-encoded message; cmd says which member is live. NODES has an empty
 * body. */
typedef struct {
    dq_cmd_t cmd;
    /* The header's peer kind. Set by the decoder. The encoder uses the command's own kind, except
     * for DISCONNECT (valid under both headers), where it uses this field: a client sets
     * DQ_PEER_CLIENT, a zeroed message means DQ_PEER_NODE. */
    dq_peer_kind_t peer;
    union {
        dq_msg_ready_t ready;
        dq_msg_credit_t credit;
        dq_msg_assign_t assign;
        dq_msg_progress_t progress;
        dq_msg_result_t result;
        dq_msg_result_ack_t result_ack;
        dq_msg_shard_done_t shard_done;
        dq_msg_shard_failed_t shard_failed;
        dq_msg_stop_t stop;
        dq_msg_heartbeat_t heartbeat;
        dq_msg_disconnect_t disconnect;
        dq_msg_submit_begin_t submit_begin;
        dq_msg_submit_ready_t submit_ready;
        dq_msg_submit_chunk_t submit_chunk;
        dq_msg_submit_chunk_ok_t submit_chunk_ok;
        dq_msg_submit_commit_t submit_commit;
        dq_msg_submit_ok_t submit_ok;
        dq_msg_error_t error;
        dq_msg_status_t status;
        dq_msg_status_reply_t status_reply;
        dq_msg_nodes_reply_t nodes_reply;
        dq_msg_job_t job;             /* CANCEL, PAUSE, RESUME, RETRY */
        dq_msg_job_ok_t job_ok;
        dq_msg_results_list_t results_list;
        dq_msg_results_list_reply_t results_list_reply;
        dq_msg_result_fetch_t result_fetch;
        dq_msg_result_data_t result_data;
    };
} dq_msg_t;

/* ---- Codec results: 0 or one of these, negated. */
typedef enum {
    DQ_PROTO_OK,
    DQ_PROTO_EFRAMES,   /* wrong number of frames for the command */
    DQ_PROTO_EHEADER,   /* frame 0 is not a DQP header of this version */
    DQ_PROTO_ECOMMAND,  /* unknown command, or not one of the header's peer kind */
    DQ_PROTO_ESIZE,     /* a frame is larger than its limit */
    DQ_PROTO_EMSGPACK,  /* body is not valid msgpack, or is truncated */
    DQ_PROTO_ETRAILING, /* bytes after the body's msgpack value */
    DQ_PROTO_ETYPE,     /* a value has the wrong msgpack type */
    DQ_PROTO_EMISSING,  /* a required key is absent */
    DQ_PROTO_EDUPLICATE, /* a key appears twice */
    DQ_PROTO_ECOUNT,    /* a list or map is longer than its limit (or empty where not allowed) */
    DQ_PROTO_ELENGTH,   /* a string is longer than its limit */
    DQ_PROTO_ERANGE,    /* a number is out of range (including negative where unsigned) */
    DQ_PROTO_EENCODING, /* a string is not UTF-8 or contains NUL */
    DQ_PROTO_ENOMEM,
    DQ_PROTO_RC_COUNT
} dq_proto_rc_t;

/* Name of a command for logs ("READY"); "UNKNOWN" for values outside the enum. */
const char *dq_proto_command_name(int cmd);
/* Peer kind a command belongs to (its header); DQ_PEER_KIND_COUNT for an unknown command. */
dq_peer_kind_t dq_proto_command_peer(int cmd);
/* Directions a command may travel; 0 for an unknown command. Receivers check it. */
dq_dir_t dq_proto_command_dir(int cmd);
/* Header string of a peer kind (DQ_PROTO_HEADER_*); NULL when out of range. */
const char *dq_proto_header(dq_peer_kind_t kind);
/* Short text for a dq_proto_rc_t, negated or not ("truncated or invalid msgpack"). */
const char *dq_proto_strerror(int rc);
/* Names of the wire enums for logs and the CLI; "unknown" when out of range. */
const char *dq_proto_fail_class_name(int v);
const char *dq_proto_stop_reason_name(int v);
const char *dq_proto_job_state_name(int v);
const char *dq_proto_err_code_name(int v);

/* Frees every owned member and zeroes the message (cmd becomes DQ_CMD_NONE). Safe on a zeroed or
 * already cleared message; NULL is ignored. */
void dq_msg_clear(dq_msg_t *msg);

/* ---- Pure-bytes layer (no ZeroMQ; the fuzzer and tests use it). data[1] points into the
 * struct itself, so a dq_proto_frames_t must not be copied or moved while in use. */
typedef struct {
    size_t n;                                /* frames in use, 3 or 4 */
    const uint8_t *data[DQ_PROTO_MAX_FRAMES]; /* borrowed from the message or owned below */
    size_t size[DQ_PROTO_MAX_FRAMES];
    uint8_t cmd;                             /* frame 1's byte; data[1] points here */
    char *body;                              /* owned; frame 2 (msgpack) */
} dq_proto_frames_t;

/* Encodes msg into frames. frames->data[3] (a raw PNG) borrows msg's buffer, so msg must outlive
 * frames. Checks every limit the decoder checks, so what encodes also decodes. Returns 0, or a
 * negative dq_proto_rc_t with a message in err (which may be NULL) and frames left empty. Call
 * dq_proto_frames_free after success. */
int dq_proto_encode_frames(const dq_msg_t *msg, dq_proto_frames_t *frames, char *err,
                           size_t errlen);
/* Frees the owned body of frames and zeroes it. Safe on a zeroed value. */
void dq_proto_frames_free(dq_proto_frames_t *frames);

/* Decodes n frames (after the routing envelope) into out. out is overwritten, not freed: clear a
 * previously decoded message first. Never reads outside the given buffers. Returns 0 with out owning its data (free with
 * dq_msg_clear), or a negative dq_proto_rc_t with out cleared and a message in err naming the
 * command and field ("ASSIGN: requests[2].prompt: 5000 bytes, limit 4096"). */
int dq_proto_decode_frames(const uint8_t *const *frames, const size_t *sizes, size_t n,
                           dq_msg_t *out, char *err, size_t errlen);

/* ---- czmq layer. Opaque forward declaration so callers need not include czmq.h. */
typedef struct _zmsg_t zmsg_t;

/* Encodes msg into a new zmsg (*out, owned by the caller) with no routing envelope: the broker
 * pushes the peer's identity frame in front before sending on its ROUTER. Copies the PNG. Returns
 * 0, or a negative dq_proto_rc_t with a message in err (may be NULL) and *out NULL. */
int dq_proto_encode(const dq_msg_t *msg, zmsg_t **out, char *err, size_t errlen);
/* Decodes a zmsg whose routing envelope the caller has already popped. Does not consume msg or
 * change its frames (it moves msg's frame cursor). Returns as dq_proto_decode_frames. */
int dq_proto_decode(zmsg_t *msg, dq_msg_t *out, char *err, size_t errlen);

#endif
