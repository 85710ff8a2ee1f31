/* common/proto_schema.h: internal to the protocol codec. Each message body is described once, as
 * a table of fields (msgpack key, type, struct offset, limits); one generic encoder and decoder
 * walk these tables, so every message has exactly one definition of its encoding. */
#ifndef DQ_PROTO_SCHEMA_H
#define DQ_PROTO_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/proto.h"

typedef enum {
    DQ_F_U32,      /* uint32_t; min..max */
    DQ_F_U64,      /* uint64_t; min..max */
    DQ_F_I32,      /* int32_t; min..max (signed) */
    DQ_F_F64,      /* double; dmin..dmax, finite */
    DQ_F_BOOL,     /* bool */
    DQ_F_STR,      /* char[max + 1] inside the struct */
    DQ_F_TEXT,     /* char * (owned), at most max bytes */
    DQ_F_LIST,     /* elem * (owned) + uint32_t count; min..max entries of schema elem */
    DQ_F_TEXTLIST, /* char ** (owned) + uint32_t count; each string at most elem_max bytes */
    DQ_F_U64LIST,  /* uint64_t * (owned) + uint32_t count */
    DQ_F_META,     /* dq_meta_t * (owned) + uint32_t count, on the wire a map str -> str */
    DQ_F_TYPE_COUNT
} dq_ftype_t;

typedef struct dq_schema dq_schema_t;

typedef struct {
    const char *key;          /* msgpack map key */
    dq_ftype_t type;
    size_t off;               /* offset of the member in its struct */
    size_t count_off;         /* lists: offset of the uint32_t count */
    int64_t min;              /* integers: minimum; lists: minimum count */
    uint64_t max;             /* integers: maximum (I32: as int64); strings: bytes; lists: count */
    double dmin, dmax;        /* DQ_F_F64 range */
    const dq_schema_t *elem;  /* DQ_F_LIST element schema */
    size_t elem_max;          /* DQ_F_TEXTLIST: bytes per string */
    bool optional;            /* added by a minor version: may be absent (then zero, "" or an
                                 empty list); the encoder leaves it out when it is empty */
} dq_field_t;

struct dq_schema {
    const char *name;         /* for error messages */
    size_t size;              /* sizeof the struct (list elements) */
    const dq_field_t *fields;
    size_t n_fields;          /* at most 64 (the decoder's seen-mask) */
};

/* What the codec knows of each command. */
typedef struct {
    const char *name;
    dq_peer_kind_t peer;
    dq_dir_t dir;
    const dq_schema_t *body;  /* fields of the union member */
    int has_png;              /* 1: exactly one raw PNG frame follows the body */
    size_t png_off, png_size_off; /* offsets of uint8_t * and size_t in the union member */
} dq_cmd_info_t;

/* Entry for cmd, or NULL when cmd is not a command. */
const dq_cmd_info_t *dq_proto_cmd_info(int cmd);

/* Offset of the union in dq_msg_t: every body struct starts there. */
#define DQ_MSG_BODY(msg) ((void *) ((char *) (msg) + offsetof(dq_msg_t, ready)))
#define DQ_MSG_CBODY(msg) ((const void *) ((const char *) (msg) + offsetof(dq_msg_t, ready)))

/* Total msgpack objects a body may hold; bounds msgpack-c's zone memory (24 bytes per object)
 * to about 6 MiB. The largest legal body (a full STATUS_REPLY) holds about 130,000. */
#define DQ_PROTO_MAX_OBJECTS (1u << 18)

/* Where a codec error is reported: err (may be NULL) gets "WHAT: path: detail". */
typedef struct {
    char *err;
    size_t errlen;
    const char *what; /* command name, or "frames" before the command is known */
} dq_proto_ctx_t;

/* Formats the error into ctx and returns -rc. */
int dq_proto_fail(dq_proto_ctx_t *ctx, const char *path, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Packs the struct at base as a msgpack map, checking every limit first. Returns 0 or -rc. */
int dq_proto_body_encode(dq_proto_ctx_t *ctx, const dq_schema_t *schema, const void *base,
                         msgpack_sbuffer *out);
/* Decodes one msgpack map filling the zeroed struct at base. On failure base may hold partial
 * owned data: free it with dq_proto_body_free. Returns 0 or -rc. */
int dq_proto_body_decode(dq_proto_ctx_t *ctx, const dq_schema_t *schema, void *base,
                         const uint8_t *data, size_t size);
/* Frees what the struct at base owns (per schema); leaves pointers NULL and counts 0. */
void dq_proto_body_free(const dq_schema_t *schema, void *base);
/* True when s[0..n) is valid UTF-8 (no overlongs, surrogates or NULs). */
bool dq_proto_utf8_ok(const uint8_t *s, size_t n);

#endif
