#!/bin/bash
# broker_badjob.sh: a job file with errors is rejected by diffq submit with every error and its
# line number, exit status 2, and nothing reaches the broker's queue; usage errors say what.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 8
start_broker
printf '%s\n' '{"prompt":"fine","seed":1}' '{"prompt":"bad steps","num_inference_steps":0}' \
    'not json' '{"prompt":"ok"}' '{"prompt":"wide","width":13}' >"$DQ_SCRATCH/bad.jsonl"
fails "a bad file exits 2" 2 "$DQ" submit --model tiny "$DQ_SCRATCH/bad.jsonl"
ok "every bad line is named" bash -c "'$DQ' submit --model tiny '$DQ_SCRATCH/bad.jsonl' 2>&1 | \
    grep -c 'bad.jsonl:[235]' | grep -qx 3"
ok "and it says nothing was queued" bash -c "'$DQ' submit --model tiny '$DQ_SCRATCH/bad.jsonl' 2>&1 | grep -q 'nothing was queued'"
ok "the broker has no job" bash -c "'$DQ' status --json | grep -q '\"jobs\": \[\]'"
fails "no model is a usage error" 2 env -u DIFFQ_MODEL "$DQ" submit "$DQ_SCRATCH/bad.jsonl"
fails "a missing file exits 2" 2 "$DQ" submit --model tiny "$DQ_SCRATCH/nope.jsonl"
fails "no broker: a clear failure" 1 "$DQ" status --broker tcp://127.0.0.1:1
ok "... that says what was wrong" bash -c "'$DQ' status --broker tcp://127.0.0.1:1 2>&1 | grep -q 'no answer from tcp://127.0.0.1:1'"
done_testing
