#!/bin/bash
# broker_node_stop.sh: SIGSTOP a real diffq-node in the middle of a shard, past heartbeat liveness
# and past its lease; the other node takes the shard over and finishes the job. After SIGCONT
# the stopped node's results and progress for its old attempt are refused (fenced, and it is
# told to stop that attempt), each image is committed exactly once, and the resumed node
# re-announces itself and goes on working: it alone renders a second job.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 14
start_broker '' --shard-size 8 --lease-ms 4000
write_job "$DQ_SCRATCH/job.jsonl" 16
# s1 takes the shards of 8 whole (--max-batch 8); s2 (4, the null backend's default) cuts the one
# it takes over, so a split shard's old attempt is fenced off too.
start_dq_node s1 --null-step-ms 500 --max-batch 8
S1=$NODE_PID
ok "submit" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
# A shard is 8 requests of 2 steps, 8 s: after its first image s1 is in the middle of it (its
# rank, a process of its own, goes on rendering while s1 is stopped).
ok "s1 renders a first image" eventually 60 images_at_least 1 1
kill -STOP "$S1"
ok "the broker forgets the stopped node" eventually 60 grep -q \
    'node gone node=s1 why="silent"' "$DQ_SCRATCH/broker.log"
start_dq_node s2 --null-step-ms 20
S2=$NODE_PID
ok "s2 takes the shard over and finishes the job while s1 is stopped" "$DQ" wait 1
kill -CONT "$S1"
ok "s1's stale results are refused" eventually 60 grep -q \
    'stale result refused job=1 shard=[0-9]* attempt=1 node=s1' "$DQ_SCRATCH/broker.log"
ok "s1 is told to stop its old attempt (fenced)" eventually 60 grep -q \
    'stopping job=1 shard=[0-9]* attempt=1 reason=fenced' "$DQ_SCRATCH/s1.log"
ok "s1 announces itself again" eventually 60 bash -c \
    "[ \$(grep -c 'node ready node=s1' '$DQ_SCRATCH/broker.log') -ge 2 ]"
ok "diffq status of job 1: done, 16 done, none queued, running or failed" status_is 1 16
# s2 leaves; a second job can then only be rendered by the resumed s1.
kill -TERM "$S2"
ok "s2 drains and exits 0" wait "$S2"
write_job "$DQ_SCRATCH/job2.jsonl" 6
ok "submit a second job" "$DQ" submit --model tiny "$DQ_SCRATCH/job2.jsonl"
ok "the resumed s1 renders it (wait exits 0)" "$DQ" wait 2
ok "diffq status of job 2: done, 6 done" status_is 2 6
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "each image of both jobs committed once, files and SHA-256 match" bash -c \
    "'$STORE_CHECK' '$STATE' 1 16 && '$STORE_CHECK' '$STATE' 2 6"
s1_did_job2() {
    taken_over 1 s1 s2 || return 1
    job_events 2 | grep '^commit' | grep -vq 'node=s1 ' && return 1
    [ "$(job_events 2 | grep -c '^commit .*node=s1 ')" = 6 ]
}
ok "s1's shard went to s2 and nothing of s1's old attempt was committed; s1 did job 2" s1_did_job2
done_testing
