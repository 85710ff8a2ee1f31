#!/bin/bash
# node_threads.sh: CPU ranks share the machine's cores (each gets OMP_NUM_THREADS = cores / ranks,
# at least 1) unless the user set OMP_NUM_THREADS, which then wins.
. "$top_srcdir/tests/integration/lib.sh"
plan 2
NODE="$top_builddir/diffq-node"
cores=$(getconf _NPROCESSORS_ONLN)
per=$((cores / 2)); [ "$per" -ge 1 ] || per=1
# ranks_up LOG: runs a node with two CPU ranks (no broker needed) until both ranks are up.
ranks_up() {
    : >"$1" # exists before the loop reads it (the background node opens it when it gets to it)
    "$NODE" --broker tcp://127.0.0.1:1 --backend null --model m --cpu-ranks 2 \
        --death-timeout 30 2>"$1" &
    local pid=$! n=0
    while [ "$(grep -c 'rank up backend' "$1")" -lt 2 ] && [ $n -lt 150 ]; do
        sleep 0.2; n=$((n + 1))
    done
    kill $pid; wait $pid 2>/dev/null
}
ranks_up "$DQ_SCRATCH/a.log"
ok "two ranks on $cores cores get $per thread(s) each" \
    bash -c "[ \$(grep -c 'rank up backend=null device=cpu .* threads=$per\$' '$DQ_SCRATCH/a.log') = 2 ]"
OMP_NUM_THREADS=3 ranks_up "$DQ_SCRATCH/b.log"
ok "the user's OMP_NUM_THREADS wins" \
    bash -c "[ \$(grep -c 'threads=3\$' '$DQ_SCRATCH/b.log') = 2 ]"
done_testing
