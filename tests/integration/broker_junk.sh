#!/bin/bash
# broker_junk.sh: garbage, truncated, oversized and misdirected frames are dropped and logged;
# the broker goes on serving clients and nodes.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 6
start_broker
ok "the broker answers STATUS after the junk" "$JUNK_SENDER" "$EP"
ok "each of the 9 bad messages is logged as dropped" bash -c "[ \$(grep -c 'dropped a bad message' '$DQ_SCRATCH/broker.log') = 9 ]"
ok "the oversized body is among them" grep -q "dropped a bad message: STATUS: body of [0-9]* bytes, limit" "$DQ_SCRATCH/broker.log"
ok "the broker is still running" kill -0 "$BROKER_PID"
write_job "$DQ_SCRATCH/job.jsonl" 3
start_node n1
ok "a job still runs to the end" bash -c "'$DQ' submit --model tiny --wait '$DQ_SCRATCH/job.jsonl'"
ok "a node command under the client header is refused, not obeyed" bash -c "grep -q 'READY: command: not a command of header DQPC01' '$DQ_SCRATCH/broker.log' && ! grep -q 'node ready node=\$' '$DQ_SCRATCH/broker.log'"
done_testing
