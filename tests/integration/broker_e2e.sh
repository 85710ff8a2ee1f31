#!/bin/bash
# broker_e2e.sh: the real programs end to end: diffq submit -> diffq-broker -> diffq-node
# (--backend null: simulated images) -> PNG files, manifest and store; then the broker is
# SIGKILLed mid-job and restarted, and the node carries on with nothing lost or doubled.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
NODE="$top_builddir/diffq-node"
plan 9
start_broker '' --shard-size 2
"$NODE" --broker "$EP" --backend null --model tiny --name real --cpu-ranks 1 --batch 2 \
    --null-step-ms 30 2>>"$DQ_SCRATCH/node.log" &
dq_pids="$dq_pids $!"
write_job "$DQ_SCRATCH/job.jsonl" 6 2
IMG="$DQ_SCRATCH/img"
ok "submit" "$DQ" submit --model tiny --out "$IMG" "$DQ_SCRATCH/job.jsonl"
ok "wait exits 0" "$DQ" wait 1
ok "12 PNG files named by line and image" bash -c "[ \$(ls '$IMG'/0000[0-9][0-9]-[01].png | wc -l) = 12 ]"
ok "each is a PNG" bash -c "for f in '$IMG'/*.png; do head -c 8 \"\$f\" | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a' || exit 1; done"
ok "results.jsonl has a line per request" bash -c "[ \$(wc -l <'$IMG/results.jsonl') = 6 ]"
write_job "$DQ_SCRATCH/job2.jsonl" 16 2
ok "a second job" "$DQ" submit --model tiny "$DQ_SCRATCH/job2.jsonl"
ok "is under way when the broker is killed" eventually 60 images_at_least 2 4
kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null
start_broker "$EP" --shard-size 2
ok "and completes after the restart" "$DQ" wait 2
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "32 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 2 32
done_testing
