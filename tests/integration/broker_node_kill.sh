#!/bin/bash
# broker_node_kill.sh: SIGKILL a real diffq-node (null backend, slow steps) while it holds leased
# shards: its ranks exit, the broker forgets it once it stops answering and requeues its shards
# with the next attempt, and a second node finishes the job; every image is committed exactly
# once (event log) and `diffq status` counts are right.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 9
start_broker '' --shard-size 2
write_job "$DQ_SCRATCH/job.jsonl" 24
start_dq_node k1 --cpu-ranks 2 --null-step-ms 2000
K1=$NODE_PID
ok "submit" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
# Each shard takes 8 s and k1 alone would need 48 s for the job: once its first image is in, k1 is
# in the middle of two shards.
k1_busy() {
    [ "$(grep -c 'assign job=1 .* node=k1' "$DQ_SCRATCH/broker.log")" -ge 2 ] && images_at_least 1 1
}
ok "k1 leases two shards and commits a first image" eventually 60 k1_busy
kill -9 "$K1"
wait "$K1" 2>/dev/null
ranks=$(sed -n 's/.*rank started rank=[0-9]* pid=\([0-9]*\).*/\1/p' "$DQ_SCRATCH/k1.log")
ranks_gone() {
    local p
    for p in $ranks; do kill -0 "$p" 2>/dev/null && return 1; done
    return 0
}
ok "the killed node's ranks exit" eventually 60 ranks_gone
ok "the broker forgets k1 and requeues its leased shards" eventually 60 grep -Eq \
    'node gone node=k1 why="(silent|unreachable)" requeued=[1-9]' "$DQ_SCRATCH/broker.log"
start_dq_node k2 --cpu-ranks 2 --null-step-ms 20
ok "k2 finishes the job (wait exits 0)" "$DQ" wait 1
ok "diffq status: done, 24 done, none queued, running or failed" status_is 1 24
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "24 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 24
ok "k1's shards went to k2 with a later attempt; nothing of k1's lost attempts committed" \
    taken_over 1 k1 k2
ok "results.jsonl (in STATE/out/<job id>) lists the 24 requests" bash -c \
    "[ \$(cat '$STATE'/out/1/results.jsonl | wc -l) = 24 ]"
done_testing
