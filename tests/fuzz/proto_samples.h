/* tests/fuzz/proto_samples.h: one valid, fully populated DQP message per command, shared by the
 * unit test (round trips) and the seed-corpus generator. */
#ifndef DQ_TEST_PROTO_SAMPLES_H
#define DQ_TEST_PROTO_SAMPLES_H

#include "common/proto.h"

/* Fills *msg (owned data; free with dq_msg_clear) with a sample of cmd in which every field has
 * a distinctive non-default value. Returns 0, or -1 when cmd is not a command or memory ran out. */
int dq_test_proto_sample(dq_cmd_t cmd, dq_msg_t *msg);

/* Writes frames to buf in the fuzz target's input format (per frame: 4-byte little-endian length,
 * then the bytes). Returns the bytes needed; writes nothing beyond cap. */
size_t dq_test_proto_pack_input(const dq_proto_frames_t *frames, uint8_t *buf, size_t cap);

#endif
