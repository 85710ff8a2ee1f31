#!/bin/bash
# broker_retry.sh: a node that fails every shard (diffq-node --null-fail internal) makes the job
# fail (one attempt allowed here); wait exits 1; retry queues the failed images again and a healthy
# node then finishes the job.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
NODE="$top_builddir/diffq-node"
plan 7
start_broker '' --shard-size 2 --max-attempts 1
"$NODE" --broker "$EP" --backend null --model tiny --name broken --cpu-ranks 1 \
    --null-fail internal 2>>"$DQ_SCRATCH/broken.log" &
BROKEN=$!
dq_pids="$dq_pids $BROKEN"
write_job "$DQ_SCRATCH/job.jsonl" 4
ok "submit" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
fails "wait exits 1 when images failed" 1 "$DQ" wait 1
ok "status says failed" bash -c "'$DQ' status 1 | grep -q '^1 .* failed '"
ok "the failure is logged with its class" grep -q "shard failed job=1 .* class=internal" "$DQ_SCRATCH/broker.log"
kill "$BROKEN"; wait "$BROKEN" 2>/dev/null
"$NODE" --broker "$EP" --backend null --model tiny --name healthy --cpu-ranks 1 \
    2>>"$DQ_SCRATCH/healthy.log" &
dq_pids="$dq_pids $!"
ok "retry queues the failed images again" bash -c "'$DQ' retry 1 | grep -Eq '^job 1: (running|queued) \([1-9][0-9]* images affected\)'"
ok "and the healthy node finishes the job" "$DQ" wait 1
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "4 images, each committed once" "$STORE_CHECK" "$STATE" 1 4
done_testing
