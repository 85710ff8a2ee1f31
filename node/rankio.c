/* node/rankio.c: length-prefixed records between the node and its ranks. */
#include "node/rankio.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dq_rankio_t {
    int fd;            /* owned */
    size_t max_record; /* bytes after the length word */
    uint8_t *in;       /* owned; received bytes; in[in_start..in_len) unread */
    size_t in_start, in_len, in_cap;
    uint8_t *out; /* owned; out[out_start..out_len) not yet written */
    size_t out_start, out_len, out_cap;
};

static void s_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static uint32_t s_get32(const uint8_t *p) {
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Grows *buf to hold need bytes. */
static int s_reserve(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *p = realloc(*buf, c);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

dq_rankio_t *dq_rankio_new(int fd, size_t max_record) {
    dq_rankio_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->fd = fd;
    self->max_record = max_record;
    return self;
}

void dq_rankio_destroy(dq_rankio_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_rankio_t *self = *self_p;
    if (self->fd >= 0) close(self->fd);
    free(self->in);
    free(self->out);
    free(self);
    *self_p = NULL;
}

int dq_rankio_fd(const dq_rankio_t *self) {
    return self->fd;
}

int dq_rankio_queue(dq_rankio_t *self, uint8_t kind, const uint8_t *const *parts,
                    const size_t *sizes, size_t n, char *err, size_t errlen) {
    if (n > DQ_RANKIO_MAX_PARTS) {
        snprintf(err, errlen, "rank record: %zu parts, limit %d", n, DQ_RANKIO_MAX_PARTS);
        return -1;
    }
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        if (sizes[i] > self->max_record || len + 4 + sizes[i] > self->max_record) {
            snprintf(err, errlen, "rank record: larger than %zu bytes", self->max_record);
            return -1;
        }
        len += 4 + sizes[i];
    }
    /* Compact first so the buffer does not grow without bound. */
    if (self->out_start == self->out_len) self->out_start = self->out_len = 0;
    if (s_reserve(&self->out, &self->out_cap, self->out_len + 4 + len) != 0) {
        snprintf(err, errlen, "rank record: out of memory");
        return -1;
    }
    uint8_t *p = self->out + self->out_len;
    s_put32(p, (uint32_t) len);
    p[4] = kind;
    p[5] = (uint8_t) n;
    p += 6;
    for (size_t i = 0; i < n; i++) {
        s_put32(p, (uint32_t) sizes[i]);
        if (sizes[i]) memcpy(p + 4, parts[i], sizes[i]);
        p += 4 + sizes[i];
    }
    self->out_len += 4 + len;
    return 0;
}

int dq_rankio_queue_msg(dq_rankio_t *self, uint8_t kind, const char *const *prefix, size_t n_prefix,
                        const dq_msg_t *msg, char *err, size_t errlen) {
    dq_proto_frames_t frames;
    memset(&frames, 0, sizeof frames);
    if (dq_proto_encode_frames(msg, &frames, err, errlen) != 0) return -1;
    const uint8_t *parts[DQ_RANKIO_MAX_PARTS];
    size_t sizes[DQ_RANKIO_MAX_PARTS];
    size_t n = 0;
    for (size_t i = 0; i < n_prefix && n < DQ_RANKIO_MAX_PARTS; i++, n++) {
        parts[n] = (const uint8_t *) prefix[i];
        sizes[n] = strlen(prefix[i]);
    }
    for (size_t i = 0; i < frames.n && n < DQ_RANKIO_MAX_PARTS; i++, n++) {
        parts[n] = frames.data[i];
        sizes[n] = frames.size[i];
    }
    int rc = n == n_prefix + frames.n ? dq_rankio_queue(self, kind, parts, sizes, n, err, errlen)
                                      : (snprintf(err, errlen, "rank record: too many parts"), -1);
    dq_proto_frames_free(&frames);
    return rc;
}

int dq_rankio_flush(dq_rankio_t *self, char *err, size_t errlen) {
    while (self->out_start < self->out_len) {
        ssize_t w = write(self->fd, self->out + self->out_start, self->out_len - self->out_start);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            snprintf(err, errlen, "rank pipe: write: %s", strerror(errno));
            return -1;
        }
        self->out_start += (size_t) w;
    }
    self->out_start = self->out_len = 0;
    return 1;
}

