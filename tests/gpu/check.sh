#!/bin/bash
# tests/gpu/check.sh: the one script a GPU session runs (tests/gpu/README.md says how): every op
# on CUDA against the CPU backend, CUDA graphs (tests/gpu/graph_cuda), the fixture pipeline on
# CUDA (f32 and f16; graphs on, and off for one render), then the benchmark
# of issue 6 (an SD 1.5-size random model made here, diffq against diffusers at batch 1, 4 and 8)
# and gpu-latest.json; a table last. Budgeted to ~6 minutes on an H100 (DQ_GPU_BUDGET): each step
# gets a timeout from what is left, so a slow step costs the later ones, not the whole run.
# Fallbacks: when the fused attention's op cases fail (and the GEMM path's pass), the channels-
# last ops' fail (and the NCHW ones pass), or the convolutions fail with cuDNN's timed search and
# pass without it, the later steps run with DQ_CUDA_ATTENTION=gemm, DQ_LAYOUT=nchw or
# DQ_CUDA_CONV_SEARCH=0 (a table row each, and named in gpu-latest.json's note), so one device
# session still measures everything else.
#
# Programs, first that works:
#   1. a fresh autotools build (autoreconf, configure --with-cuda=yes CUDA_ARCHS=90, make) when
#      autoreconf, pkg-config and the engine's libraries are installed (not on the lent image);
#   2. the bundle build/gpu-bundle/ made on a build machine by tests/gpu/bundle.sh (carried to the
#      device with the `carry` argument): payload.tar.xz (programs + their shared libraries) is
#      unpacked to /tmp, and its lib/ is put on LD_LIBRARY_PATH for those programs only (never for
#      python3: PyTorch keeps its own libraries).
# Logs: $OUT when set (the device tool brings back at most 8 files, so everything goes into
# summary.txt, setup.txt, ops.txt, pipeline.txt, bench.txt, gpu-latest.json, memcheck.txt).
# Environment:
#   DQ_GPU_DEVICE     cuda:0 (default), or cpu: a dry run of the whole flow on this machine with
#                     the tiny model (no GPU steps; f16 skipped), for testing the script itself
#   DQ_GPU_BUDGET     seconds for the whole script (default 360)
#   DQ_GPU_PREBUILT=1 skip the autotools attempt and use the bundle
#   DQ_GPU_SMALL=1    small op cases only, and a small benchmark (256x256, 20 steps, batches 1 4)
#   DQ_GPU_SKIP_BENCH=1  stop after the pipeline checks
#   DQ_GPU_GRAPHS_AB=1   also time diffq at the first batch size with CUDA graphs off
#                     (DQ_CUDA_GRAPHS=0; one more model load and batch: ~30 s more)
#   DQ_GPU_BENCH_SIZE / _STEPS / _BATCHES / _REPS / _BUDGET (per batch timed seconds) / _CONFIG
#                     (diffq model init preset) override the benchmark (512, 50, "1 4 8", 3, 20, sd15)
#   DQ_GPU_PYTHON     the python with torch (default python3)
#   DQ_GPU_SANITIZE=1 also run the op test under compute-sanitizer memcheck (slow)
set -u
cd "$(dirname "$0")/../.." || exit 2
SRC=$(pwd)
OUTDIR=${OUT:-$SRC/build/gpu-check}
mkdir -p "$OUTDIR"
W=${DQ_GPU_WORK:-/tmp/diffq-gpu-check}
rm -rf "$W" && mkdir -p "$W"
for f in summary.txt setup.txt ops.txt pipeline.txt bench.txt gpu-latest.json memcheck.txt; do
    rm -f "$OUTDIR/$f"
done
BUILD=${DQ_GPU_BUILD:-/tmp/diffq-gpu-build}
JOBS=${DQ_GPU_JOBS:-16}
DEVICE=${DQ_GPU_DEVICE:-cuda:0}
PY=${DQ_GPU_PYTHON:-python3}
SMALL=${DQ_GPU_SMALL:-0}
T0=$(date +%s)
DEADLINE=$((T0 + ${DQ_GPU_BUDGET:-360}))
ROWS=()
FAIL=0
SETUP="$OUTDIR/setup.txt"
FALLBACKS=""

