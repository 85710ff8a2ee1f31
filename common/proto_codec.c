/* common/proto_codec.c: the generic msgpack body codec that walks the field tables of
 * proto_schema.c. Decoding first scans the raw bytes (bounded sizes, depth and value count) so
 * msgpack-c never allocates for counts the input cannot hold, then checks every field. */
#include "common/proto_schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 160

int dq_proto_fail(dq_proto_ctx_t *ctx, const char *path, int rc, const char *fmt, ...) {
    if (ctx->err && ctx->errlen > 0) {
        char detail[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        snprintf(ctx->err, ctx->errlen, "%s: %s%s%s", ctx->what, path, *path ? ": " : "", detail);
    }
    return -rc;
}

bool dq_proto_utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < k) return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += k + 1;
    }
    return true;
}

/* Field paths for messages ("reqs[3].prompt"). Built by hand, cut at PATH_MAX_LEN - 1 bytes: a
 * shortened path only shortens the message. */
static void s_join(char *out, const char *path, const char *sep, const char *tail,
                   const char *end) {
    const char *parts[4] = {path, sep, tail, end};
    size_t len = 0;
    for (int p = 0; p < 4; p++)
        for (const char *c = parts[p]; *c && len + 1 < PATH_MAX_LEN; c++) out[len++] = *c;
    out[len] = '\0';
}

static void s_child(char *out, const char *path, const char *key) {
    s_join(out, path, *path ? "." : "", key, "");
}

static void s_index(char *out, const char *path, uint32_t i) {
    char num[16];
    size_t k = sizeof num - 1;
    num[k] = '\0';
    do {
        num[--k] = (char) ('0' + i % 10);
        i /= 10;
    } while (i && k > 0);
    s_join(out, path, "[", num + k, "]");
}

/* ---------------------------------------------------------------------------------------------
 * Encoding. */

#define PK(call)                                                                                   \
    do {                                                                                           \
        if ((call) != 0) return dq_proto_fail(ctx, path, DQ_PROTO_ENOMEM, "out of memory");       \
    } while (0)

static int s_enc_str(dq_proto_ctx_t *ctx, const char *path, msgpack_packer *pk, const char *s,
                     size_t len, uint64_t max) {
    if (len > max)
        return dq_proto_fail(ctx, path, DQ_PROTO_ELENGTH, "%zu bytes, limit %llu", len,
                             (unsigned long long) max);
    if (!dq_proto_utf8_ok((const uint8_t *) s, len))
        return dq_proto_fail(ctx, path, DQ_PROTO_EENCODING, "not valid UTF-8");
    PK(msgpack_pack_str(pk, len));
    PK(msgpack_pack_str_body(pk, s, len));
    return 0;
}

static int s_enc_text(dq_proto_ctx_t *ctx, const char *path, msgpack_packer *pk, const char *s,
                      uint64_t max) {
    if (!s) s = "";
    return s_enc_str(ctx, path, pk, s, strlen(s), max);
}

static int s_enc_struct(dq_proto_ctx_t *ctx, const char *path, const dq_schema_t *schema,
                        const void *base, msgpack_packer *pk);

static int s_enc_count(dq_proto_ctx_t *ctx, const char *path, const dq_field_t *f, uint32_t n,
                       const void *ptr) {
    if ((int64_t) n < f->min || n > f->max)
        return dq_proto_fail(ctx, path, DQ_PROTO_ECOUNT, "%u entries, allowed %lld..%llu", n,
                             (long long) f->min, (unsigned long long) f->max);
    if (n > 0 && !ptr)
        return dq_proto_fail(ctx, path, DQ_PROTO_ECOUNT, "%u entries but no array", n);
    return 0;
}

