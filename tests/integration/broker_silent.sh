#!/bin/bash
# broker_silent.sh: a node that goes silent is forgotten and its shard requeued to another node;
# when it wakes up its results for the lost attempt are refused (RESULT_ACK stored=false and
# STOP fenced) and nothing is committed twice.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 7
start_broker '' --shard-size 8
write_job "$DQ_SCRATCH/job.jsonl" 6
start_node sleepy --cap 1 --hang-after 2 --hang-ms 6000
ok "submit" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
ok "the first node renders two images, then hangs" eventually 30 grep -q "hanging after 2" "$DQ_SCRATCH/sleepy.log"
start_node helper --cap 1
ok "the broker forgets the silent node" eventually 30 grep -q "node silent .* node=sleepy" "$DQ_SCRATCH/broker.log"
ok "the other node finishes the job" "$DQ" wait 1
ok "the woken node's stale results are refused" eventually 30 grep -q "stored=0" "$DQ_SCRATCH/sleepy.log"
ok "... and it is told to stop that attempt" grep -q "STOP shard=1 attempt=1 reason=fenced" "$DQ_SCRATCH/sleepy.log"
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "6 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 6
done_testing
