#!/bin/sh
# tools/demo.sh: the main job, start to finish on one machine: installs what diffq needs, builds it,
# starts a broker and one node on loopback, submits examples/prompts.jsonl, waits with a progress
# display, prints where the PNGs are, and stops the daemons.
#
# The model: diffq has no shipped demo model yet, so the demo makes a tiny model of the SD 1.x
# architecture with random weights (`diffq model init --config tiny --random`): every part of the
# system runs for real, but the pictures are noise. Set DIFFQ_DEMO_MODEL to a real SD 1.x model
# (diffusers folder or .safetensors) to get real pictures (slow on a CPU).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" = 0 ]; then tools/install-deps.sh; fi
echo "demo: building diffq in build/"
tools/build.sh build
bin=$top/build
"$bin/diffq" --version

state=$(mktemp -d "${TMPDIR:-/tmp}/diffq-demo.XXXXXX")
model=${DIFFQ_DEMO_MODEL:-}
if [ -z "$model" ]; then
    model=$state/tiny-sd
    echo "demo: no demo model ships yet; making a tiny random-weight SD 1.x model (its images are noise)"
    "$bin/diffq" model init --config tiny --random --seed 1 -o "$model"
fi

# A port below the ephemeral range, so nothing else takes it while the broker runs.
endpoint="tcp://127.0.0.1:${DIFFQ_DEMO_PORT:-5599}"
export OMP_WAIT_POLICY=passive
"$bin/diffq-broker" --bind "$endpoint" --state "$state/broker" 2>"$state/broker.log" &
broker=$!
"$bin/diffq-node" --broker "$endpoint" --cpu-ranks 1 --model "$model" 2>"$state/node.log" &
node=$!
stop() {
    kill -TERM "$node" 2>/dev/null || true
    wait "$node" 2>/dev/null || true
    kill -TERM "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
}
trap stop EXIT INT TERM

echo "demo: broker on $endpoint (state in $state/broker), one node with one CPU rank"
job=$("$bin/diffq" submit --broker "$endpoint" --model "$model" --out "$state/out" examples/prompts.jsonl)
echo "demo: submitted examples/prompts.jsonl as job $job"
status=0
"$bin/diffq" wait --broker "$endpoint" "$job" || status=$?
"$bin/diffq" status --broker "$endpoint" "$job" || true
echo "demo: PNGs and results.jsonl are in $state/out:"
ls "$state/out"
echo "demo: logs: $state/broker.log $state/node.log"
exit "$status"