static int s_enc_field(dq_proto_ctx_t *ctx, const char *path, const dq_field_t *f,
                       const char *base, msgpack_packer *pk) {
    const char *m = base + f->off;
    uint32_t n = f->count_off ? *(const uint32_t *) (const void *) (base + f->count_off) : 0;
    const void *ptr = f->count_off ? *(void *const *) (const void *) m : NULL;
    char sub[PATH_MAX_LEN];
    int rc;
    switch (f->type) {
    case DQ_F_U32:
    case DQ_F_U64: {
        uint64_t v = f->type == DQ_F_U32 ? *(const uint32_t *) (const void *) m
                                         : *(const uint64_t *) (const void *) m;
        if (v < (uint64_t) f->min || v > f->max)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE, "%llu outside %lld..%llu",
                                 (unsigned long long) v, (long long) f->min,
                                 (unsigned long long) f->max);
        PK(msgpack_pack_uint64(pk, v));
        return 0;
    }
    case DQ_F_I32: {
        int32_t v = *(const int32_t *) (const void *) m;
        if (v < f->min || v > (int64_t) f->max)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE, "%d outside %lld..%lld", v,
                                 (long long) f->min, (long long) f->max);
        PK(msgpack_pack_int32(pk, v));
        return 0;
    }
    case DQ_F_F64: {
        double v = *(const double *) (const void *) m;
        if (!isfinite(v) || v < f->dmin || v > f->dmax)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE, "%g outside %g..%g", v, f->dmin,
                                 f->dmax);
        PK(msgpack_pack_double(pk, v));
        return 0;
    }
    case DQ_F_BOOL:
        PK(*(const bool *) (const void *) m ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
        return 0;
    case DQ_F_STR: {
        size_t len = strnlen(m, f->max + 1);
        return s_enc_str(ctx, path, pk, m, len, f->max);
    }
    case DQ_F_TEXT:
        return s_enc_text(ctx, path, pk, *(char *const *) (const void *) m, f->max);
    case DQ_F_LIST:
        if ((rc = s_enc_count(ctx, path, f, n, ptr)) != 0) return rc;
        PK(msgpack_pack_array(pk, n));
        for (uint32_t i = 0; i < n; i++) {
            s_index(sub, path, i);
            rc = s_enc_struct(ctx, sub, f->elem, (const char *) ptr + i * f->elem->size, pk);
            if (rc != 0) return rc;
        }
        return 0;
    case DQ_F_TEXTLIST:
        if ((rc = s_enc_count(ctx, path, f, n, ptr)) != 0) return rc;
        PK(msgpack_pack_array(pk, n));
        for (uint32_t i = 0; i < n; i++) {
            s_index(sub, path, i);
            if ((rc = s_enc_text(ctx, sub, pk, ((char *const *) ptr)[i], f->elem_max)) != 0)
                return rc;
        }
        return 0;
    case DQ_F_U64LIST:
        if ((rc = s_enc_count(ctx, path, f, n, ptr)) != 0) return rc;
        PK(msgpack_pack_array(pk, n));
        for (uint32_t i = 0; i < n; i++) PK(msgpack_pack_uint64(pk, ((const uint64_t *) ptr)[i]));
        return 0;
    case DQ_F_META: {
        if ((rc = s_enc_count(ctx, path, f, n, ptr)) != 0) return rc;
        const dq_meta_t *meta = ptr;
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (strncmp(meta[i].key, meta[j].key, sizeof meta[i].key) == 0)
                    return dq_proto_fail(ctx, path, DQ_PROTO_EDUPLICATE, "key \"%.64s\" twice",
                                         meta[i].key);
        PK(msgpack_pack_map(pk, n));
        for (uint32_t i = 0; i < n; i++) {
            s_index(sub, path, i);
            size_t klen = strnlen(meta[i].key, sizeof meta[i].key);
            if ((rc = s_enc_str(ctx, sub, pk, meta[i].key, klen, DQ_PROTO_MAX_META_KEY)) != 0)
                return rc;
            if ((rc = s_enc_text(ctx, sub, pk, meta[i].value, DQ_PROTO_MAX_META_VALUE)) != 0)
                return rc;
        }
        return 0;
    }
    case DQ_F_TYPE_COUNT:
        break;
    }
    return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "bad field table");
}

