#!/bin/bash
# broker_junk.sh: garbage, truncated, oversized and misdirected frames are dropped and logged;
# the broker goes on serving clients and nodes.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 7
start_broker
ok "the broker answers STATUS after the junk" bash -c "'$JUNK_SENDER' '$EP' >'$DQ_SCRATCH/junk.out'"
ok "it answered the client of another version with ERROR, the node without READY with DISCONNECT" \
    bash -c "grep -q 'reply ERROR' '$DQ_SCRATCH/junk.out' && grep -q 'reply DISCONNECT' '$DQ_SCRATCH/junk.out'"
ok "each of the 9 bad messages is logged as dropped" bash -c "[ \$(grep -c 'dropped a bad message' '$DQ_SCRATCH/broker.log') = 9 ]"
ok "the oversized body is among them" grep -q "dropped a bad message: STATUS: body of [0-9]* bytes, limit" "$DQ_SCRATCH/broker.log"
ok "the broker is still running" kill -0 "$BROKER_PID"
write_job "$DQ_SCRATCH/job.jsonl" 3
start_node n1
ok "a job still runs to the end" bash -c "'$DQ' submit --model tiny --wait '$DQ_SCRATCH/job.jsonl'"
ok "a node command under the client header is refused, not obeyed" bash -c "grep -q 'READY: command: not a command of header DQPC01' '$DQ_SCRATCH/broker.log' && ! grep -q 'node ready node=\$' '$DQ_SCRATCH/broker.log'"
done_testing
