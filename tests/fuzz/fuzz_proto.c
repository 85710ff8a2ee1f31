/* tests/fuzz/fuzz_proto.c: libFuzzer target for the DQP decoder. The input is split into frames
 * (each: 4-byte little-endian length, then that many bytes, cut short at the end of input).
 * Whatever decodes must encode again, and re-encoding must be stable (decode . encode is the
 * identity on what the decoder accepts). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

#define MAX_INPUT_FRAMES 8 /* more than DQ_PROTO_MAX_FRAMES, so too many frames is exercised */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_same_frames(const dq_proto_frames_t *a, const dq_proto_frames_t *b) {
    if (a->n != b->n) abort();
    for (size_t i = 0; i < a->n; i++)
        if (a->size[i] != b->size[i] || memcmp(a->data[i], b->data[i], a->size[i]) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *frames[MAX_INPUT_FRAMES] = {0};
    size_t sizes[MAX_INPUT_FRAMES] = {0};
    size_t n = 0, pos = 0;
    while (pos + 4 <= size && n < MAX_INPUT_FRAMES) {
        size_t len = (size_t) data[pos] | (size_t) data[pos + 1] << 8 |
                     (size_t) data[pos + 2] << 16 | (size_t) data[pos + 3] << 24;
        pos += 4;
        if (len > size - pos) len = size - pos;
        frames[n] = data + pos;
        sizes[n++] = len;
        pos += len;
    }
    dq_msg_t msg, again;
    char err[512];
    err[0] = '\0';
    int rc = dq_proto_decode_frames(frames, sizes, n, &msg, err, sizeof err);
    if (rc != 0) {
        if (rc > 0 || err[0] == '\0' || msg.cmd != DQ_CMD_NONE) abort(); /* errors say why */
        return 0;
    }
    if (n < 3 || msg.cmd != frames[1][0]) abort();
    dq_proto_frames_t enc1, enc2;
    rc = dq_proto_encode_frames(&msg, &enc1, err, sizeof err);
    if (rc == -DQ_PROTO_ESIZE) { /* float32 widened to float64 may push a huge body over */
        dq_msg_clear(&msg);
        return 0;
    }
    if (rc != 0) abort();
    if (dq_proto_decode_frames(enc1.data, enc1.size, enc1.n, &again, err, sizeof err) != 0) abort();
    if (dq_proto_encode_frames(&again, &enc2, err, sizeof err) != 0) abort();
    s_same_frames(&enc1, &enc2);
    dq_proto_frames_free(&enc1);
    dq_proto_frames_free(&enc2);
    dq_msg_clear(&again);
    dq_msg_clear(&msg);
    return 0;
}
