#!/bin/bash
# broker_reconnect.sh: an ASSIGN that reaches a connection its node has just left (the node
# reconnected) is requeued as soon as the node, on its new connection, lists what it holds without
# it: at once, not after the lease, and without costing an attempt (docs/protocol.md, "Held-shard
# sync"). The shard the node took along is kept: finished by its first attempt. With
# --max-attempts 1 a counted attempt would fail the job.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 7
start_broker '' --shard-size 1 --lease-ms 600000 --max-attempts 1
write_job "$DQ_SCRATCH/job.jsonl" 6
ok "submit 6 requests" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
# Credit 2: shards 1 and 2 come together; the node takes the first and leaves on the second.
start_node a --cap 2 --delay-ms 200 --boot 41 --leave-on-assign 2
ok "the job completes long before a lease could expire (wait exits 0)" timeout 60 "$DQ" wait 1
ok "the node left its connection on its second ASSIGN and came back" bash -c \
    "grep -q 'leaving the connection on ASSIGN shard=2' '$DQ_SCRATCH/a.log' && \
     [ \$(grep -c 'connected to' '$DQ_SCRATCH/a.log') = 2 ]"
ok "the broker carried its two shards over and requeued the one it had not got, uncounted" \
    bash -c "grep -q 'node ready node=a .*carried=2' '$DQ_SCRATCH/broker.log' && \
        grep -q 'ASSIGN lost job=1 shard=2 attempt=1 node=a seq=0 (on a connection it has left): requeued, attempt not counted' \
            '$DQ_SCRATCH/broker.log'"
ok "diffq status: done, 6 done, none queued, running or failed" status_is 1 6
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "6 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 6
ok "one requeue (shard 2), no expiry or failure; shard 1 committed by its first attempt" bash -c \
    "ev=\$('$STORE_CHECK' --events '$STATE' 1) && \
     [ \"\$(echo \"\$ev\" | grep -E '^(requeue|expire|fail) ' | cut -d' ' -f1-3)\" = 'requeue shard=2 attempt=1' ] && \
     echo \"\$ev\" | grep -q '^commit shard=1 attempt=1 '"
done_testing