/* True for an optional field holding nothing ("", NULL, no entries, 0): it is not sent, so a peer
 * of an older minor version sees exactly the body it knows. */
static bool s_enc_skip(const dq_field_t *f, const char *base) {
    if (!f->optional) return false;
    const char *m = base + f->off;
    switch (f->type) {
    case DQ_F_STR:
        return m[0] == '\0';
    case DQ_F_TEXT: {
        const char *s = *(char *const *) (const void *) m;
        return !s || !s[0];
    }
    case DQ_F_U32:
        return *(const uint32_t *) (const void *) m == 0;
    case DQ_F_U64:
        return *(const uint64_t *) (const void *) m == 0;
    default:
        return f->count_off && *(const uint32_t *) (const void *) (base + f->count_off) == 0;
    }
}

static int s_enc_struct(dq_proto_ctx_t *ctx, const char *path, const dq_schema_t *schema,
                        const void *base, msgpack_packer *pk) {
    uint32_t n = 0;
    for (size_t i = 0; i < schema->n_fields; i++)
        n += !s_enc_skip(&schema->fields[i], base);
    PK(msgpack_pack_map(pk, n));
    for (size_t i = 0; i < schema->n_fields; i++) {
        const dq_field_t *f = &schema->fields[i];
        if (s_enc_skip(f, base)) continue;
        char sub[PATH_MAX_LEN];
        s_child(sub, path, f->key);
        size_t klen = strlen(f->key);
        PK(msgpack_pack_str(pk, klen));
        PK(msgpack_pack_str_body(pk, f->key, klen));
        int rc = s_enc_field(ctx, sub, f, base, pk);
        if (rc != 0) return rc;
    }
    return 0;
}

int dq_proto_body_encode(dq_proto_ctx_t *ctx, const dq_schema_t *schema, const void *base,
                         msgpack_sbuffer *out) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    return s_enc_struct(ctx, "", schema, base, &pk);
}

/* ---------------------------------------------------------------------------------------------
 * Structural scan of untrusted bytes: one msgpack value from *pos, bounded in depth, in total
 * values and in every declared count by the bytes actually present. */

