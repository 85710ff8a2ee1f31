#!/bin/sh
# bench/run_encoders.sh: the engine's text encoder and VAE decoder next to PyTorch's, one table.
#
# Usage: bench/run_encoders.sh MODEL_DIR [BUILD_DIR] [LATENT]
#   MODEL_DIR  a diffusers folder, e.g. from `diffq model init --config sd15 --random --seed 1
#              -o /tmp/sd15` (keep it out of the tree)
#   BUILD_DIR  a build configured WITHOUT --enable-sanitizers (default: build-rel)
#   LATENT     VAE latent side (default 64: 512x512 images)
# Both sides use 2 threads; the engine runs with OMP_WAIT_POLICY=passive. The engine's outputs
# are compared with PyTorch's on the same inputs (COMPARE lines). PYTHON overrides the reference
# interpreter (/work/refenv/bin/python). Needs GNU time (/usr/bin/time) for the peak RSS line.
set -eu
model=${1:?usage: bench/run_encoders.sh MODEL_DIR [BUILD_DIR] [LATENT]}
build=${2:-build-rel}
latent=${3:-64}
py=${PYTHON:-/work/refenv/bin/python}
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "# load before: $(uptime | sed 's/.*load average: //')"
OMP_WAIT_POLICY=passive /usr/bin/time -f "%M" -o "$tmp/engine.rss" \
    "$build/bench/encoders_cpu" "$model" --threads 2 --latent "$latent" --reps 3 --dump "$tmp" |
    tee "$tmp/engine.txt"
/usr/bin/time -f "%M" -o "$tmp/torch.rss" \
    "$py" "$here/pytorch_encoders.py" "$model" --threads 2 --latent "$latent" --reps 3 \
    --compare "$tmp" | tee "$tmp/torch.txt"
echo "# peak RSS of the whole process (both networks, weights included): engine" \
    "$(($(cat "$tmp/engine.rss") / 1024)) MiB, PyTorch $(($(cat "$tmp/torch.rss") / 1024)) MiB"
echo "# load after: $(uptime | sed 's/.*load average: //')"
echo
awk '$1 == "RESULT" { key = $3; seen[key] = 1; best[$2, key] = $4; med[$2, key] = $5 }
     END {
         printf "| case | engine best / median ms | PyTorch best / median ms | engine / PyTorch |\n"
         printf "|---|---|---|---|\n"
         for (k in seen)
             printf "| %s | %s / %s | %s / %s | %.2f |\n", k, best["engine", k], med["engine", k],
                    best["torch", k], med["torch", k], best["engine", k] / best["torch", k]
     }' "$tmp/engine.txt" "$tmp/torch.txt"