# One table row: step, result, seconds since the step began, note.
row() { ROWS+=("$(printf '%-26s %-10s %5ss  %s' "$1" "$2" "$3" "${4:-}")"); }
# True when the op test's table $3 has a failed row of an op matching the regex $1 in one of the
# passes matching the regex $2 (a row is "op shape mode err tol  result"; the shape may hold
# spaces, so the mode is found as the word before two numbers).
op_failed() {
    awk -v op="^($1)\$" 'NR > 2 && $1 ~ op && $0 !~ /  ok( \(both refused\))?$/' "$3" |
        grep -qE " ($2) +[^ ]+ +[0-9.e+-]+  "
}
log() { echo "== $*" | tee -a "$SETUP"; }
# Timeout for a step: at most $1 seconds, and leave $2 seconds for the steps after it.
# Never below 5 (timeout 0 would mean no limit): past the deadline each step just fails fast.
tmo() {
    local left=$((DEADLINE - $(date +%s) - $2))
    [ "$left" -lt 5 ] && left=5
    [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}

log "check.sh started $(date -u +%FT%TZ) in $SRC, device $DEVICE"
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
    --format=csv; command -v nvcc && nvcc --version | tail -2; uname -a; ldd --version | head -1
  nproc; } >"$W/machine.txt" 2>&1
cat "$W/machine.txt" | tee -a "$SETUP"
GPU=0
nvidia-smi -L 2>/dev/null | grep -q '^GPU ' && GPU=1
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -1)
if [ "$DEVICE" = cpu ]; then
    CARD="cpu (dry run of tests/gpu/check.sh)"
    log "dry run on the CPU: the op test and f16 are skipped; the benchmark uses the tiny model"
fi

# CUDA's libraries: the toolkit's, then every folder of PyTorch's nvidia-* wheels holding a .so
# (cuDNN often lives only there; the CUDA 13 wheels nest them one level deeper).
CUDA_LD=/usr/local/cuda/lib64
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
if [ -n "$SITE" ] && [ -d "$SITE/nvidia" ]; then
    for d in $(find "$SITE/nvidia" -maxdepth 4 -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u); do
        CUDA_LD="$CUDA_LD:$d"
    done
fi
PROG_LD="$CUDA_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DIFFQ_DATA_DIR="$SRC/data" # the CLIP merges file, wherever the programs were built

# ---- 1. programs
s=$(date +%s)
OPS="" PIPE="" RENDER="" DQ="" GRAPH=""
DEPS="libzmq libczmq msgpack libpng16 zlib jansson sqlite3 openblas libutf8proc libcrypto cmocka"
if [ "${DQ_GPU_PREBUILT:-0}" = 1 ] || [ "$DEVICE" = cpu ]; then
    row "build (autotools)" skipped 0 "DQ_GPU_PREBUILT=1 or dry run: the bundle"
elif command -v autoreconf >/dev/null && command -v pkg-config >/dev/null &&
     pkg-config --exists $DEPS 2>/dev/null; then
    log "build: fresh autotools build in $BUILD (CUDA_ARCHS=90)"
    rm -rf "$BUILD" && mkdir -p "$BUILD"
    if (autoreconf -fi && cd "$BUILD" && "$SRC/configure" --with-cuda=yes CUDA_ARCHS=90 &&
        timeout "$(tmo 240 200)" make -j"$JOBS" libdqcuda.a tests/gpu/ops_cuda_vs_cpu \
            tests/gpu/graph_cuda tests/unit/test_pipeline bench/gpu_render diffq) \
            >"$W/build.log" 2>&1; then
        OPS="$BUILD/tests/gpu/ops_cuda_vs_cpu" PIPE="$BUILD/tests/unit/test_pipeline"
        GRAPH="$BUILD/tests/gpu/graph_cuda"
        RENDER="$BUILD/bench/gpu_render" DQ="$BUILD/diffq"
        row "build (autotools)" ok $(( $(date +%s) - s ))
    else
        tail -30 "$W/build.log"
        row "build (autotools)" FAILED $(( $(date +%s) - s )) "see setup.txt"
    fi
    { echo "== build.log"; cat "$W/build.log"; } >>"$SETUP"
else
    log "build: autotools or the engine's libraries missing here ($DEPS)"
    row "build (autotools)" skipped 0 "deps missing on this machine"