static uint64_t s_be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static int s_scan(dq_proto_ctx_t *ctx, const uint8_t *p, size_t n, size_t *pos, unsigned depth,
                  size_t *objects) {
    if (++*objects > DQ_PROTO_MAX_OBJECTS)
        return dq_proto_fail(ctx, "", DQ_PROTO_ECOUNT, "more than %u msgpack values",
                             DQ_PROTO_MAX_OBJECTS);
    if (*pos >= n) return dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK, "truncated msgpack");
    size_t at = *pos;
    uint8_t b = p[(*pos)++];
    size_t lenbytes = 0, extra = 0; /* length field size; fixed payload bytes after it */
    uint64_t payload = 0, items = 0;
    int container = 0, map = 0;
    if (b <= 0x7f || b >= 0xe0) return 0;
    if (b <= 0x8f) {
        container = map = 1, items = b & 0x0f;
    } else if (b <= 0x9f) {
        container = 1, items = b & 0x0f;
    } else if (b <= 0xbf) {
        payload = b & 0x1f;
    } else {
        switch (b) {
        case 0xc0: case 0xc2: case 0xc3: return 0;
        case 0xc4: case 0xd9: lenbytes = 1; break;
        case 0xc5: case 0xda: lenbytes = 2; break;
        case 0xc6: case 0xdb: lenbytes = 4; break;
        case 0xc7: lenbytes = 1, extra = 1; break;
        case 0xc8: lenbytes = 2, extra = 1; break;
        case 0xc9: lenbytes = 4, extra = 1; break;
        case 0xca: payload = 4; break;
        case 0xcb: payload = 8; break;
        case 0xcc: case 0xd0: payload = 1; break;
        case 0xcd: case 0xd1: payload = 2; break;
        case 0xce: case 0xd2: payload = 4; break;
        case 0xcf: case 0xd3: payload = 8; break;
        case 0xd4: payload = 2; break;
        case 0xd5: payload = 3; break;
        case 0xd6: payload = 5; break;
        case 0xd7: payload = 9; break;
        case 0xd8: payload = 17; break;
        case 0xdc: container = 1, lenbytes = 2; break;
        case 0xdd: container = 1, lenbytes = 4; break;
        case 0xde: container = map = 1, lenbytes = 2; break;
        case 0xdf: container = map = 1, lenbytes = 4; break;
        default:
            return dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK, "invalid msgpack byte 0x%02x at %zu",
                                 b, at);
        }
    }
    if (lenbytes) {
        if (n - *pos < lenbytes)
            return dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK, "truncated msgpack at %zu", at);
        uint64_t v = s_be(p + *pos, lenbytes);
        *pos += lenbytes;
        if (container)
            items = v;
        else
            payload = v + extra;
    }
    if (!container) {
        if (n - *pos < payload)
            return dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK,
                                 "truncated msgpack: value at %zu needs %llu bytes, %zu left", at,
                                 (unsigned long long) payload, n - *pos);
        *pos += payload;
        return 0;
    }
    if (map) items *= 2;
    /* Every value takes at least one byte: a count the rest of the input cannot hold is a lie. */
    if (items > n - *pos)
        return dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK,
                             "truncated msgpack: container at %zu declares %llu values, %zu bytes "
                             "left",
                             at, (unsigned long long) items, n - *pos);
    if (items > 0 && depth + 1 >= DQ_PROTO_MAX_DEPTH)
        return dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK, "msgpack nested deeper than %d",
                             DQ_PROTO_MAX_DEPTH);
    for (uint64_t i = 0; i < items; i++) {
        int rc = s_scan(ctx, p, n, pos, depth + 1, objects);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Decoding of the unpacked object tree. */

static const char *s_type_name(msgpack_object_type t) {
    switch (t) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "string";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "binary";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown type";
}

static int s_dec_str(dq_proto_ctx_t *ctx, const char *path, const msgpack_object *o, uint64_t max,
                     const char **s, size_t *len) {
    if (o->type != MSGPACK_OBJECT_STR)
        return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "expected a string, got %s",
                             s_type_name(o->type));
    if (o->via.str.size > max)
        return dq_proto_fail(ctx, path, DQ_PROTO_ELENGTH, "%u bytes, limit %llu", o->via.str.size,
                             (unsigned long long) max);
    if (!dq_proto_utf8_ok((const uint8_t *) o->via.str.ptr, o->via.str.size))
        return dq_proto_fail(ctx, path, DQ_PROTO_EENCODING, "not valid UTF-8 or contains NUL");
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

static int s_dec_text(dq_proto_ctx_t *ctx, const char *path, const msgpack_object *o, uint64_t max,
                      char **out) {
    const char *s = NULL;
    size_t len = 0;
    int rc = s_dec_str(ctx, path, o, max, &s, &len);
    if (rc != 0) return rc;
    char *copy = malloc(len + 1);
    if (!copy) return dq_proto_fail(ctx, path, DQ_PROTO_ENOMEM, "out of memory");
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    *out = copy;
    return 0;
}

/* Reads an integer as (negative, magnitude-or-value): *neg set for values below zero. */
static int s_dec_int(dq_proto_ctx_t *ctx, const char *path, const msgpack_object *o, bool *neg,
                     uint64_t *u, int64_t *i) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *neg = false, *u = o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *neg = true, *i = o->via.i64;
        return 0;
    }
    return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "expected an integer, got %s",
                         s_type_name(o->type));
}