int dq_rankio_flush_all(dq_rankio_t *self, char *err, size_t errlen) {
    for (;;) {
        int rc = dq_rankio_flush(self, err, errlen);
        if (rc != 0) return rc > 0 ? 0 : -1;
        struct pollfd p = {self->fd, POLLOUT, 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            snprintf(err, errlen, "rank pipe: poll: %s", strerror(errno));
            return -1;
        }
    }
}

size_t dq_rankio_pending(const dq_rankio_t *self) {
    return self->out_len - self->out_start;
}

int dq_rankio_read(dq_rankio_t *self, char *err, size_t errlen) {
    if (self->in_start > 0 && self->in_start == self->in_len) self->in_start = self->in_len = 0;
    if (self->in_start > 0 && self->in_len + 65536 > self->in_cap) {
        memmove(self->in, self->in + self->in_start, self->in_len - self->in_start);
        self->in_len -= self->in_start;
        self->in_start = 0;
    }
    if (s_reserve(&self->in, &self->in_cap, self->in_len + 65536) != 0) {
        snprintf(err, errlen, "rank pipe: out of memory");
        return -1;
    }
    ssize_t r = read(self->fd, self->in + self->in_len, self->in_cap - self->in_len);
    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return 1;
        snprintf(err, errlen, "rank pipe: read: %s", strerror(errno));
        return -1;
    }
    if (r == 0) return 0;
    self->in_len += (size_t) r;
    return 1;
}

int dq_rankio_next(dq_rankio_t *self, dq_rankio_rec_t *rec, char *err, size_t errlen) {
    size_t avail = self->in_len - self->in_start;
    if (avail < 4) return 0;
    const uint8_t *p = self->in + self->in_start;
    size_t len = s_get32(p);
    if (len < 2 || len > self->max_record) {
        snprintf(err, errlen, "rank record: length %zu outside 2..%zu", len, self->max_record);
        return -1;
    }
    if (avail < 4 + len) return 0;
    memset(rec, 0, sizeof *rec);
    rec->kind = p[4];
    rec->n = p[5];
    if (rec->kind < DQ_RANKIO_HELLO || rec->kind >= DQ_RANKIO_KIND_COUNT) {
        snprintf(err, errlen, "rank record: unknown kind %u", rec->kind);
        return -1;
    }
    if (rec->n > DQ_RANKIO_MAX_PARTS) {
        snprintf(err, errlen, "rank record: %zu parts, limit %d", rec->n, DQ_RANKIO_MAX_PARTS);
        return -1;
    }
    size_t off = 2;
    for (size_t i = 0; i < rec->n; i++) {
        if (len - off < 4) goto overrun;
        size_t sz = s_get32(p + 4 + off);
        off += 4;
        if (sz > len - off) goto overrun;
        rec->part[i] = p + 4 + off;
        rec->size[i] = sz;
        off += sz;
    }
    if (off != len) {
        snprintf(err, errlen, "rank record: %zu bytes after the last part", len - off);
        return -1;
    }
    self->in_start += 4 + len;
    return 1;
overrun:
    snprintf(err, errlen, "rank record: part overruns the record");
    return -1;
}

int dq_rankio_recv(dq_rankio_t *self, dq_rankio_rec_t *rec, char *err, size_t errlen) {
    for (;;) {
        int rc = dq_rankio_next(self, rec, err, errlen);
        if (rc != 0) return rc;
        rc = dq_rankio_read(self, err, errlen);
        if (rc <= 0) return rc;
    }
}

int dq_rankio_decode_msg(const dq_rankio_rec_t *rec, size_t first, dq_msg_t *out, char *err,
                         size_t errlen) {
    if (first > rec->n) {
        memset(out, 0, sizeof *out);
        snprintf(err, errlen, "rank record: no message parts");
        return -DQ_PROTO_EFRAMES;
    }
    return dq_proto_decode_frames(rec->part + first, rec->size + first, rec->n - first, out, err,
                                  errlen);
}