fi
BUNDLE="$SRC/build/gpu-bundle"
if [ -z "$OPS" ] && [ -f "$BUNDLE/payload.tar.xz" ]; then
    s=$(date +%s)
    mkdir -p "$W/bundle"
    if tar -C "$W/bundle" -xJf "$BUNDLE/payload.tar.xz" 2>>"$SETUP" ||
       "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
           "$BUNDLE/payload.tar.xz" "$W/bundle" 2>>"$SETUP"; then
        B="$W/bundle/bin"
        OPS="$B/ops_cuda_vs_cpu" PIPE="$B/test_pipeline" RENDER="$B/gpu_render" DQ="$B/diffq"
        GRAPH="$B/graph_cuda"
        PROG_LD="$W/bundle/lib:$PROG_LD"
        log "programs: the carried bundle: $(head -1 "$BUNDLE/INFO" 2>/dev/null)"
        row "bundle" ok $(( $(date +%s) - s )) "$(head -1 "$BUNDLE/INFO" 2>/dev/null | cut -c1-60)"
    else
        row "bundle" FAILED $(( $(date +%s) - s )) "payload.tar.xz did not unpack"
        FAIL=1
    fi
fi
# Runs one of the programs with its libraries (the bundle's, then CUDA's).
px() { OMP_WAIT_POLICY=passive LD_LIBRARY_PATH="$PROG_LD" "$@"; }
if [ -n "$OPS" ]; then
    for p in "$OPS" "$PIPE" "$RENDER" "$DQ"; do echo "== ldd $p"; px ldd "$p"; done >>"$SETUP" 2>&1
    if px ldd "$OPS" "$PIPE" "$RENDER" "$DQ" 2>&1 | grep -q "not found"; then
        log "libraries not found:"; px ldd "$OPS" "$PIPE" "$RENDER" "$DQ" | grep "not found" | sort -u
    fi