static int s_dec_array(dq_proto_ctx_t *ctx, const char *path, const dq_field_t *f,
                       const msgpack_object *o, size_t elem_size, void **ptr, uint32_t *count) {
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "expected an array, got %s",
                             s_type_name(o->type));
    uint32_t n = o->via.array.size;
    if ((int64_t) n < f->min || n > f->max)
        return dq_proto_fail(ctx, path, DQ_PROTO_ECOUNT, "%u entries, allowed %lld..%llu", n,
                             (long long) f->min, (unsigned long long) f->max);
    if (n == 0) return 0;
    *ptr = calloc(n, elem_size);
    if (!*ptr) return dq_proto_fail(ctx, path, DQ_PROTO_ENOMEM, "out of memory");
    *count = n;
    return 0;
}

static int s_dec_struct(dq_proto_ctx_t *ctx, const char *path, const dq_schema_t *schema,
                        void *base, const msgpack_object *o);

static int s_dec_meta(dq_proto_ctx_t *ctx, const char *path, const dq_field_t *f, char *base,
                      const msgpack_object *o) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "expected a map, got %s",
                             s_type_name(o->type));
    uint32_t n = o->via.map.size;
    if (n > f->max)
        return dq_proto_fail(ctx, path, DQ_PROTO_ECOUNT, "%u entries, limit %llu", n,
                             (unsigned long long) f->max);
    if (n == 0) return 0;
    dq_meta_t *meta = calloc(n, sizeof *meta);
    if (!meta) return dq_proto_fail(ctx, path, DQ_PROTO_ENOMEM, "out of memory");
    *(dq_meta_t **) (void *) (base + f->off) = meta;
    *(uint32_t *) (void *) (base + f->count_off) = n;
    for (uint32_t i = 0; i < n; i++) {
        char sub[PATH_MAX_LEN];
        s_index(sub, path, i);
        const char *k = NULL;
        size_t klen = 0;
        int rc = s_dec_str(ctx, sub, &o->via.map.ptr[i].key, DQ_PROTO_MAX_META_KEY, &k, &klen);
        if (rc != 0) return rc;
        memcpy(meta[i].key, k, klen);
        meta[i].key[klen] = '\0';
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(meta[j].key, meta[i].key) == 0)
                return dq_proto_fail(ctx, sub, DQ_PROTO_EDUPLICATE, "key \"%s\" twice",
                                     meta[i].key);
        s_child(sub, path, meta[i].key);
        rc = s_dec_text(ctx, sub, &o->via.map.ptr[i].val, DQ_PROTO_MAX_META_VALUE, &meta[i].value);
        if (rc != 0) return rc;
    }
    return 0;
}

