#!/bin/bash
# broker_ids.sh: request ids travel from the job file through the broker to a real node
# (--backend null) and back: output files are <id>-<image>.png (the zero-padded line without an
# id), results.jsonl and each PNG's request JSON carry the id, all 64 seed bits survive, and ids
# that would name the same files are refused before anything is sent.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
NODE="$top_builddir/diffq-node"
plan 9
start_broker '' --shard-size 2
"$NODE" --broker "$EP" --backend null --model tiny --name n --cpu-ranks 1 \
    2>>"$DQ_SCRATCH/node.log" &
dq_pids="$dq_pids $!"
printf '%s\n' '{"id":"fox","prompt":"a fox","seed":1,"num_images_per_prompt":2,"num_inference_steps":2}' \
    '{"prompt":"no id","seed":2,"num_inference_steps":2}' \
    '{"id":"cat.v2","prompt":"a cat","seed":18446744073709551615,"num_inference_steps":2}' \
    >"$DQ_SCRATCH/job.jsonl"
OUT="$DQ_SCRATCH/images"
ok "submit and wait" "$DQ" submit --wait --model tiny --out "$OUT" "$DQ_SCRATCH/job.jsonl"
ok "files are named by id, or by line without one" bash -c "cd '$OUT' && ls *.png | sort | tr '\n' ' ' | \
    grep -qx '000002-0.png cat.v2-0.png fox-0.png fox-1.png '"
ok "results.jsonl names the id and its files" grep -q \
    '^{"line":1,"seed":1,"id":"fox","num_images":2,"images":\[{"image":0,"path":"fox-0.png"' "$OUT/results.jsonl"
ok "a line without an id has none in results.jsonl" bash -c "grep '^{\"line\":2,' '$OUT/results.jsonl' | grep -vq '\"id\"'"
ok "a seed above 2^63 keeps all its bits" grep -q '^{"line":3,"seed":18446744073709551615,"id":"cat.v2"' "$OUT/results.jsonl"
ok "the image's request JSON carries the id" grep -aq '"id":"fox"' "$OUT/fox-1.png"
ok "the node rendered them with the ids" bash -c "! grep -q 'shard failed' '$DQ_SCRATCH/node.log'"
printf '%s\n' '{"id":"000002","prompt":"a","seed":1}' '{"prompt":"b","seed":2}' >"$DQ_SCRATCH/clash.jsonl"
fails "an id naming another line's files is refused" 2 "$DQ" submit --model tiny "$DQ_SCRATCH/clash.jsonl"
cp "$DQ_SCRATCH/out" "$DQ_SCRATCH/clash.err"
ok "with the file and line" grep -q "clash.jsonl:2: the line has no \"id\", so its files are named 000002-K.png" "$DQ_SCRATCH/clash.err"
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
done_testing