elif command -v nvcc >/dev/null; then
    # No way to link the programs: at least prove the CUDA sources compile with this nvcc.
    s=$(date +%s)
    mkdir -p "$W/nvcc"
    ok=ok
    for f in kernels/cuda/*.cu; do
        nvcc -std=c++17 -O3 -gencode arch=compute_90,code=sm_90 -I"$SRC" -I"$SRC/build" \
            -Xcompiler -Wall,-Wextra,-fPIC -c -o "$W/nvcc/$(basename "$f").o" "$f" \
            >>"$SETUP" 2>&1 || ok=FAILED
    done
    row "nvcc compile only" $ok $(( $(date +%s) - s )) "no programs to run"
    FAIL=1
else
    row "programs" missing 0 "no bundle (tests/gpu/bundle.sh) and no build"
    FAIL=1
fi

# The SD 1.5-size model for step 4, made in the background while steps 2 and 3 run (CPU work).
BENCH=1
[ "${DQ_GPU_SKIP_BENCH:-0}" = 1 ] && BENCH=0
MCONF=${DQ_GPU_BENCH_CONFIG:-sd15}
[ "$DEVICE" = cpu ] && MCONF=${DQ_GPU_BENCH_CONFIG:-tiny}
MODEL="$W/$MCONF-random-f16"
INIT_PID=""
if [ $BENCH = 1 ] && [ -n "$DQ" ] && { [ "$DEVICE" = cpu ] || [ $GPU = 1 ]; }; then
    ( s=$(date +%s)
      px timeout "$(tmo 200 60)" "$DQ" model init --config "$MCONF" --random --seed 1 --dtype f16 \
          -o "$MODEL" --bpe "$SRC/data/clip/bpe_simple_vocab_16e6.txt.gz" >"$W/init.log" 2>&1
      echo "$? $(( $(date +%s) - s ))" >"$W/init.rc" ) &
    INIT_PID=$!
fi

# ---- 2. every op, CUDA against CPU
s=$(date +%s)
if [ "$DEVICE" = cpu ]; then
    row "ops_cuda_vs_cpu" skipped 0 "dry run"
elif [ -n "$OPS" ]; then
    log "ops: $OPS"
    px timeout "$(tmo 150 200)" "$OPS" >"$W/ops.txt" 2>"$W/ops.err"
    rc=$?
    cat "$W/ops.txt"
    tail -20 "$W/ops.err"
    { cat "$W/ops.txt"; echo "== stderr"; cat "$W/ops.err"; } >"$OUTDIR/ops.txt"
    case $rc in
    0) row "ops_cuda_vs_cpu" ok $(( $(date +%s) - s )) "$(tail -1 "$W/ops.txt")" ;;
    77) row "ops_cuda_vs_cpu" SKIP $(( $(date +%s) - s )) "no CUDA device"; FAIL=1 ;;
    124|137) row "ops_cuda_vs_cpu" TIMEOUT $(( $(date +%s) - s )) "$(tail -1 "$W/ops.txt")"; FAIL=1 ;;
    *) row "ops_cuda_vs_cpu" "FAILED($rc)" $(( $(date +%s) - s )) "$(tail -1 "$W/ops.txt")"; FAIL=1 ;;
    esac
    # Case rows whose result is not "ok ...": shown again under the table.
    awk 'NR > 2 && NF >= 6 && $0 !~ /  ok( \(both refused\))?$/ && $0 !~ /^ops_cuda_vs_cpu:/' \
        "$W/ops.txt" | head -25 >"$W/failed_cases.txt"
    # Fallbacks: the parts no GPU had run before this script are switched off for the steps
    # after this one when their own op cases fail, so that the pipeline and the benchmark still
    # measure the rest; each is a table row and goes into gpu-latest.json's note.
    # The fused attention runs in the f16-precision passes without "g" (f16g/h16g: GEMM path).
    if op_failed attention 'f16|f16s|h16|h16s' "$W/ops.txt" &&
        ! op_failed attention 'f16g|h16g' "$W/ops.txt"; then
        export DQ_CUDA_ATTENTION=gemm
        FALLBACKS="$FALLBACKS DQ_CUDA_ATTENTION=gemm"
        row "fallback" "attention" 0 "fused attention cases failed: DQ_CUDA_ATTENTION=gemm from here"
    fi
    # The channels-last ops failing where their NCHW counterparts pass: NCHW networks.
    NHWC_OPS='conv2d_nhwc|group_norm_nhwc|group_norm_silu_nhwc|upsample_nearest2x_nhwc'
    if op_failed "$NHWC_OPS" '[a-z0-9]+' "$W/ops.txt" &&
        ! op_failed 'conv2d|group_norm|group_norm_silu|upsample_nearest2x' '[a-z0-9]+' \
            "$W/ops.txt"; then
        export DQ_LAYOUT=nchw
        FALLBACKS="$FALLBACKS DQ_LAYOUT=nchw"
        row "fallback" "layout" 0 "channels-last cases failed: DQ_LAYOUT=nchw from here"
    fi
    # Failed convolutions (of the layout in use): once more with cuDNN's heuristics instead of
    # its timed search.
    CONV_OPS=conv2d
    [ "${DQ_LAYOUT:-}" = nchw ] || CONV_OPS='conv2d|conv2d_nhwc'
    if op_failed "$CONV_OPS" '[a-z0-9]+' "$W/ops.txt"; then
        s=$(date +%s)
        DQ_CUDA_CONV_SEARCH=0 DQ_GPU_SMALL=1 px timeout "$(tmo 60 200)" "$OPS" \
            >"$W/ops-nosearch.txt" 2>&1
        { echo "== DQ_CUDA_CONV_SEARCH=0 DQ_GPU_SMALL=1 ops_cuda_vs_cpu"
          cat "$W/ops-nosearch.txt"; } >>"$OUTDIR/ops.txt"
        if [ -s "$W/ops-nosearch.txt" ] &&
            ! op_failed "$CONV_OPS" '[a-z0-9]+' "$W/ops-nosearch.txt"; then
            export DQ_CUDA_CONV_SEARCH=0
            FALLBACKS="$FALLBACKS DQ_CUDA_CONV_SEARCH=0"
            row "fallback" "conv2d" $(( $(date +%s) - s )) \
                "conv cases pass without cuDNN's timed search: DQ_CUDA_CONV_SEARCH=0 from here"
        fi
    fi
    if [ "${DQ_GPU_SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
        s=$(date +%s)
        DQ_GPU_SMALL=1 px timeout "$(tmo 240 120)" compute-sanitizer --tool memcheck \
            --error-exitcode 3 "$OPS" >"$OUTDIR/memcheck.txt" 2>&1
        rc=$?
        tail -5 "$OUTDIR/memcheck.txt"
        row "memcheck" $([ $rc = 0 ] && echo ok || echo "FAILED($rc)") $(( $(date +%s) - s ))
        [ $rc = 0 ] || FAIL=1
    fi
else
    row "ops_cuda_vs_cpu" "not run" 0 "nothing to run (see build)"
fi

# ---- 2b. the graph hooks: a small step recorded as a CUDA graph and replayed against its eager
# bits, and a spoiled recording that must leave the backend working (docs/cuda.md "CUDA graphs")
s=$(date +%s)
if [ "$DEVICE" != cpu ] && [ -n "$GRAPH" ] && [ -x "$GRAPH" ]; then
    px timeout "$(tmo 30 200)" "$GRAPH" >"$W/graph.txt" 2>&1
    rc=$?
    cat "$W/graph.txt"
    { echo "== tests/gpu/graph_cuda: exit $rc"; cat "$W/graph.txt"; } >>"$OUTDIR/ops.txt"
    row "graph_cuda" $(case $rc in 0) echo ok ;; 77) echo SKIP ;; *) echo "FAILED($rc)" ;; esac) \
        $(( $(date +%s) - s )) "$(tail -1 "$W/graph.txt")"
    [ $rc = 0 ] || FAIL=1
    grep -E ' FAILED ' "$W/graph.txt" | head -10 >>"$W/failed_cases.txt"
fi

# ---- 3. the fixture pipeline (tiny-sd against the diffusers fixtures): f32 under the issue's
# tolerances, f16 and bf16 under tests/unit/test_pipeline.c's rules for them
for prec in f32 f16 bf16; do
    s=$(date +%s)
    if [ "$DEVICE" = cpu ] && [ $prec != f32 ]; then
        row "pipeline $prec" skipped 0 "dry run: $prec needs CUDA"; continue
    fi
    if [ -z "$PIPE" ]; then row "pipeline $prec" "not run" 0 "no test_pipeline"; FAIL=1; continue; fi
    if [ "$DEVICE" != cpu ] && [ $GPU = 0 ]; then
        row "pipeline $prec" SKIP 0 "no GPU"; FAIL=1; continue
    fi
    { echo "== pipeline on $DEVICE, $prec"; } >>"$OUTDIR/pipeline.txt"
    DIFFQ_TEST_DEVICE=$DEVICE DIFFQ_TEST_PRECISION=$prec top_srcdir="$SRC" OMP_WAIT_POLICY=passive \
        px timeout "$(tmo 60 200)" "$PIPE" >"$W/pipeline-$prec.txt" 2>&1
    rc=$?
    cat "$W/pipeline-$prec.txt" >>"$OUTDIR/pipeline.txt"
    grep -E '^# |FAILED|ERROR' "$W/pipeline-$prec.txt" | tail -12
    worst=$(grep -o 'latents relative L2 [0-9.e-]*' "$W/pipeline-$prec.txt" | awk '{print $4}' |
            sort -g | tail -1)
    row "pipeline $prec" $([ $rc = 0 ] && echo ok || echo "FAILED($rc)") $(( $(date +%s) - s )) \
        "$(grep -c '^\[       OK \]' "$W/pipeline-$prec.txt") cases ok; worst latents rel L2 ${worst:-?}"
    [ $rc = 0 ] || FAIL=1
done

# `diffq render` on the device with its default precision there (f16 on CUDA): the CLI's path.
s=$(date +%s)
if [ -n "$DQ" ] && { [ "$DEVICE" = cpu ] || [ $GPU = 1 ]; }; then
    px timeout "$(tmo 30 200)" "$DQ" render --model "$SRC/tests/fixtures/tiny-sd" --device "$DEVICE" \
        --prompt "a lighthouse" --seed 3 --steps 4 --width 72 --height 64 -o "$W/cli.png" \
        >"$W/cli.txt" 2>&1
    rc=$?
    { echo "== diffq render --device $DEVICE: exit $rc"; cat "$W/cli.txt"; } >>"$OUTDIR/pipeline.txt"
    row "diffq render (CLI)" $([ $rc = 0 ] && [ -s "$W/cli.png" ] && echo ok || echo "FAILED($rc)") \
        $(( $(date +%s) - s )) "tiny-sd, 72x64, 4 steps, default precision"
    [ $rc = 0 ] || FAIL=1
fi

# ---- 4. benchmark: diffq against diffusers on the same model, GPU and batches
SIZE=${DQ_GPU_BENCH_SIZE:-512} STEPS=${DQ_GPU_BENCH_STEPS:-50} BATCHES=${DQ_GPU_BENCH_BATCHES:-1 4 8}
if [ "$SMALL" = 1 ]; then
    SIZE=${DQ_GPU_BENCH_SIZE:-256} STEPS=${DQ_GPU_BENCH_STEPS:-20} BATCHES=${DQ_GPU_BENCH_BATCHES:-1 4}
fi
if [ "$DEVICE" = cpu ]; then
    SIZE=${DQ_GPU_BENCH_SIZE:-64} STEPS=${DQ_GPU_BENCH_STEPS:-2} BATCHES=${DQ_GPU_BENCH_BATCHES:-1 2}
fi
REPS=${DQ_GPU_BENCH_REPS:-3} BBUDGET=${DQ_GPU_BENCH_BUDGET:-20}
INIT_S=""
if [ $BENCH = 0 ]; then
    row "benchmark" skipped 0 "DQ_GPU_SKIP_BENCH=1"
elif [ "$DEVICE" != cpu ] && [ $GPU = 0 ]; then
    row "benchmark" SKIP 0 "no GPU"; FAIL=1
elif [ -z "$INIT_PID" ]; then
    row "benchmark" "not run" 0 "no diffq program"; FAIL=1
else
    s=$(date +%s)
    wait "$INIT_PID"
    rc=1 INIT_S=""
    [ -f "$W/init.rc" ] && read -r rc INIT_S <"$W/init.rc"
    { echo "== diffq model init --config $MCONF --random --seed 1 --dtype f16: exit $rc, ${INIT_S}s"
      cat "$W/init.log"; du -sh "$MODEL" 2>&1; } >>"$OUTDIR/bench.txt"
    row "model init ($MCONF, f16)" $([ "$rc" = 0 ] && echo ok || echo "FAILED($rc)") "${INIT_S:-0}" \
        "random weights, seed 1, $(du -sh "$MODEL" 2>/dev/null | cut -f1)"
    if [ "$rc" != 0 ]; then
        FAIL=1
    else
        # diffq first (its own process: no PyTorch in it), then diffusers from the carried wheel.
        s=$(date +%s)
        log "bench: diffq $DEVICE ${SIZE}px $STEPS steps batches '$BATCHES'"
        px timeout "$(tmo 170 90)" "$RENDER" --model "$MODEL" --device "$DEVICE" --size "$SIZE" \
            --steps "$STEPS" --batches "$BATCHES" --reps "$REPS" --budget "$BBUDGET" \
            >"$W/diffq.jsonl" 2>"$W/diffq.err"
        rc=$?
        cat "$W/diffq.jsonl"; tail -5 "$W/diffq.err"
        { echo "== bench/gpu_render: exit $rc"; cat "$W/diffq.jsonl"; echo "== stderr"
          tail -50 "$W/diffq.err"; } >>"$OUTDIR/bench.txt"
        graphs=$(grep -o '"cuda_graphs":"[^"]*"' "$W/diffq.jsonl" | head -1 | cut -d'"' -f4)
        layout=$(grep -o '"layout":"[^"]*"' "$W/diffq.jsonl" | head -1 | cut -d'"' -f4)
        note="$(wc -l <"$W/diffq.jsonl") of $(echo $BATCHES | wc -w) batches"
        row "bench diffq" $([ $rc = 0 ] && echo ok || echo "FAILED($rc)") $(( $(date +%s) - s )) \
            "$note; graphs ${graphs:-?}; layout ${layout:-?}"
        [ $rc = 0 ] || FAIL=1
        if [ "${DQ_GPU_GRAPHS_AB:-0}" = 1 ]; then
            s=$(date +%s)
            B1=$(echo $BATCHES | cut -d' ' -f1)
            DQ_CUDA_GRAPHS=0 px timeout "$(tmo 60 90)" "$RENDER" --model "$MODEL" --device "$DEVICE" \
                --size "$SIZE" --steps "$STEPS" --batches "$B1" --reps "$REPS" --budget "$BBUDGET" \
                >"$W/diffq-nographs.jsonl" 2>"$W/diffq-nographs.err"
            rc=$?
            { echo "== bench/gpu_render with DQ_CUDA_GRAPHS=0, batch $B1: exit $rc"
              cat "$W/diffq-nographs.jsonl"; tail -20 "$W/diffq-nographs.err"; } >>"$OUTDIR/bench.txt"
            ips() { grep -o '"images_per_s":[0-9.e+-]*' "$1" | head -1 | cut -d: -f2; }
            row "bench diffq graphs off" $([ $rc = 0 ] && echo ok || echo "FAILED($rc)") \
                $(( $(date +%s) - s )) "batch $B1: $(ips "$W/diffq-nographs.jsonl") img/s off, $(ips "$W/diffq.jsonl") on"
            [ $rc = 0 ] || FAIL=1
        fi

        s=$(date +%s)
        PYSITE="$W/site"
        if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
               --target "$PYSITE" "$BUNDLE"/wheels/*.whl >"$W/pip.log" 2>&1; then
            DTYPE=float16
            [ "$DEVICE" = cpu ] && DTYPE=float32
            PYTHONPATH="$PYSITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
                timeout "$(tmo 150 10)" "$PY" "$SRC/bench/diffusers_gpu.py" --model "$MODEL" \
                --device "$DEVICE" --dtype $DTYPE --size "$SIZE" --steps "$STEPS" \
                --batches "$BATCHES" --reps "$REPS" --budget "$BBUDGET" \
                >"$W/diffusers.jsonl" 2>"$W/diffusers.err"
            rc=$?
        else
            rc=pip
            cat "$W/pip.log"
        fi
        cat "$W/diffusers.jsonl" 2>/dev/null; tail -5 "$W/diffusers.err" 2>/dev/null
        { echo "== pip install of build/gpu-bundle/wheels"; cat "$W/pip.log"
          echo "== bench/diffusers_gpu.py: exit $rc"; cat "$W/diffusers.jsonl" 2>/dev/null
          echo "== stderr"; tail -50 "$W/diffusers.err" 2>/dev/null; } >>"$OUTDIR/bench.txt"
        row "bench diffusers" $([ "$rc" = 0 ] && echo ok || echo "FAILED($rc)") \
            $(( $(date +%s) - s )) "$(wc -l <"$W/diffusers.jsonl" 2>/dev/null || echo 0) of $(echo $BATCHES | wc -w) batches"
        [ "$rc" = 0 ] || FAIL=1
    fi
    if [ -s "$W/diffq.jsonl" ] || [ -s "$W/diffusers.jsonl" ]; then
        "$PY" "$SRC/tests/gpu/gpu_results.py" --card "${CARD:-unknown}" --diffq "$W/diffq.jsonl" \
            --diffusers "$W/diffusers.jsonl" -o "$OUTDIR/gpu-latest.json" \
            ${INIT_S:+--model-init-s "$INIT_S"} \
            --note "tests/gpu/check.sh; $(head -1 "$BUNDLE/INFO" 2>/dev/null || echo 'fresh build'); model: diffq model init --config $MCONF --random --seed 1 --dtype f16${FALLBACKS:+; fallbacks:$FALLBACKS}" \
            >"$W/table.txt" 2>&1 || FAIL=1
    fi
fi

# ---- the table, last (the device tool's reply keeps the end of the output)
{
    echo
    echo "== tests/gpu/check.sh summary (${CARD:-no GPU found}; $DEVICE)"
    printf '%-26s %-10s %6s  %s\n' step result time note
    for r in "${ROWS[@]}"; do echo "$r"; done
    if [ -s "$W/failed_cases.txt" ]; then
        echo "failed op cases (first 25; all in ops.txt, messages at its end):"
        cat "$W/failed_cases.txt"
    fi
    [ -s "$W/table.txt" ] && { echo; cat "$W/table.txt"; }
    echo "total $(( $(date +%s) - T0 ))s of ${DQ_GPU_BUDGET:-360}; logs in $OUTDIR; exit $FAIL"
} | tee "$OUTDIR/summary.txt"
exit $FAIL
