#!/bin/bash
# tests/gpu/bundle.sh: makes build/gpu-bundle/, everything tests/gpu/check.sh runs on a GPU machine
# that has CUDA and PyTorch but not the engine's C libraries nor diffusers (the lent H100/H200
# image; nothing can be installed there). Run it on the build machine from the repository root:
#     tests/gpu/bundle.sh [BUILDDIR]
# BUILDDIR (default build-gpu/) must be configured with --with-cuda=yes, a CUDA_ARCHS holding 90
# (CUDA_ARCHS=90 compiles fastest) and WITHOUT --enable-sanitizers. It holds:
#   payload.tar.xz  bin/{ops_cuda_vs_cpu,graph_cuda,test_pipeline,gpu_render,diffq} (stripped;
#                   OpenBLAS and its Fortran runtime linked statically) and lib/ with every shared
#                   library they need except glibc, libstdc++/libgcc_s and CUDA's own (libcuda,
#                   cudart, cuBLAS, cuDNN, NCCL: check.sh finds those on the device). The programs
#                   share most of their bytes (the engine, OpenBLAS), which xz's 64 MiB window
#                   stores once.
#   wheels/         diffusers and what it needs that the device image lacks (pip download here).
#   INFO            commit, flags, the newest glibc symbol the programs need, ldd of each.
# build/ is git-ignored, so the bundle travels only when the device call names it:
# carry ["build/gpu-bundle"]. Environment: DQ_BUNDLE_WHEELS_FROM=DIR copies the wheels from DIR
# instead of downloading them (for a machine without PyPI).
set -eu
cd "$(dirname "$0")/../.."
SRC=$(pwd)
B=${1:-build-gpu}
[ -f "$B/Makefile" ] && grep -q 'compute_90' "$B/Makefile" ||
    { echo "bundle.sh: $B is not configured --with-cuda=yes with CUDA_ARCHS including 90" >&2; exit 2; }
if grep -q -- '-fsanitize' "$B/Makefile"; then
    echo "bundle.sh: $B is configured with --enable-sanitizers; the device has no libasan" >&2
    exit 2
fi
PROGS="tests/gpu/ops_cuda_vs_cpu tests/gpu/graph_cuda tests/unit/test_pipeline bench/gpu_render diffq"
OUT="$SRC/build/gpu-bundle"
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/dq-bundle.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib"

# Relink with OpenBLAS (and its Fortran runtime) static; the next plain `make` relinks them back.
# shellcheck disable=SC2086
(cd "$B" && rm -f $PROGS && make -j2 libdqcuda.a &&
    make -j2 OPENBLAS_LIBS="-Wl,-Bstatic -lopenblas -lgfortran -lquadmath -Wl,-Bdynamic" $PROGS)
for p in $PROGS; do
    cp "$B/$p" "$STAGE/bin/"
    strip "$STAGE/bin/$(basename "$p")"
    rm -f "$B/$p"
done

# Shared libraries the device lacks: all but glibc's, the C++ runtime and CUDA's.
SYSTEM='^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libresolv|libutil|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcudnn.*|libnccl|libnvrtc.*|libnvJitLink)\.so'
for f in "$STAGE"/bin/*; do
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
    if ! echo "$name" | grep -Eq "$SYSTEM"; then
        cp -L "$path" "$STAGE/lib/$name"
        chmod u+w "$STAGE/lib/$name"
        strip --strip-unneeded "$STAGE/lib/$name" 2>/dev/null || true
    fi
done
if (cd "$STAGE" && for f in bin/*; do LD_LIBRARY_PATH=lib ldd "$f"; done) | grep -q 'not found'; then
    echo "bundle.sh: a library is missing on this machine:" >&2
    (cd "$STAGE" && for f in bin/*; do LD_LIBRARY_PATH=lib ldd "$f"; done) | grep 'not found' >&2
    exit 1
fi

# They start here with only lib/ beside them (the device has no other copy of these libraries).
(cd "$STAGE" && env -u LD_LIBRARY_PATH LD_LIBRARY_PATH=lib bin/diffq --help >/dev/null &&
    LD_LIBRARY_PATH=lib bin/gpu_render --help >/dev/null) ||
    { echo "bundle.sh: the bundled programs do not start" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/wheels"
tar -C "$STAGE" -cf - bin lib | xz -9 -T1 >"$OUT/payload.tar.xz"

# diffusers for bench/diffusers_gpu.py. The image has its other needs (filelock, huggingface-hub
# >= 1.32, numpy, regex, requests, safetensors >= 0.8, Pillow; KINDS.md's list) except
# importlib_metadata, which diffusers only imports on Python < 3.8 (the image's is 3.12): carried
# anyway, with its own need lazy-importer, so that pip's view of diffusers is complete.
if [ -n "${DQ_BUNDLE_WHEELS_FROM:-}" ]; then
    cp "$DQ_BUNDLE_WHEELS_FROM"/*.whl "$OUT/wheels/"
else
    PIP=${PIP:-python3 -m pip}
    $PIP download -q --no-deps --only-binary=:all: -d "$OUT/wheels" \
        diffusers==0.42.1 importlib_metadata==10.2.0 lazy-importer==0.1.0
fi

{
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty') built $(date -u +%FT%TZ)"
    grep '^CUDA_GENCODE' "$B/Makefile"
    nvcc --version | tail -1
    for v in GLIBC GLIBCXX; do
        echo "needs $v $(for f in "$STAGE"/bin/* "$STAGE"/lib/*; do objdump -T "$f"; done |
            grep -o "${v}_[0-9.]*" | sort -uV | tail -1)"
    done
    echo "built on $(ldd --version | head -1)"
    echo "wheels: $(cd "$OUT/wheels" && ls)"
    for f in "$STAGE"/bin/*; do
        echo "== $(basename "$f") ($(stat -c %s "$f") bytes)"
        (cd "$STAGE" && LD_LIBRARY_PATH=lib ldd "$f")
    done
} >"$OUT/INFO"
ls -la "$OUT" "$OUT/wheels"
du -sh "$OUT"
head -1 "$OUT/INFO"
