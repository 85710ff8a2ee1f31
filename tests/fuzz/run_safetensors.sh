#!/bin/sh
# tests/fuzz/run_safetensors.sh: builds the safetensors fuzz target with clang's libFuzzer, ASan and
# UBSan, and fuzzes for SECONDS (default 60), starting from and adding to the committed corpus.
# Usage: tests/fuzz/run_safetensors.sh [SECONDS]   (from the top of the source tree)
# A crash leaves crash-* in the current directory: add it to tests/fuzz/corpus/safetensors/ once fixed
# so `make check` replays it forever.
set -eu
secs=${1:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${TMPDIR:-/tmp}/dq-fuzz-safetensors
mkdir -p "$out/new"
[ -f "$top/config.h" ] || [ -f "$top/build/config.h" ] || { echo "run ./configure (or build/) first" >&2; exit 2; }
clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_GNU_SOURCE -I"$top" -I"$top/build" $(pkg-config --cflags jansson) \
    "$top/tests/fuzz/fuzz_safetensors.c" "$top/kernels/safetensors.c" "$top/kernels/dtype.c" \
    $(pkg-config --libs jansson) -o "$out/fuzz_safetensors"
"$out/fuzz_safetensors" -max_total_time="$secs" -max_len=4096 "$out/new" "$top/tests/fuzz/corpus/safetensors"
echo "new inputs in $out/new (merge the interesting ones into tests/fuzz/corpus/safetensors)"
