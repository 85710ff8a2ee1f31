/* broker/server.h: the diffq-broker daemon's one event loop: a ROUTER socket serving nodes and
 * clients over the queue store. main.c parses options and calls these. */
#ifndef DQ_BROKER_SERVER_H
#define DQ_BROKER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dq_server dq_server_t;

/* What the daemon is told by its options (broker/main.c); strings borrowed for dq_server_new. */
typedef struct {
    const char *bind;          /* ZeroMQ endpoint the ROUTER binds, e.g. tcp://0.0.0.0:5555 */
    const char *state_dir;     /* holds queue.db, the lock file and out/ (default outputs) */
    int64_t grace_ms;          /* after a restart, how long nodes may reclaim their shards */
    int64_t lease_ms;          /* lease granted with each ASSIGN */
    int64_t upload_timeout_ms; /* a staged upload idle this long is discarded */
    int shard_size;            /* requests per shard at submit, 1..DQ_PROTO_MAX_REQUESTS; cut to
                                  a node's batch (READY bimg) when leased */
    int max_attempts;          /* leases per shard before it fails */
    int64_t unserved_ms;       /* nodes connected but none serves a job's model this long: its
                                  queued shards fail (dq_store_check_serving) */
} dq_server_params_t;

/* Requests per shard at submit unless --shard-size says otherwise: the largest batch worth
 * forming (a node announces its own, READY bimg; diffq-node's GPU default is 8). Shards are only
 * ever cut, never merged: each is cut down to the batch of the node that leases it
 * (dq_store_lease_node). */
#define DQ_BROKER_SHARD_SIZE_DEFAULT 16

/* Fills the defaults (bind on DQ_PROTO_DEFAULT_PORT, grace 15 s, lease DQ_PROTO_LEASE_DEFAULT_MS,
 * upload timeout DQ_PROTO_UPLOAD_TIMEOUT_MS, shards of DQ_BROKER_SHARD_SIZE_DEFAULT requests,
 * 3 attempts, unserved jobs fail after DQ_BROKER_UNSERVED_DEFAULT_MS). */
#define DQ_BROKER_UNSERVED_DEFAULT_MS 120000 /* ms; 2 min: longer than a node takes to start and
                                                announce itself, short enough that a typo in a
                                                model name is reported before anyone waits long */
void dq_server_params_init(dq_server_params_t *params);

/* Exit codes of diffq-broker, one per distinct failure (man diffq-broker(8)). */
enum {
    DQ_BROKER_EXIT_OK = 0,     /* stopped by SIGTERM/SIGINT */
    DQ_BROKER_EXIT_FAILED = 1, /* a runtime fault (database, socket) */
    DQ_BROKER_EXIT_USAGE = 2,  /* bad options */
    DQ_BROKER_EXIT_STATE = 3,  /* state directory unusable, or locked by another broker */
    DQ_BROKER_EXIT_BIND = 4,   /* the endpoint could not be bound */
};

/* Locks the state directory, opens the store, runs startup recovery and binds the socket.
 * Returns the server, or NULL with a message in err and the exit code to use in *exit_code. */
dq_server_t *dq_server_new(const dq_server_params_t *params, char *err, size_t errlen,
                           int *exit_code);
/* Serves until *stop becomes true (set from a signal handler) or a fatal fault. Returns an
 * exit code (DQ_BROKER_EXIT_OK when stopped). */
int dq_server_run(dq_server_t *self, volatile int *stop);
/* Tells connected nodes that the broker goes away, closes everything, releases the lock, nulls
 * *self_p. Idempotent. */
void dq_server_destroy(dq_server_t **self_p);

#endif
