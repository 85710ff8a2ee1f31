#!/bin/sh
# tests/integration/model_cli.sh: `diffq model init` writes a tiny model that `diffq model info`
# describes; bad paths, files and usage fail with clear messages and the documented exit codes.
. "$top_srcdir/tests/integration/lib.sh"
plan 12
BPE="$top_srcdir/data/clip/bpe_simple_vocab_16e6.txt.gz"
M="$DQ_SCRATCH/tiny"
ok "model init --config tiny writes a folder" "$DQ" model init --config tiny --random --seed 3 --dtype f16 -o "$M" --bpe "$BPE"
ok "the folder has every diffusers file" sh -c "for f in model_index.json text_encoder/config.json \
    text_encoder/model.safetensors unet/config.json unet/diffusion_pytorch_model.safetensors vae/config.json \
    vae/diffusion_pytorch_model.safetensors scheduler/scheduler_config.json tokenizer/vocab.json \
    tokenizer/merges.txt; do test -s '$M'/\$f || exit 1; done"
ok "model info counts the parameters" sh -c "'$DQ' model info '$M' | grep -q 'unet: .*' && \
    '$DQ' model info '$M' | grep -q 'parameters 792964 (0.8M) in 208 tensors, dtype F16'"
ok "model info names the scheduler" sh -c "'$DQ' model info '$M' | grep -q '^scheduler: PNDMScheduler'"
ok "the same seed writes the same weights" sh -c "'$DQ' model init --config tiny --random --seed 3 --dtype f16 \
    -o '$DQ_SCRATCH/again' --bpe '$BPE' >/dev/null && cmp '$M/unet/diffusion_pytorch_model.safetensors' \
    '$DQ_SCRATCH/again/unet/diffusion_pytorch_model.safetensors'"
ok "model info reads a single file with a config folder" sh -c "'$DQ' model info --configs \
    '$top_srcdir/tests/fixtures/tiny-sd' '$top_srcdir/tests/fixtures/tiny-sd.safetensors' | \
    grep -q 'single-file layout'"
fails "model info on a missing path" 2 sh -c "'$DQ' model info '$DQ_SCRATCH/nope' 2>'$DQ_SCRATCH/err'; rc=\$?; \
    grep -q 'nope: cannot open' '$DQ_SCRATCH/err' && exit \$rc"
fails "model info on a corrupt weights file" 2 sh -c "head -c 100 '$M/vae/diffusion_pytorch_model.safetensors' \
    > '$DQ_SCRATCH/bad.safetensors'; '$DQ' model info '$DQ_SCRATCH/bad.safetensors' 2>'$DQ_SCRATCH/err'; rc=\$?; \
    grep -q 'bad.safetensors: truncated' '$DQ_SCRATCH/err' && exit \$rc"
fails "model init refuses a non-empty folder" 1 "$DQ" model init --config tiny --random -o "$M" --bpe "$BPE"
fails "model init without a merge file writes nothing" 1 sh -c "'$DQ' model init --config tiny --random \
    -o '$DQ_SCRATCH/nobpe' --bpe '$DQ_SCRATCH/none.gz'; rc=\$?; test ! -e '$DQ_SCRATCH/nobpe' && exit \$rc"
ok "model init finds the merge file under DIFFQ_DATA_DIR" env DIFFQ_DATA_DIR="$top_srcdir/data" \
    "$DQ" model init --config tiny --random -o "$DQ_SCRATCH/datadir"
fails "model init without --random is a usage error" 2 "$DQ" model init --config tiny -o "$DQ_SCRATCH/x"
done_testing
