#!/bin/bash
# broker_reready.sh: a READY repeated on a live connection (a network that repeats a message) is a
# re-announcement: the broker keeps the node's shards, so nothing is requeued or fenced and every
# image comes from the first attempt (docs/protocol.md, "Lost, repeated and reordered messages").
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 6
start_broker '' --shard-size 3
start_node r1 --cap 1 --delay-ms 100 --ready-again-after 1
write_job "$DQ_SCRATCH/job.jsonl" 6
ok "submit 6 requests" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
ok "the job completes (wait exits 0)" timeout 60 "$DQ" wait 1
ok "the node sent READY twice on one connection" bash -c \
    "grep -q 'READY again after 1 results' '$DQ_SCRATCH/r1.log' && \
     [ \$(grep -c 'connected to' '$DQ_SCRATCH/r1.log') = 1 ]"
ok "the broker took it as a re-announcement, keeping the shard" bash -c \
    "grep -q 're-announced node=r1 .*keeping its 1 shard' '$DQ_SCRATCH/broker.log' && \
     ! grep -q 'sent READY again' '$DQ_SCRATCH/broker.log'"
ok "no attempt was stopped" bash -c "! grep -q 'STOP' '$DQ_SCRATCH/r1.log'"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "every image committed once by a first attempt, nothing requeued" bash -c \
    "'$STORE_CHECK' '$STATE' 1 6 && ev=\$('$STORE_CHECK' --events '$STATE' 1) && \
     ! echo \"\$ev\" | grep -Eq '^(requeue|expire|fail) ' && \
     ! echo \"\$ev\" | grep -E '^commit ' | grep -vq ' attempt=1 '"
done_testing
