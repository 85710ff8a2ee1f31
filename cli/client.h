/* cli/client.h: the diffq CLI's connection to a broker: one DEALER, request/reply with a timeout
 * and retries (Lazy Pirate: on timeout the socket is closed and reopened, then the request sent
 * again). */
#ifndef DQ_CLI_CLIENT_H
#define DQ_CLI_CLIENT_H

#include <stddef.h>

#include "common/proto.h"

typedef struct dq_client dq_client_t;

#define DQ_CLIENT_TIMEOUT_MS 5000 /* per try; a broker answers in milliseconds when alive */
#define DQ_CLIENT_TRIES      3

/* The endpoint to use: flag if given, else $DIFFQ_BROKER, else DQ_PROTO_DEFAULT_ENDPOINT.
 * Borrowed strings. */
const char *dq_client_endpoint(const char *flag);

/* Connects (lazily, as ZeroMQ does) to endpoint. NULL with a message in err on a bad endpoint. */
dq_client_t *dq_client_new(const char *endpoint, char *err, size_t errlen);
/* Sends DISCONNECT (so the broker drops this client's uploads at once), closes, nulls *self_p. */
void dq_client_destroy(dq_client_t **self_p);

/* Sends req (a client command) and waits for its reply, retrying as above. On success *reply is
 * the decoded answer (caller clears it) and 0 is returned; an ERROR reply also returns 0 (check
 * reply->cmd). Returns -1 with a message in err when no valid reply came ("no answer from
 * tcp://...: is diffq-broker running?") or req could not be encoded. Replies that do not decode
 * are skipped. retry: false for requests that must not be repeated blindly. */
int dq_client_request(dq_client_t *self, const dq_msg_t *req, dq_msg_t *reply, bool retry,
                      char *err, size_t errlen);

/* Formats an ERROR reply as "broker: <code>: <message>" into err. */
void dq_client_error_text(const dq_msg_t *reply, char *err, size_t errlen);

/* Prints a NODE table (cli/cmd_status.c; also "diffq nodes"). */
void dq_cli_print_nodes(const dq_node_info_t *nodes, uint32_t n);

/* Parses a job id argument (decimal, >= 1). Returns 0, or -1 with a message in err. */
int dq_client_parse_job(const char *text, uint64_t *job, char *err, size_t errlen);

/* Polls a job's status until it ends, drawing a progress bar when stdout is a terminal and
 * printing a line per change otherwise (cli/cmd_wait.c). Returns the exit code: 0 when every
 * image was rendered, 1 when some failed or the job was cancelled or the broker stayed away. */
int dq_client_wait_job(dq_client_t *self, uint64_t job);

#endif
