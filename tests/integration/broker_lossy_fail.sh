#!/bin/bash
# broker_lossy_fail.sh: two real nodes that fail every shard (diffq-node --null-fail internal)
# reach the broker through lossy_proxy. Each SHARD_FAILED goes out three times (docs/protocol.md,
# "Failure reports"), so a lost one costs nothing: the job fails (both nodes blocked for it)
# long before a lease could expire, no lease expires, and no failure is counted twice.
# DQ_LOSSY_SEED picks another seed for the proxy's choices.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
PROXY="$top_builddir/tests/integration/lossy_proxy"
SEED=${DQ_LOSSY_SEED:-7}
plan 9
echo "# proxy seed $SEED"
start_broker '' --shard-size 2 --lease-ms 600000
"$PROXY" --front 'tcp://127.0.0.1:*' --back "$EP" --seed "$SEED" --drop 0.04 --dup 0.04 \
    --delay 0.1 --max-delay-ms 300 --every 10 >"$DQ_SCRATCH/proxy.out" 2>"$DQ_SCRATCH/proxy.log" &
PROXY_PID=$!
dq_pids="$dq_pids $PROXY_PID"
ok "the proxy listens" eventually 30 grep -q '^listening tcp://' "$DQ_SCRATCH/proxy.out"
NODE_EP=$(sed -n 's/^listening //p' "$DQ_SCRATCH/proxy.out")
start_dq_node f1 --null-step-ms 30 --null-fail internal
start_dq_node f2 --null-step-ms 30 --null-fail internal
# Both connected before the job comes, so that it fails only once both are blocked for it.
ok "both nodes are connected" eventually 60 bash -c "[ \$('$DQ' nodes | grep -Ec '^f[12] ') = 2 ]"
write_job "$DQ_SCRATCH/job.jsonl" 10
ok "submit 10 requests" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
fails "the job fails long before a lease could expire (wait exits 1)" 1 timeout 120 "$DQ" wait 1
ok "diffq status: failed, 10 images failed" bash -c \
    "'$DQ' status --json 1 | tr -d ' \n' | grep -q '\"state\":\"failed\".*\"failed\":10,'"
kill -TERM "$PROXY_PID"
wait "$PROXY_PID"
sed 's/^/# proxy: /' "$DQ_SCRATCH/proxy.log"
ok "the proxy dropped SHARD_FAILEDs or other messages to the broker" \
    grep -q '^dropped to_broker .*total=[1-9]' "$DQ_SCRATCH/proxy.log"
ok "repeated SHARD_FAILEDs reached the broker and changed nothing" \
    grep -q 'shard failed again or late job=1 .* (a repeat); nothing changes' "$DQ_SCRATCH/broker.log"
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
EVENTS=$("$STORE_CHECK" --events "$STATE" 1)
echo "$EVENTS" | grep -E '^(fail|block|expire) ' | sed 's/^/# event: /'
ok "no lease expired" bash -c "! echo \"\$1\" | grep -q '^expire '" _ "$EVENTS"
# A node's failure is one "fail" event per attempt; the broker's own ("shard failed after N
# attempts", "not retried: ... blocked") come on top.
ok "each failed attempt was counted once, and both nodes were blocked for the job" bash -c \
    "echo \"\$1\" | grep '^fail ' | grep -v 'shard failed after\|not retried' |
        awk '{ print \$2, \$3 }' | sort | uniq -d | grep -q . && exit 1
     [ \$(echo \"\$1\" | grep -c '^block ') = 2 ]" _ "$EVENTS"
done_testing
