/* node/node.h: the diffq-node daemon: its broker connection (DEALER, Paranoid Pirate liveness,
 * reconnect with back-off), credit-based pulling of shards, the shards it holds and their results
 * (flow-controlled RESULTs), its ranks (node/supervise.h), and draining on a signal. */
#ifndef DQ_NODE_NODE_H
#define DQ_NODE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

/* Exit codes of diffq-node (documented in diffq-node(8)). */
enum {
    DQ_NODE_EXIT_OK = 0,          /* drained after a signal, or told to stop */
    DQ_NODE_EXIT_INTERNAL = 1,    /* an unexpected failure (out of memory, socket error) */
    DQ_NODE_EXIT_USAGE = 2,       /* bad options */
    DQ_NODE_EXIT_BROKER_LOST = 3, /* no word from the broker for the death timeout */
    DQ_NODE_EXIT_RANK = 4,        /* ranks could not be started, or kept dying at start */
    DQ_NODE_EXIT_MODEL = 5,       /* a rank could not load the model */
    DQ_NODE_EXIT_DEVICE = 6,      /* the devices asked for do not exist (or CUDA is not built) */
};

/* Times a rank may die before it is up, in a row, before the node gives up. */
#define DQ_NODE_RANK_START_TRIES 3
/* Shards' images a rank may have waiting in the node before the node stops reading that rank
 * (back-pressure: the rank then blocks until the broker acknowledges). */
#define DQ_NODE_UNSENT_LIMIT (2 * DQ_PROTO_RESULT_WINDOW)

/* A model the node serves: the name announced and asked for in ASSIGN, and what the backend
 * loads (a path or the name). */
typedef struct {
    char name[DQ_PROTO_MAX_NAME + 1];
    char spec[DQ_PROTO_MAX_PATH + 1];
} dq_node_model_t;

typedef struct {
    const char *name;    /* borrowed; node name in READY */
    const char *broker;  /* borrowed; endpoint */
    const char *exe;     /* borrowed; program run in rank mode */
    const char *backend; /* borrowed */
    uint32_t null_step_ms;
    const char *null_fail;    /* borrowed; "" for none */
    uint32_t batch;           /* shards per rank at once, >= 1 */
    uint32_t max_batch;       /* images a rank renders in one pipeline batch,
                                 1..DQ_PROTO_MAX_BATCH_IMAGES; announced in READY (bimg) */
    uint32_t n_ranks;         /* 1..DQ_PROTO_MAX_RANKS */
    char (*rank_devices)[64]; /* borrowed; n_ranks device names ("cpu", "cuda:0") */
    dq_device_t devices[DQ_PROTO_MAX_DEVICES]; /* announced in READY */
    uint32_t n_devices;                        /* 1..DQ_PROTO_MAX_DEVICES */
    dq_node_model_t models[DQ_PROTO_MAX_MODELS];
    uint32_t n_models;         /* 1..DQ_PROTO_MAX_MODELS; the first is loaded at start */
    uint32_t death_timeout_ms; /* exit after this long without the broker */
    uint32_t drain_timeout_ms; /* most time a drain waits for running shards; 0: no limit */
    int signal_fd;             /* read end of the signal self-pipe (one byte per signal) */
} dq_node_params_t;

typedef struct dq_node_t dq_node_t;

/* Makes the node (nothing started yet). Copies what it keeps from params except the borrowed
 * strings. Returns NULL with a message in err (bad parameters, out of memory). */
dq_node_t *dq_node_new(const dq_node_params_t *params, char *err, size_t errlen);
void dq_node_destroy(dq_node_t **self_p);

/* Starts the ranks, connects to the broker, and runs the event loop until the node drains or
 * fails. Returns a DQ_NODE_EXIT_* code. */
int dq_node_run(dq_node_t *self);

#endif
