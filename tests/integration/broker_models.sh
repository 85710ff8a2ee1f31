#!/bin/bash
# broker_models.sh: model-aware leasing with the real broker and real nodes (--backend null).
# A job whose model no connected node serves fails with a clear error after --unserved-timeout
# while another job completes; no node is ever handed a shard of a model it lacks; a job may name
# a model by the path a node was given; retry brings the failed job back once a node serves it;
# a job blocked on every node that serves it fails with its last error instead of waiting.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
NODE="$top_builddir/diffq-node"
# node_up NAME: the broker lists node NAME.
node_up() { "$DQ" status | grep -q "^$1 "; }
plan 16
start_broker '' --shard-size 2 --unserved-timeout 1 --max-attempts 5
write_job "$DQ_SCRATCH/job.jsonl" 4
# Submitted before any node runs: nothing may fail while no node is connected.
ok "submit a job for a model nobody serves (job 1)" "$DQ" submit --model nosuch "$DQ_SCRATCH/job.jsonl"
sleep 2
ok "it waits while no node is connected" bash -c "'$DQ' status 1 | grep -q '^1 .* queued '"
mkdir -p "$DQ_SCRATCH/models" && touch "$DQ_SCRATCH/models/tiny" "$DQ_SCRATCH/models/other.safetensors"
"$NODE" --broker "$EP" --backend null --models "$DQ_SCRATCH/models" \
    --name a --cpu-ranks 1 --batch 2 2>>"$DQ_SCRATCH/a.log" &
dq_pids="$dq_pids $!"
ok "submit a job for the node's model (job 2)" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
fails "wait for job 1 exits 1" 1 "$DQ" wait 1
ok "wait for job 2 exits 0" "$DQ" wait 2
ok "status shows why job 1 failed" bash -c "'$DQ' status 1 | grep -q \"error: no connected node serves model 'nosuch'; nodes serve: other, tiny\""
ok "and so does status --json" bash -c "'$DQ' status --json 1 | grep -q '\"error\": \"no connected node serves model'"
ok "all 4 of job 1's images failed" bash -c "'$DQ' status --json 1 | grep -q '\"failed\": 4'"
ok "the node was never assigned job 1" bash -c "! grep -q 'assign job=1 ' '$DQ_SCRATCH/broker.log' && ! grep -q 'not served here' '$DQ_SCRATCH/a.log'"
ok "a job may name the model by the node's path (job 3)" "$DQ" submit --wait \
    --model "$DQ_SCRATCH/models/other.safetensors" "$DQ_SCRATCH/job.jsonl"
"$NODE" --broker "$EP" --backend null --model nosuch --name b --cpu-ranks 1 \
    2>>"$DQ_SCRATCH/b.log" &
dq_pids="$dq_pids $!"
eventually 30 node_up b
ok "retry requeues job 1" bash -c "'$DQ' retry 1 | grep -q 'images affected'"
ok "and the node serving its model finishes it" "$DQ" wait 1
ok "job 1's images were rendered by node b only" bash -c "grep 'assign job=1 ' '$DQ_SCRATCH/broker.log' | grep -q 'node=b' && ! grep 'assign job=1 ' '$DQ_SCRATCH/broker.log' | grep -q 'node=a'"
# A node that fails every shard is blocked for the job after 2 failures; as the only node that
# serves the model it leaves the job nowhere to go: the rest fails at once, with its last error.
"$NODE" --broker "$EP" --backend null --model flaky --name broken --cpu-ranks 1 \
    --null-fail internal 2>>"$DQ_SCRATCH/broken.log" &
dq_pids="$dq_pids $!"
eventually 30 node_up broken
write_job "$DQ_SCRATCH/job8.jsonl" 8
ok "submit 4 shards for the failing node (job 4)" "$DQ" submit --model flaky "$DQ_SCRATCH/job8.jsonl"
fails "wait for job 4 exits 1 instead of waiting forever" 1 "$DQ" wait 4
ok "its error is the node's and says why it was not retried" bash -c "'$DQ' status 4 | grep -q 'error: null backend: simulated internal failure.*not retried: every connected node serving model .flaky. is blocked'"
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
done_testing
