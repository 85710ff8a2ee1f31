#!/bin/bash
# broker_control.sh: pause, resume, cancel and retry through the CLI: states change as the store
# says, a cancelled job's running shards are stopped on their node, its manifest is written,
# and wait reports the cancellation with a non-zero exit.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 9
start_broker '' --shard-size 2
write_job "$DQ_SCRATCH/job.jsonl" 12
start_node n1 --cap 1 --delay-ms 200
IMG="$DQ_SCRATCH/img"
ok "submit" "$DQ" submit --model tiny --out "$IMG" "$DQ_SCRATCH/job.jsonl"
ok "pause" bash -c "'$DQ' pause 1 | grep -q '^job 1: paused'"
fails "pausing twice is refused" 1 "$DQ" pause 1
ok "resume" bash -c "'$DQ' resume 1 | grep -Eq '^job 1: (running|queued)'"
ok "some images are done" eventually 60 images_at_least 1 2
ok "cancel" bash -c "'$DQ' cancel 1 | grep -q '^job 1: cancelled'"
ok "the node is told to stop its shard" eventually 20 grep -q "reason=cancelled" "$DQ_SCRATCH/n1.log"
fails "wait reports the cancelled job" 1 "$DQ" wait 1
ok "the manifest of the cancelled job lists its images" test -s "$IMG/results.jsonl"
done_testing
