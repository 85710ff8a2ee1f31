#!/bin/sh
# bench/run_unet.sh: seconds per SD 1.5 UNet step (CFG batch 2), this engine next to diffusers on
# PyTorch, CPU float32, same machine, one run. Prints the machine, its load and every result.
#
# Usage: bench/run_unet.sh BUILD_DIR [MODEL_DIR] [sizes] [reps]
#   BUILD_DIR: a build configured WITHOUT --enable-sanitizers (bench/unet_cpu is built there)
#   MODEL_DIR: default /tmp/sd15 (created with `diffq model init --config sd15 --random --seed 1`
#              when missing: ~4 GB of f32 weights; never commit it)
#   sizes:     latent sizes, default "32 64" (256x256 and 512x512 images); reps default 3
# Environment: PYTHON (default /work/refenv/bin/python), THREADS (default 2).
set -eu
build=${1:?usage: run_unet.sh BUILD_DIR [MODEL_DIR] [sizes] [reps]}
model=${2:-/tmp/sd15}
sizes=${3:-"32 64"}
reps=${4:-3}
python=${PYTHON:-/work/refenv/bin/python}
threads=${THREADS:-2}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp /tmp/unet_bench_out.XXXXXX)
trap 'rm -f "$out"' EXIT

make -C "$build" bench/unet_cpu diffq >/dev/null
if [ ! -f "$model/unet/diffusion_pytorch_model.safetensors" ]; then
    "$build/diffq" model init --config sd15 --random --seed 1 -o "$model"
fi
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "load before: $(uptime)"
for s in $sizes; do
    echo "== latent ${s}x${s} ($((s * 8))x$((s * 8)) image), batch 2, $threads threads"
    OMP_WAIT_POLICY=passive "$build/bench/unet_cpu" "$model" "$s" "$reps" "$threads" "$out"
    echo "load: $(uptime)"
    "$python" "$here/pytorch_unet.py" "$model" "$s" "$reps" "$threads" "$out"
    echo "load: $(uptime)"
done
