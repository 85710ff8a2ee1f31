#!/bin/bash
# broker_e2e300.sh: a broker and 3 nodes rendering through the engine (tiny model): 300 requests,
# each image committed once and pixel-identical to `diffq render` with the same parameters.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
NODE="$top_builddir/diffq-node"
PIXELS="$top_builddir/tests/integration/png_pixels"
MODEL="$top_srcdir/tests/fixtures/tiny-sd"
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1
N=300
plan 5
start_broker '' --shard-size 4
for name in n1 n2 n3; do
    "$NODE" --broker "$EP" --model "$MODEL" --name "$name" --cpu-ranks 1 2>>"$DQ_SCRATCH/$name.log" &
    dq_pids="$dq_pids $!"
done
schedulers=(pndm euler_a ddim dpmpp_2m)
: >"$DQ_SCRATCH/job.jsonl"
for i in $(seq 1 $N); do
    s=${schedulers[$((i % 4))]}
    echo "{\"prompt\":\"picture $i\",\"seed\":$((i * 7919)),\"num_inference_steps\":2,\"width\":64,\"height\":64,\"scheduler\":\"$s\"}" >>"$DQ_SCRATCH/job.jsonl"
done
IMG="$DQ_SCRATCH/img"
ok "submit $N requests" "$DQ" submit --model "$MODEL" --out "$IMG" "$DQ_SCRATCH/job.jsonl"
ok "wait exits 0" "$DQ" wait 1
ok "$N PNG files" bash -c "[ \$(ls '$IMG'/*.png | wc -l) = $N ]"
same_as_render() {
    local i s
    for i in $(seq 1 $N); do
        s=${schedulers[$((i % 4))]}
        "$DQ" render --model "$MODEL" --prompt "picture $i" --seed $((i * 7919)) --steps 2 \
            --width 64 --height 64 --scheduler "$s" -o "$DQ_SCRATCH/r.png" >/dev/null || return 1
        "$PIXELS" "$DQ_SCRATCH/r.png" "$IMG/$(printf %06d "$i")-0.png" || return 1
    done
}
ok "every image equals diffq render's" same_as_render
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 $N
done_testing
