#!/bin/bash
# broker_capacity.sh: shards follow the node's batch (issue #5). Two real diffq-nodes (null
# backend) announce batches of 2 and 5 images (--max-batch); the broker cuts shards of 16 requests
# to each when it leases them. Every shard a node was given fits its batch, and every image of the
# job is committed exactly once.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 6
start_broker '' --shard-size 16
start_dq_node small --max-batch 2 --batch 2 --null-step-ms 20
start_dq_node big --max-batch 5 --batch 2 --null-step-ms 20
both_ready() {
    grep -q 'node ready node=small .*bimg=2' "$DQ_SCRATCH/broker.log" &&
        grep -q 'node ready node=big .*bimg=5' "$DQ_SCRATCH/broker.log"
}
ok "both nodes announce their batch" eventually 60 both_ready
# 40 requests of 1 and 2 images (60 images): three shards of 16, 16 and 8 requests at submit.
: >"$DQ_SCRATCH/job.jsonl"
for i in $(seq 1 40); do
    echo "{\"prompt\":\"p $i\",\"seed\":$i,\"num_images_per_prompt\":$((1 + i % 2)),\"num_inference_steps\":2}" \
        >>"$DQ_SCRATCH/job.jsonl"
done
ok "submit" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
ok "wait exits 0" "$DQ" wait 1
ok "diffq status: done, 60 images" status_is 1 60
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "60 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 60
ok "each node got shards of at most its batch, both got some, and shards were split" \
    assigns_fit 1 small=2 big=5
done_testing
