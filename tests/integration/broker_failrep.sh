#!/bin/bash
# broker_failrep.sh: a node sends each SHARD_FAILED up to 3 times (docs/protocol.md). The first
# copy to arrive fails the attempt; the others change nothing (the store fences by attempt): with
# --max-attempts 2 a shard whose first attempt failed still gets its second, on the same node (a
# counted repeat would also have blocked the node for the job after 2 failures), and the broker
# keeps that second attempt listed under the node. A first copy lost on the way is repaired by the
# next one at once, long before the shard's 10-minute lease could expire.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 11
start_broker '' --shard-size 1 --lease-ms 600000 --max-attempts 2
# Job 1: every copy arrives. 2 images, the second 5 s after the first: the repeats (with the
# node's HEARTBEATs, at least every 2 s) arrive while the shard's second attempt runs on the same
# node.
write_job "$DQ_SCRATCH/job1.jsonl" 1 2
ok "submit job 1 (1 request of 2 images)" "$DQ" submit --model tiny "$DQ_SCRATCH/job1.jsonl"
start_node a --boot 7 --delay-ms 5000 --fail-attempt 1 --fail-sends 3
A=$NODE_PID
ok "job 1 completes (wait exits 0)" timeout 60 "$DQ" wait 1
ok "node a failed attempt 1 and sent its SHARD_FAILED 3 times" eventually 10 bash -c \
    "[ \$(grep -c 'SHARD_FAILED shard=1 attempt=1 copy=[123]/3 sent' '$DQ_SCRATCH/a.log') = 3 ]"
ok "the broker took the first copy as the failure and the 2 others as repeats (info)" bash -c \
    "[ \$(grep -c 'WARN.*shard failed job=1 shard=1 attempt=1 node=a class=internal' '$DQ_SCRATCH/broker.log') = 1 ] && \
     [ \$(grep -c 'INFO.*shard failed again or late job=1 shard=1 attempt=1 node=a class=internal' '$DQ_SCRATCH/broker.log') = 2 ]"
ok "the repeats left attempt 2 listed under node a (nothing had to be reclaimed or stopped)" bash -c \
    "! grep -Eq 'reclaimed job=1 |stale progress job=1 ' '$DQ_SCRATCH/broker.log' && \
     ! grep -q 'STOP' '$DQ_SCRATCH/a.log'"
kill "$A"; wait "$A" 2>/dev/null
ok "the broker lets node a go" eventually 20 grep -q 'node gone node=a ' "$DQ_SCRATCH/broker.log"
# Job 2: the first copy is lost on the way.
write_job "$DQ_SCRATCH/job2.jsonl" 1
ok "submit job 2" "$DQ" submit --model tiny "$DQ_SCRATCH/job2.jsonl"
start_node b --boot 8 --fail-attempt 1 --fail-sends 3 --fail-lose 1
B=$NODE_PID
ok "job 2 completes long before the lease could expire (wait exits 0 within 60 s)" \
    timeout 60 "$DQ" wait 2
ok "its first SHARD_FAILED was lost, the next one failed the attempt, the last was a repeat" \
    eventually 10 bash -c \
    "grep -q 'SHARD_FAILED shard=2 attempt=1 copy=1/3 lost' '$DQ_SCRATCH/b.log' && \
     [ \$(grep -c 'WARN.*shard failed job=2 shard=2 attempt=1 node=b' '$DQ_SCRATCH/broker.log') = 1 ] && \
     grep -q 'SHARD_FAILED shard=2 attempt=1 copy=3/3 sent' '$DQ_SCRATCH/b.log' && \
     [ \$(grep -c 'INFO.*shard failed again or late job=2 shard=2 attempt=1 node=b' '$DQ_SCRATCH/broker.log') = 1 ]"
kill "$B"; wait "$B" 2>/dev/null
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
for job in 1 2; do "$STORE_CHECK" --events "$STATE" $job | sed "s/^/# job $job event: /"; done
# One failed attempt per shard in the event log (a fail event, no block, no expiry), then the
# second attempt committed every image and finished the shard.
one_failure() {
    local job=$1 shard=$2 node=$3 images=$4 ev
    ev=$("$STORE_CHECK" --events "$STATE" "$job") || return 1
    [ "$(echo "$ev" | grep -Ec '^(fail|requeue|expire|block) ')" = 1 ] &&
        echo "$ev" | grep -q "^fail shard=$shard attempt=1 node=$node " &&
        [ "$(echo "$ev" | grep -c "^commit shard=$shard attempt=2 node=$node ")" = "$images" ] &&
        ! echo "$ev" | grep '^commit ' | grep -vq ' attempt=2 ' &&
        "$STORE_CHECK" "$STATE" "$job" "$images"
}
ok "job 1: one failed attempt counted (not 3), no block; attempt 2 committed both images" \
    one_failure 1 1 a 2
ok "job 2: one failed attempt counted, nothing expired; attempt 2 committed the image" \
    one_failure 2 2 b 1
done_testing