static int s_dec_field(dq_proto_ctx_t *ctx, const char *path, const dq_field_t *f, char *base,
                       const msgpack_object *o) {
    char *m = base + f->off;
    char sub[PATH_MAX_LEN];
    bool neg = false;
    uint64_t u = 0;
    int64_t i = 0;
    int rc;
    switch (f->type) {
    case DQ_F_U32:
    case DQ_F_U64:
        if ((rc = s_dec_int(ctx, path, o, &neg, &u, &i)) != 0) return rc;
        if (neg)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE,
                                 "negative value %lld where an unsigned integer is expected",
                                 (long long) i);
        if (u < (uint64_t) f->min || u > f->max)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE, "%llu outside %lld..%llu",
                                 (unsigned long long) u, (long long) f->min,
                                 (unsigned long long) f->max);
        if (f->type == DQ_F_U32)
            *(uint32_t *) (void *) m = (uint32_t) u;
        else
            *(uint64_t *) (void *) m = u;
        return 0;
    case DQ_F_I32:
        if ((rc = s_dec_int(ctx, path, o, &neg, &u, &i)) != 0) return rc;
        if (!neg && u > (uint64_t) INT64_MAX)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE, "%llu outside %lld..%lld",
                                 (unsigned long long) u, (long long) f->min, (long long) f->max);
        if (!neg) i = (int64_t) u;
        if (i < f->min || i > (int64_t) f->max)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE, "%lld outside %lld..%lld",
                                 (long long) i, (long long) f->min, (long long) f->max);
        *(int32_t *) (void *) m = (int32_t) i;
        return 0;
    case DQ_F_F64: {
        double v;
        if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
            v = o->via.f64;
        else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            v = (double) o->via.u64; /* other encoders may pack 7.0 as 7 */
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            v = (double) o->via.i64;
        else
            return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "expected a number, got %s",
                                 s_type_name(o->type));
        if (!isfinite(v) || v < f->dmin || v > f->dmax)
            return dq_proto_fail(ctx, path, DQ_PROTO_ERANGE, "%g outside %g..%g", v, f->dmin,
                                 f->dmax);
        *(double *) (void *) m = v;
        return 0;
    }
    case DQ_F_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "expected a boolean, got %s",
                                 s_type_name(o->type));
        *(bool *) (void *) m = o->via.boolean;
        return 0;
    case DQ_F_STR: {
        const char *s = NULL;
        size_t len = 0;
        if ((rc = s_dec_str(ctx, path, o, f->max, &s, &len)) != 0) return rc;
        memcpy(m, s, len);
        m[len] = '\0';
        return 0;
    }
    case DQ_F_TEXT:
        return s_dec_text(ctx, path, o, f->max, (char **) (void *) m);
    case DQ_F_LIST: {
        void **ptr = (void **) (void *) m;
        uint32_t *count = (uint32_t *) (void *) (base + f->count_off);
        if ((rc = s_dec_array(ctx, path, f, o, f->elem->size, ptr, count)) != 0) return rc;
        for (uint32_t k = 0; k < *count; k++) {
            s_index(sub, path, k);
            rc = s_dec_struct(ctx, sub, f->elem, (char *) *ptr + k * f->elem->size,
                              &o->via.array.ptr[k]);
            if (rc != 0) return rc;
        }
        return 0;
    }
    case DQ_F_TEXTLIST: {
        char ***ptr = (char ***) (void *) m;
        uint32_t *count = (uint32_t *) (void *) (base + f->count_off);
        if ((rc = s_dec_array(ctx, path, f, o, sizeof(char *), (void **) ptr, count)) != 0)
            return rc;
        for (uint32_t k = 0; k < *count; k++) {
            s_index(sub, path, k);
            rc = s_dec_text(ctx, sub, &o->via.array.ptr[k], f->elem_max, &(*ptr)[k]);
            if (rc != 0) return rc;
        }
        return 0;
    }
    case DQ_F_U64LIST: {
        uint64_t **ptr = (uint64_t **) (void *) m;
        uint32_t *count = (uint32_t *) (void *) (base + f->count_off);
        if ((rc = s_dec_array(ctx, path, f, o, sizeof(uint64_t), (void **) ptr, count)) != 0)
            return rc;
        for (uint32_t k = 0; k < *count; k++) {
            s_index(sub, path, k);
            if ((rc = s_dec_int(ctx, sub, &o->via.array.ptr[k], &neg, &u, &i)) != 0) return rc;
            if (neg)
                return dq_proto_fail(ctx, sub, DQ_PROTO_ERANGE,
                                     "negative value %lld where an unsigned integer is expected",
                                     (long long) i);
            (*ptr)[k] = u;
        }
        return 0;
    }
    case DQ_F_META:
        return s_dec_meta(ctx, path, f, base, o);
    case DQ_F_TYPE_COUNT:
        break;
    }
    return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "bad field table");
}

