/* tests/fuzz/gen_proto_corpus.c: writes the seed corpus of fuzz_proto (one valid encoding of
 * every command, plus a few broken ones) into DIR. Run by hand after a protocol change:
 *   build/tests/fuzz/fuzz_proto_gencorpus tests/fuzz/corpus/proto */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "tests/fuzz/proto_samples.h"

static int s_write(const char *dir, const char *name, const uint8_t *buf, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    static uint8_t buf[1 << 16];
    for (int c = 1; c < DQ_CMD_COUNT; c++) {
        dq_msg_t msg;
        dq_proto_frames_t frames;
        char err[256];
        if (dq_test_proto_sample((dq_cmd_t) c, &msg) != 0 ||
            dq_proto_encode_frames(&msg, &frames, err, sizeof err) != 0) {
            fprintf(stderr, "cannot encode sample %s\n", dq_proto_command_name(c));
            return 1;
        }
        size_t len = dq_test_proto_pack_input(&frames, buf, sizeof buf);
        char name[64];
        snprintf(name, sizeof name, "%s", dq_proto_command_name(c));
        for (char *p = name; *p; p++) *p = (char) tolower((unsigned char) *p);
        if (len > sizeof buf || s_write(argv[1], name, buf, len) != 0) return 1;
        /* A truncated copy (body cut in half) of the bigger messages seeds the error paths. */
        if (frames.size[2] > 16) {
            dq_proto_frames_t cut = frames;
            cut.size[2] /= 2;
            cut.n = 3;
            len = dq_test_proto_pack_input(&cut, buf, sizeof buf);
            snprintf(name + strlen(name), sizeof name - strlen(name), "-truncated");
            if (s_write(argv[1], name, buf, len) != 0) return 1;
        }
        dq_proto_frames_free(&frames);
        dq_msg_clear(&msg);
    }
    return 0;
}
