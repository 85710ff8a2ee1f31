#!/bin/sh
# tests/integration/cli_render.sh: "diffq render" draws the tiny model's picture into a PNG with its
# parameters, reports progress as JSON lines, and rejects bad options with clear messages.
. "$top_srcdir/tests/integration/lib.sh"
MODEL="$top_srcdir/tests/fixtures/tiny-sd"
OUT="$DQ_SCRATCH/out.png"
export OMP_WAIT_POLICY=passive
plan 12
ok "renders a PNG" "$DQ" render --model "$MODEL" --prompt "a lighthouse" --seed 3 --steps 4 \
    --width 72 --height 64 -o "$OUT"
ok "the PNG carries the A1111 parameters" sh -c "grep -a -q 'Steps: 4, Sampler: PNDM, CFG scale: 7.5, Seed: 3, Size: 72x64, Model: tiny-sd' '$OUT'"
ok "the PNG carries the request as JSON" sh -c "grep -a -q '\"prompt\":\"a lighthouse\"' '$OUT'"
ok "the same seed gives the same file" sh -c "'$DQ' render --model '$MODEL' --prompt 'a lighthouse' --seed 3 --steps 4 --width 72 --height 64 -o '$DQ_SCRATCH/again.png' && cmp '$OUT' '$DQ_SCRATCH/again.png'"
ok "--json prints steps and images" sh -c "'$DQ' render --model '$MODEL' --prompt x --seed 1 --steps 2 --width 64 --height 64 --batch 2 --scheduler euler_a -o '$DQ_SCRATCH/b.png' --json >'$DQ_SCRATCH/json' && grep -c '\"event\":\"step\"' '$DQ_SCRATCH/json' | grep -qx 2 && grep -q '\"path\":\"$DQ_SCRATCH/b-1.png\"' '$DQ_SCRATCH/json' && test -s '$DQ_SCRATCH/b-0.png'"
fails "a missing prompt is a usage error" 2 "$DQ" render --model "$MODEL"
fails "a width that is not a multiple of 8 is named" 2 sh -c "'$DQ' render --model '$MODEL' --prompt x --width 65 2>&1 | grep -q 'width' && exit 2"
fails "an unknown scheduler is named" 2 sh -c "'$DQ' render --model '$MODEL' --prompt x --scheduler heun 2>&1 | grep -q 'scheduler' && exit 2"
fails "a missing model is a clear failure" 1 sh -c "'$DQ' render --model /nonexistent --prompt x 2>&1 | grep -q '/nonexistent' && exit 1"
fails "an unknown device is named" 1 sh -c "'$DQ' render --model '$MODEL' --prompt x --device gpu 2>&1 | grep -q \"device 'gpu': expected cpu, cuda or cuda:N\" && exit 1"
fails "f16 on the CPU is refused" 1 sh -c "'$DQ' render --model '$MODEL' --prompt x --precision f16 2>&1 | grep -q 'f16 needs a CUDA device' && exit 1"
# Without a GPU (or without CUDA in this build) a CUDA device is a clear failure (on a GPU
# machine this case passes trivially: tests/gpu/check.sh renders there).
fails "cuda without a GPU says why" 1 sh -c "nvidia-smi -L >/dev/null 2>&1 && exit 1; '$DQ' render --model '$MODEL' --prompt x --device cuda:0 2>&1 | grep -q 'cuda' && exit 1"
done_testing
