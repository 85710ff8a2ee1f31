#!/bin/bash
# broker_restart.sh: SIGKILL the broker in the middle of a job and restart it on the same state:
# the job and every received image survive, the node keeps its shards (grace period), and each
# image is committed exactly once (the store's event log).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 7
start_broker
write_job "$DQ_SCRATCH/job.jsonl" 20 2
# The node cuts the broker's shards of 16 requests to 4 requests of 2 images (--bimg 8).
start_node n1 --cap 2 --delay-ms 100 --bimg 8
ok "submit" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
ok "some images are done before the kill" eventually 60 images_at_least 1 8
kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
PORT_EP=$EP
start_broker "$PORT_EP"
ok "the restarted broker serves the same endpoint" test "$EP" = "$PORT_EP"
ok "it kept the running shards for their node" grep -q "recovered: [0-9]* shards stay leased" "$DQ_SCRATCH/broker.log"
ok "wait exits 0 after the restart" "$DQ" wait 1
ok "the node reclaimed a shard it was running" grep -q "reclaimed job=1" "$DQ_SCRATCH/broker.log"
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "40 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 40
done_testing
