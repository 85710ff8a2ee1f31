#!/bin/sh
# tests/integration/node_usage.sh: diffq-node's options: --help, and each usage or device error
# with its documented exit status and a message that says what to do.
. "$top_srcdir/tests/integration/lib.sh"
NODE="$top_builddir/diffq-node"
plan 10
ok "--help lists the options" sh -c "'$NODE' --help | grep -q -- '--cpu-ranks'"
fails "an unknown backend is a usage error" 2 "$NODE" --backend warp --model tiny
ok "which names the backends" sh -c "'$NODE' --backend warp --model tiny 2>&1 | grep -q 'known: engine, null'"
fails "a model the engine cannot load: exit 5" 5 "$NODE" --model "$DQ_SCRATCH/no-such-model" \
    --cpu-ranks 1 --broker tcp://127.0.0.1:9 --death-timeout 60
fails "no model is a usage error" 2 "$NODE" --backend null
fails "--gpus and --cpu-ranks together" 2 "$NODE" --backend null --model tiny --gpus all --cpu-ranks 2
fails "--gpus without a usable GPU is a device error" 6 "$NODE" --backend null --model tiny --gpus 99
fails "a malformed broker endpoint is a usage error" 2 "$NODE" --backend null --model tiny --cpu-ranks 1 --broker nonsense
fails "--max-batch 0 is a usage error" 2 "$NODE" --backend null --model tiny --cpu-ranks 1 --max-batch 0
ok "which says the range" sh -c "DIFFQ_NODE_MAX_BATCH=2000 '$NODE' --backend null --model tiny --cpu-ranks 1 2>&1 | grep -q -- '--max-batch 2000: expected 1..1024 images'"
done_testing