static int s_dec_struct(dq_proto_ctx_t *ctx, const char *path, const dq_schema_t *schema,
                        void *base, const msgpack_object *o) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "expected a map (%s), got %s",
                             schema->name, s_type_name(o->type));
    uint64_t seen = 0;
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[k];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return dq_proto_fail(ctx, path, DQ_PROTO_ETYPE, "key %u is a %s, expected a string", k,
                                 s_type_name(kv->key.type));
        size_t fi = 0;
        while (fi < schema->n_fields &&
               !(strlen(schema->fields[fi].key) == kv->key.via.str.size &&
                 memcmp(schema->fields[fi].key, kv->key.via.str.ptr, kv->key.via.str.size) == 0))
            fi++;
        if (fi == schema->n_fields) continue; /* unknown key: a newer minor version's; ignore */
        const dq_field_t *f = &schema->fields[fi];
        char sub[PATH_MAX_LEN];
        s_child(sub, path, f->key);
        if (seen & (UINT64_C(1) << fi))
            return dq_proto_fail(ctx, sub, DQ_PROTO_EDUPLICATE, "key appears twice");
        seen |= UINT64_C(1) << fi;
        int rc = s_dec_field(ctx, sub, f, base, &kv->val);
        if (rc != 0) return rc;
    }
    for (size_t fi = 0; fi < schema->n_fields; fi++)
        if (!(seen & (UINT64_C(1) << fi)) && !schema->fields[fi].optional) {
            char sub[PATH_MAX_LEN];
            s_child(sub, path, schema->fields[fi].key);
            return dq_proto_fail(ctx, sub, DQ_PROTO_EMISSING, "required key missing");
        }
    return 0;
}

int dq_proto_body_decode(dq_proto_ctx_t *ctx, const dq_schema_t *schema, void *base,
                         const uint8_t *data, size_t size) {
    if (size == 0) return dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK, "empty body");
    size_t pos = 0, objects = 0;
    int rc = s_scan(ctx, data, size, &pos, 0, &objects);
    if (rc != 0) return rc;
    if (pos != size)
        return dq_proto_fail(ctx, "", DQ_PROTO_ETRAILING, "%zu bytes after the body's value",
                             size - pos);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, (const char *) data, size, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        rc = dq_proto_fail(ctx, "", DQ_PROTO_ENOMEM, "out of memory unpacking");
    } else if (ur != MSGPACK_UNPACK_SUCCESS || off != size) {
        rc = dq_proto_fail(ctx, "", DQ_PROTO_EMSGPACK, "msgpack unpack failed (%d)", (int) ur);
    } else {
        rc = s_dec_struct(ctx, "", schema, base, &up.data);
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

void dq_proto_body_free(const dq_schema_t *schema, void *vbase) {
    char *base = vbase;
    for (size_t fi = 0; fi < schema->n_fields; fi++) {
        const dq_field_t *f = &schema->fields[fi];
        char *m = base + f->off;
        uint32_t *count = f->count_off ? (uint32_t *) (void *) (base + f->count_off) : NULL;
        switch (f->type) {
        case DQ_F_TEXT:
            free(*(char **) (void *) m);
            *(char **) (void *) m = NULL;
            break;
        case DQ_F_LIST: {
            char *arr = *(char **) (void *) m;
            for (uint32_t k = 0; arr && k < *count; k++)
                dq_proto_body_free(f->elem, arr + k * f->elem->size);
            free(arr);
            *(char **) (void *) m = NULL;
            *count = 0;
            break;
        }
        case DQ_F_TEXTLIST: {
            char **arr = *(char ***) (void *) m;
            for (uint32_t k = 0; arr && k < *count; k++) free(arr[k]);
            free(arr);
            *(char ***) (void *) m = NULL;
            *count = 0;
            break;
        }
        case DQ_F_META: {
            dq_meta_t *arr = *(dq_meta_t **) (void *) m;
            for (uint32_t k = 0; arr && k < *count; k++) free(arr[k].value);
            free(arr);
            *(dq_meta_t **) (void *) m = NULL;
            *count = 0;
            break;
        }
        case DQ_F_U64LIST:
            free(*(uint64_t **) (void *) m);
            *(uint64_t **) (void *) m = NULL;
            *count = 0;
            break;
        default:
            break;
        }
    }
}
