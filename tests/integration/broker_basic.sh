#!/bin/bash
# broker_basic.sh: submit with the CLI, a fake node renders, files and manifest appear, wait
# exits 0, status/nodes/results/cancel answer, a second broker on the same state is refused.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 14
start_broker
start_node n1 --cap 2
printf '%s\n' '{"prompt":"a cat","seed":1,"num_images_per_prompt":2}' \
    '{"id":"dog","prompt":"a dog","seed":2}' '' '{"prompt":"x","seed":3,"width":256,"height":256}' \
    >"$DQ_SCRATCH/job.jsonl"
OUT="$DQ_SCRATCH/images"
ok "submit prints the job id" bash -c "'$DQ' submit --model tiny --out '$OUT' --name cats \
    '$DQ_SCRATCH/job.jsonl' >'$DQ_SCRATCH/id' && [ \"\$(cat '$DQ_SCRATCH/id')\" = 1 ]"
ok "wait exits 0 when every image is done" "$DQ" wait 1
ok "files are named by id, else by line, and image" bash -c "cd '$OUT' && ls *.png | tr '\n' ' ' | \
    grep -qx '000001-0.png 000001-1.png 000004-0.png dog-0.png '"
ok "results.jsonl lists every request with its files" bash -c "[ \$(wc -l <'$OUT/results.jsonl') = 3 ] \
    && grep -q '\"line\":4,\"seed\":3,\"num_images\":1,\"images\":\[{\"image\":0,\"path\":\"000004-0.png\"' '$OUT/results.jsonl'"
ok "status --json shows the job done" bash -c "'$DQ' status --json | grep -q '\"state\": \"done\"'"
ok "status table names the node" bash -c "'$DQ' status | grep -q '^n1 '"
ok "nodes lists the node" bash -c "'$DQ' nodes | grep -q '^n1 *yes'"
ok "results --to copies the same bytes" bash -c "'$DQ' results 1 --to '$DQ_SCRATCH/copy' && \
    for f in '$OUT'/*.png; do cmp \"\$f\" '$DQ_SCRATCH/copy/'\$(basename \"\$f\") || exit 1; done"
fails "cancel of a done job says why" 1 "$DQ" cancel 1
ok "... naming the state" bash -c "'$DQ' cancel 1 2>&1 | grep -q 'broker: state'"
fails "status of an unknown job" 1 "$DQ" status 99
fails "a bad job id is a usage error" 2 "$DQ" wait abc
fails "a second broker on the same state is refused" 3 "$BROKER" --state "$STATE" --bind 'tcp://127.0.0.1:*'
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "the store agrees: 4 images committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 4
done_testing
