#!/bin/bash
# broker_node_restart.sh: a node whose process restarts (READY under the same name with another
# boot number, minor 6) holds nothing of what its predecessor held: the broker requeues those
# shards at once, counting the attempt (as the lease's expiry would, minutes later: a shard that
# crashes its node must run out of attempts), and the job completes long before the lease ends.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 6
start_broker '' --shard-size 2 --lease-ms 600000
write_job "$DQ_SCRATCH/job.jsonl" 4
ok "submit 4 requests" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
start_node r --cap 1 --delay-ms 200 --boot 7 --restart-after 1
ok "the job completes long before the lease could expire (wait exits 0)" timeout 60 "$DQ" wait 1
ok "the node restarted in the middle of shard 1" bash -c \
    "grep -q 'restarting after 1 results' '$DQ_SCRATCH/r.log'"
ok "the broker saw the restart and requeued the shard at once" grep -q \
    'node gone node=r why="node restarted" requeued=1' "$DQ_SCRATCH/broker.log"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "4 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 4
# (The image sent before the restart may have been committed by attempt 1 already.)
ok "shard 1: requeued (counted: node forgotten), then finished by attempt 2; nothing expired" \
    bash -c "ev=\$('$STORE_CHECK' --events '$STATE' 1) && \
     echo \"\$ev\" | grep -q '^requeue shard=1 attempt=1 node=r .*node r forgotten' && \
     ! echo \"\$ev\" | grep -Eq '^(expire|fail) ' && \
     echo \"\$ev\" | grep -q '^commit shard=1 attempt=2 ' && \
     ! echo \"\$ev\" | grep '^commit shard=1 ' | grep -Evq ' attempt=[12] '"
done_testing
