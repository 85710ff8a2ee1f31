#!/bin/bash
# cli_status_watch.sh: "diffq status --watch JOB" repeats every second while the job runs, with
# exact image counts that only move forward, and ends by itself once the job is done.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 6
start_broker
# The node cuts the broker's shards of 16 requests to 4 requests of 2 images (--bimg 8).
start_node n1 --cap 1 --delay-ms 400 --bimg 8
write_job "$DQ_SCRATCH/job.jsonl" 8 2
ok "submit" "$DQ" submit --model tiny "$DQ_SCRATCH/job.jsonl"
W="$DQ_SCRATCH/watch.json"
ok "--watch ends by itself when the job is done" \
    bash -c "timeout 120 '$DQ' status --watch --json 1 >'$W'"
# One JSON object (indented, a key per line) per second: each frame's state and image counts.
frames() {
    awk -F'[:,]' '/"state"/ { gsub(/[" ]/, "", $2); st = $2 } /"queued"/ { q = $2 + 0 }
        /"running"/ { r = $2 + 0 } /"done"/ { d = $2 + 0 }
        /"failed"/ { print st, d + 0, q, r, $2 + 0 }' "$W"
}
export -f frames
export W
ok "several frames were printed" bash -c "[ \$(frames | wc -l) -ge 3 ]"
ok "every frame accounts for all 16 images" bash -c "frames | awk '\$2+\$3+\$4+\$5 != 16 { exit 1 }'"
ok "done never goes back" bash -c "frames | awk '\$2 < last { exit 1 } { last = \$2 }'"
ok "the last frame is the finished job" bash -c "frames | tail -1 | grep -qx 'done 16 0 0 0'"
done_testing
