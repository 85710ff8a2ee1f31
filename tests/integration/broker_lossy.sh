#!/bin/bash
# broker_lossy.sh: two real nodes reach the broker through lossy_proxy, which drops, delays
# (reorders), duplicates and truncates messages both ways. The protocol must recover from every
# loss (liveness, leases, reconnects, result resends, credit resync, held-shard sync): a job of 60
# requests ends with every image committed exactly once (event log) and `diffq status` right, with
# the broker's default of 3 attempts per shard, because no lost message costs a shard an attempt:
# a lost ASSIGN is requeued at once without counting (also one that reached a connection its
# node had left), a repeated READY keeps the node's shards, and a lost SHARD_DONE does not leave
# the shard listed under its node. DQ_LOSSY_SEED picks another seed for the proxy's choices;
# --every makes sure each kind of trouble happens both ways, whatever the timing.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
PROXY="$top_builddir/tests/integration/lossy_proxy"
SEED=${DQ_LOSSY_SEED:-5}
N=60
plan 11
echo "# proxy seed $SEED"
start_broker '' --shard-size 2 --lease-ms 11000
"$PROXY" --front 'tcp://127.0.0.1:*' --back "$EP" --seed "$SEED" --drop 0.04 --dup 0.04 \
    --delay 0.1 --max-delay-ms 300 --cut 0.01 --every 40 >"$DQ_SCRATCH/proxy.out" 2>"$DQ_SCRATCH/proxy.log" &
PROXY_PID=$!
dq_pids="$dq_pids $PROXY_PID"
ok "the proxy listens" eventually 30 grep -q '^listening tcp://' "$DQ_SCRATCH/proxy.out"
NODE_EP=$(sed -n 's/^listening //p' "$DQ_SCRATCH/proxy.out")
start_dq_node l1 --null-step-ms 30 --drain-timeout 10
L1=$NODE_PID
start_dq_node l2 --null-step-ms 30 --drain-timeout 10
L2=$NODE_PID
write_job "$DQ_SCRATCH/job.jsonl" $N
ok "submit $N requests" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
ok "the job completes through the lossy network (wait exits 0)" timeout 300 "$DQ" wait 1
ok "diffq status: done, $N done, none queued, running or failed" status_is 1 $N
ok "diffq nodes: neither node is still listed with a shard (lost SHARD_DONEs noticed)" \
    eventually 15 bash -c "[ \$('$DQ' nodes | grep -Ec '^l[12] .* -\$') = 2 ]"
kill -TERM "$L1" "$L2"
wait "$L1" "$L2" 2>/dev/null
kill -TERM "$PROXY_PID"
wait "$PROXY_PID"
sed 's/^/# proxy: /' "$DQ_SCRATCH/proxy.log"
ok "the proxy dropped messages both ways" bash -c \
    "grep -q '^dropped to_broker .*total=[1-9]' '$DQ_SCRATCH/proxy.log' && \
     grep -q '^dropped to_node .*total=[1-9]' '$DQ_SCRATCH/proxy.log'"
ok "... and duplicated and delayed messages both ways" bash -c \
    "[ \$(grep -Ec '^(duplicated|delayed) to_(broker|node) .*total=[1-9]' '$DQ_SCRATCH/proxy.log') = 4 ]"
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "$N images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 $N
ok "results.jsonl lists the $N requests" bash -c \
    "[ \$(cat '$STATE'/out/*/results.jsonl | wc -l) = $N ]"
# ASSIGNs the proxy dropped or truncated, and those the broker requeued as lost (not counted).
LOST_ASSIGNS=$(grep -E '^(dropped|cut) to_node ' "$DQ_SCRATCH/proxy.log" | grep -o 'ASSIGN=[0-9]*' |
    cut -d= -f2 | awk '{n += $1} END {print n + 0}')
REQUEUED_LOST=$(grep -c 'ASSIGN lost job=.*(on the way): requeued, attempt not counted' \
    "$DQ_SCRATCH/broker.log")
# And those the broker sent to a connection its node had left (a reconnect), requeued as lost.
REQUEUED_LEFT=$(grep -c 'ASSIGN lost job=.*(on a connection it has left): requeued, attempt not counted' \
    "$DQ_SCRATCH/broker.log")
echo "# ASSIGNs lost on the way: $LOST_ASSIGNS; requeued as lost by the broker: $REQUEUED_LOST;" \
    "requeued as sent to a connection left: $REQUEUED_LEFT"
# What cost attempts, should the last check fail: the store's requeue/expire/fail events and the
# broker's account of nodes it forgot.
"$STORE_CHECK" --events "$STATE" 1 | grep -E '^(requeue|expire|fail) ' | sed 's/^/# event: /'
grep -E 'node gone|node ready|silent|lease expired|ASSIGN lost' "$DQ_SCRATCH/broker.log" |
    sed 's/^/# broker: /'
ok "lost ASSIGNs were requeued at once, and only lost ones" bash -c \
    "[ $REQUEUED_LOST -le $LOST_ASSIGNS ] && \
     { [ $LOST_ASSIGNS = 0 ] || [ $((REQUEUED_LOST + REQUEUED_LEFT)) -ge 1 ]; }"
ok "no attempt was counted: no lease expired, no shard failed, every requeue a lost ASSIGN" \
    bash -c "ev=\$('$STORE_CHECK' --events '$STATE' 1) && ! echo \"\$ev\" | grep -Eq '^(expire|fail) ' && \
        [ \$(echo \"\$ev\" | grep -c '^requeue ') = $((REQUEUED_LOST + REQUEUED_LEFT)) ]"
done_testing
