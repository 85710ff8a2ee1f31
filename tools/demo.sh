#!/bin/sh
# tools/demo.sh: the main job, start to finish on one machine: installs what diffq needs, builds it,
# starts a broker and one node on loopback, submits examples/prompts.jsonl on the built-in demo
# model, waits with a progress display, prints where the PNGs are, and stops the daemons.
# Parts of diffq that are not built yet are named plainly, and the demo stops there.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" = 0 ]; then tools/install-deps.sh; fi
echo "demo: building diffq in build/"
tools/build.sh build
build=$top/build
"$build/diffq" --version

missing=""
for part in diffq-broker diffq-node; do
    [ -x "$build/$part" ] || missing="$missing $part"
done
if [ -n "$missing" ]; then
    echo "demo: not built yet:$missing (the cluster queue is still being written);"
    echo "demo: the build and its tests are ready: run tools/test.sh"
    exit 0
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/diffq-demo.XXXXXX")
endpoint="tcp://127.0.0.1:${DIFFQ_DEMO_PORT:-5599}"
"$build/diffq-broker" --bind "$endpoint" --state "$state/broker" &
broker=$!
"$build/diffq-node" --broker "$endpoint" --cpu-ranks 1 &
node=$!
trap 'kill "$node" "$broker" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
job=$("$build/diffq" submit --broker "$endpoint" examples/prompts.jsonl)
"$build/diffq" wait --broker "$endpoint" "$job"
echo "demo: PNGs are in $state/broker/jobs/$job/"
