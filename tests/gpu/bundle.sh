#!/bin/bash
# tests/gpu/bundle.sh: makes build/gpu-bundle/, a prebuilt tests/gpu/ops_cuda_vs_cpu for a GPU
# machine that has CUDA but not the engine's C libraries (the lent H100/H200 image): OpenBLAS is
# linked statically, cuBLAS/cuDNN/cudart stay shared (check.sh finds them in the toolkit or in
# PyTorch's nvidia-* wheels). Run it on the build machine from the repository root:
#     tests/gpu/bundle.sh [BUILDDIR]
# BUILDDIR (default build/) must be configured with --with-cuda=yes and a CUDA_ARCHS holding 90
# (e.g. CUDA_ARCHS=90: one arch compiles fastest). build/ is git-ignored, so the bundle travels
# only when the device call names it: carry ["build/gpu-bundle"]. About 26 MB.
set -eu
cd "$(dirname "$0")/../.."
SRC=$(pwd)
B=${1:-build}
grep -q 'compute_90' "$B/Makefile" ||
    { echo "bundle.sh: $B is not configured --with-cuda=yes with CUDA_ARCHS including 90" >&2; exit 2; }
rm -f "$B/tests/gpu/ops_cuda_vs_cpu"
# Relink with OpenBLAS (and its Fortran runtime) static; the next plain `make` relinks it back.
make -C "$B" -j2 OPENBLAS_LIBS="-Wl,-Bstatic -lopenblas -lgfortran -lquadmath -Wl,-Bdynamic" \
    tests/gpu/ops_cuda_vs_cpu
mkdir -p "$SRC/build/gpu-bundle"
cp "$B/tests/gpu/ops_cuda_vs_cpu" "$SRC/build/gpu-bundle/ops_cuda_vs_cpu"
strip "$SRC/build/gpu-bundle/ops_cuda_vs_cpu"
rm -f "$B/tests/gpu/ops_cuda_vs_cpu"
{
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty') built $(date -u +%FT%TZ)"
    grep '^CUDA_GENCODE' "$B/Makefile"
    nvcc --version | tail -1
    ldd "$SRC/build/gpu-bundle/ops_cuda_vs_cpu"
} >"$SRC/build/gpu-bundle/INFO"
ls -la "$SRC/build/gpu-bundle"
head -1 "$SRC/build/gpu-bundle/INFO"
