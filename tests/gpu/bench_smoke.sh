#!/bin/sh
# tests/gpu/bench_smoke.sh: bench/gpu_render (the GPU benchmark tests/gpu/check.sh runs) works on
# the CPU with the tiny model at a small size: one JSON line per batch with the measured fields,
# the time budget cuts the timed renders short, and bad options are usage errors. Also that the
# scripts a GPU session runs still parse (they run only there and in a dry run by hand).
. "$top_srcdir/tests/integration/lib.sh"
BENCH="$top_builddir/bench/gpu_render"
MODEL="$top_srcdir/tests/fixtures/tiny-sd"
export OMP_WAIT_POLICY=passive
plan 12
ok "renders batches 1 and 2 on the CPU" sh -c "'$BENCH' --device cpu --model '$MODEL' --size 64 \
    --steps 2 --batches '1 2' --reps 2 >'$DQ_SCRATCH/lines'"
ok "one line per batch, in order" sh -c "test \$(wc -l <'$DQ_SCRATCH/lines') = 2 && \
    sed -n 1p '$DQ_SCRATCH/lines' | grep -q '\"batch\":1,' && \
    sed -n 2p '$DQ_SCRATCH/lines' | grep -q '\"batch\":2,'"
ok "each line names the tool, device, precision, size and steps" sh -c "test \$(grep -c \
    '^{\"tool\":\"diffq\",\"device\":\"cpu\",\"precision\":\"f32\",\"model\":\"tiny-sd\",\"size\":64,\"steps\":2,' \
    '$DQ_SCRATCH/lines') = 2"
ok "each line has two timed renders and a positive rate" sh -c "test \$(grep -c \
    '\"reps\":2,.*\"seconds\":\\[[0-9.e-]*,[0-9.e-]*\\],.*\"images_per_s\":[0-9]*\\.[0-9]*[1-9]' '$DQ_SCRATCH/lines') = 2"
ok "each line has a peak memory above zero and a baseline" sh -c "test \$(grep -c \
    '\"peak_mib\":[0-9]*\\.*[0-9]*[1-9][0-9.e]*,\"baseline_mib\":[0-9]' '$DQ_SCRATCH/lines') = 2"
ok "each line says whether CUDA graphs were on (never on the CPU)" sh -c "test \$(grep -c \
    '\"cuda_graphs\":\"off: the cpu backend has no graphs\",\"graph_launches\":0,' '$DQ_SCRATCH/lines') = 2"
ok "each line says the layout, attention path and conv search it ran with" sh -c "test \$(grep -c \
    '\"layout\":\"nchw\",\"attention\":\"default\",\"conv_search\":\"on\"}' '$DQ_SCRATCH/lines') = 2"
ok "a spent budget stops after one timed render" sh -c "'$BENCH' --device cpu --model '$MODEL' \
    --size 64 --steps 1 --batches 1 --reps 5 --budget 0.000001 | grep -q '\"reps\":1,'"
fails "a bad batch list is a usage error" 2 "$BENCH" --model "$MODEL" --batches "1 0"
fails "a missing model is a usage error" 2 "$BENCH" --device cpu
# Without a GPU (or CUDA in this build) a CUDA device fails with a reason (passes trivially on a
# GPU machine, where tests/gpu/check.sh runs the real benchmark).
fails "cuda without a GPU says why" 1 sh -c "nvidia-smi -L >/dev/null 2>&1 && exit 1; \
    '$BENCH' --device cuda:0 --model '$MODEL' --size 64 --steps 1 --batches 1 2>&1 | grep -q 'cuda' && exit 1"
ok "tests/gpu/check.sh and bundle.sh parse" sh -c "bash -n '$top_srcdir/tests/gpu/check.sh' && \
    bash -n '$top_srcdir/tests/gpu/bundle.sh'"
done_testing
