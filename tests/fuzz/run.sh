#!/bin/sh
# tests/fuzz/run.sh: builds the DQP fuzz target with clang's libFuzzer, ASan and UBSan straight
# from the sources (no autotools) and fuzzes it for N seconds over the seed corpus.
# Usage: tests/fuzz/run.sh [SECONDS]   (default 30). Exits non-zero when the fuzzer finds a crash;
# the crashing input is left in $FUZZ_OUT (default build/fuzz): copy it into
# tests/fuzz/corpus/proto/ once fixed, so `make check` replays it from then on.
set -eu

seconds=${1:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_OUT:-$top/build/fuzz}
cc=${CLANG:-clang}
mkdir -p "$out/work"

# The pure-bytes protocol layer only: proto_zmq.c (czmq) is not needed.
"$cc" -g -O1 -std=gnu11 -D_GNU_SOURCE -I"$top" \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -o "$out/fuzz_proto" \
    "$top/common/proto.c" "$top/common/proto_schema.c" "$top/common/proto_codec.c" \
    "$top/tests/fuzz/fuzz_proto.c" \
    $(pkg-config --cflags --libs msgpack) -lm

# New inputs go to a scratch corpus; the committed seeds stay read-only. Inputs up to 64 KiB: the
# limits themselves are covered by tests/unit/test_proto.c. ASan's leak check stays on.
status=0
"$out/fuzz_proto" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/" -print_final_stats=1 \
    "$out/work" "$top/tests/fuzz/corpus/proto" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz_proto: crash (exit $status); reproducer(s) in $out/ (crash-*, leak-*, timeout-*)" >&2
    exit 1
fi
echo "fuzz_proto: no crash in ${seconds}s"
