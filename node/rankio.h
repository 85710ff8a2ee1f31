/* node/rankio.h: the framing between the node and its rank processes over a socketpair. A record
 * is: u32 little-endian length of the rest, u8 kind, u8 part count, then each part as u32
 * little-endian length and bytes. DQP messages travel as their frames, so the rank's messages are
 * checked by the same codec as the broker's. */
#ifndef DQ_NODE_RANKIO_H
#define DQ_NODE_RANKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

/* Record kinds. */
typedef enum {
    DQ_RANKIO_HELLO = 1, /* node -> rank: parts rank index, backend, device, null step ms, null
                            fail, model spec, max batch (images per pipeline batch, decimal);
                            the rank creates its backend and loads the model */
    DQ_RANKIO_UP,        /* rank -> node: no parts: ready; or parts class (decimal
                            dq_render_rc_t), message: it could not start */
    DQ_RANKIO_ASSIGN,    /* node -> rank: part 0 the model spec, then an ASSIGN's DQP frames */
    DQ_RANKIO_DQP,       /* either way: a DQP message's frames (node -> rank: STOP; rank -> node:
                            PROGRESS, RESULT, SHARD_DONE (rendering finished), SHARD_FAILED, and
                            STOP echoed back once a stopped shard has stopped) */
    DQ_RANKIO_KIND_COUNT
} dq_rankio_kind_t;

#define DQ_RANKIO_MAX_PARTS 8
#define DQ_RANKIO_HELLO_PARTS 7 /* node and rank are one program, so HELLO has one form */
/* Largest record: a RESULT with the largest PNG and body, with room for the framing. */
#define DQ_RANKIO_MAX_RECORD ((size_t) DQ_PROTO_MAX_PNG + DQ_PROTO_MAX_BODY + 4096)

/* One received record; parts point into the reader's buffer, valid until the next read or next
 * call on the same dq_rankio_t. */
typedef struct {
    uint8_t kind;
    size_t n;
    const uint8_t *part[DQ_RANKIO_MAX_PARTS];
    size_t size[DQ_RANKIO_MAX_PARTS];
} dq_rankio_rec_t;

typedef struct dq_rankio_t dq_rankio_t;

/* Wraps fd (owned: closed by destroy) with input and output buffers; records longer than
 * max_record are refused both ways. NULL when out of memory. */
dq_rankio_t *dq_rankio_new(int fd, size_t max_record);
void dq_rankio_destroy(dq_rankio_t **self_p);
int dq_rankio_fd(const dq_rankio_t *self);

/* Appends a record to the output buffer. Returns 0, or -1 with a message in err (too many parts,
 * too large, out of memory); then nothing is queued. */
int dq_rankio_queue(dq_rankio_t *self, uint8_t kind, const uint8_t *const *parts,
                    const size_t *sizes, size_t n, char *err, size_t errlen);
/* Appends a record whose parts are `prefix` (n_prefix strings, may be 0) and then msg's DQP
 * frames. Returns as dq_rankio_queue, or -1 when msg does not encode. */
int dq_rankio_queue_msg(dq_rankio_t *self, uint8_t kind, const char *const *prefix, size_t n_prefix,
                        const dq_msg_t *msg, char *err, size_t errlen);
/* Writes as much of the output buffer as the fd takes without blocking (or all of it, on a
 * blocking fd). Returns 1 when the buffer is empty, 0 when some is left (EAGAIN), -1 with a
 * message in err on a write error (the peer is gone). */
int dq_rankio_flush(dq_rankio_t *self, char *err, size_t errlen);
/* Flushes the whole buffer, waiting for the fd when it is non-blocking. Returns 0 or -1. */
int dq_rankio_flush_all(dq_rankio_t *self, char *err, size_t errlen);
/* Bytes still waiting in the output buffer. */
size_t dq_rankio_pending(const dq_rankio_t *self);

/* One read(2) into the input buffer. Returns 1 when bytes came (or EAGAIN/EINTR), 0 at end of
 * file, -1 with a message in err on a read error. */
int dq_rankio_read(dq_rankio_t *self, char *err, size_t errlen);
/* Takes the next whole record from the input buffer. Returns 1 with rec filled, 0 when more bytes
 * are needed, -1 with a message in err when the bytes are not a valid record (bad length, kind or
 * part count, parts that overrun the record). */
int dq_rankio_next(dq_rankio_t *self, dq_rankio_rec_t *rec, char *err, size_t errlen);
/* Blocking: reads until a whole record is there. Returns 1, 0 at end of file, -1 on error. */
int dq_rankio_recv(dq_rankio_t *self, dq_rankio_rec_t *rec, char *err, size_t errlen);

/* Decodes parts first.. of rec as DQP frames into out. Returns 0 or a negative dq_proto_rc_t
 * with a message in err (out is then cleared). */
int dq_rankio_decode_msg(const dq_rankio_rec_t *rec, size_t first, dq_msg_t *out, char *err,
                         size_t errlen);

#endif
