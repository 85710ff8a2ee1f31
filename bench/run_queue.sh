#!/bin/sh
# bench/run_queue.sh: the queue alone at scale. A broker, NODES diffq-node daemons with RANKS
# null-backend ranks each (simulated rendering: a small PNG at once: 64x64 here), and one job of REQUESTS
# requests, end to end through submit, lease, result commit (fsync, rename, SQLite) and wait.
# Prints requests/s and committed images/s, and the broker's resident memory with the whole job
# queued before any node starts (to show it does not grow with the queue) and at its peak.
#
# Usage: bench/run_queue.sh BUILD_DIR [REQUESTS] [NODES] [RANKS] [SHARD_SIZE]
#   defaults: 100000 requests, 10 nodes x 10 ranks = 100 simulated ranks, shards of 16
# Environment: BENCH_DIR (default /tmp): where the state folder (queue.db, images) goes: the
#   results/s depend on that file system as much as on the broker; KEEP=1 keeps it;
#   BROKER_LOG=debug logs each result batch's write/rename/commit times.
set -eu
build=${1:?usage: run_queue.sh BUILD_DIR [REQUESTS] [NODES] [RANKS] [SHARD_SIZE]}
requests=${2:-100000}
nodes=${3:-10}
ranks=${4:-10}
shard=${5:-16}
build=$(cd "$build" && pwd)
make -C "$build" diffq diffq-broker diffq-node >/dev/null
work=$(mktemp -d "${BENCH_DIR:-/tmp}/queue_bench.XXXXXX")
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))
export DIFFQ_BROKER="tcp://127.0.0.1:$port"

# rss_kib PID FIELD: VmRSS (now) or VmHWM (peak) of PID, in KiB.
rss_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
# cpu_ms PID...: user+system CPU time the processes used so far, in ms.
cpu_ms() {
    local hz total=0 p t
    hz=$(getconf CLK_TCK)
    for p in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo $((total * 1000 / hz))
}

awk -v n="$requests" 'BEGIN { for (i = 1; i <= n; i++)
    printf "{\"prompt\":\"bench prompt %d\",\"seed\":%d,\"num_inference_steps\":2,\"width\":64,\"height\":64}\n", i, i }' \
    >"$work/job.jsonl"
# The same small job once more, to see the broker's memory with few requests queued.
head -n 1000 "$work/job.jsonl" >"$work/small.jsonl"

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "config: $requests requests, $nodes nodes x $ranks null ranks, shard size $shard"

"$build/diffq-broker" --state "$work/state" --bind "$DIFFQ_BROKER" --shard-size "$shard" \
    --log-level "${BROKER_LOG:-warn}" 2>"$work/broker.log" &
broker=$!
pids="$broker"
sleep 0.5
base=$(rss_kib $broker VmRSS)
small=$("$build/diffq" submit --model null-bench --name small "$work/small.jsonl")
after_small=$(rss_kib $broker VmRSS)
t0=$(now_ms)
job=$("$build/diffq" submit --model null-bench --name bench "$work/job.jsonl")
t1=$(now_ms)
queued=$(rss_kib $broker VmRSS)
echo "broker RSS: idle $base KiB, 1,000 queued $after_small KiB, $((requests + 1000)) queued $queued KiB"
echo "submit: $requests requests in $((t1 - t0)) ms"

i=1
while [ $i -le "$nodes" ]; do
    "$build/diffq-node" --name "n$i" --backend null --model null-bench --cpu-ranks "$ranks" --batch 2 --max-batch "$shard" \
        --log-level warn 2>>"$work/node$i.log" &
    pids="$pids $!"
    i=$((i + 1))
done
t2=$(now_ms)
broker_cpu0=$(cpu_ms $broker)
"$build/diffq" wait "$job" >/dev/null 2>&1 || { echo "wait failed"; tail -5 "$work/broker.log"; exit 1; }
t3=$(now_ms)
broker_cpu=$(( $(cpu_ms $broker) - broker_cpu0 ))
node_pids=$(for p in $pids; do [ "$p" = "$broker" ] || echo "$p $(pgrep -P "$p" | tr '\n' ' ')"; done)
nodes_cpu=$(cpu_ms $node_pids)
"$build/diffq" wait "$small" >/dev/null 2>&1 || true
done=$("$build/diffq" status --json "$job" | sed -n 's/.*"done": \([0-9]*\).*/\1/p' | head -1)
peak=$(rss_kib $broker VmHWM)
ms=$((t3 - t2))
echo "render: $done images committed in $ms ms (nodes started -> wait returned)"
awk -v n="$done" -v ms="$ms" 'BEGIN { printf "throughput: %.0f committed results/s\n", n * 1000 / ms }'
echo "CPU: broker $broker_cpu ms while rendering, nodes and ranks $nodes_cpu ms in all"
awk -v n="$done" -v ms="$broker_cpu" 'BEGIN { if (ms > 0) printf "broker alone: %.0f results per CPU second (what one core of broker could commit)\n", n * 1000 / ms }'
echo "broker peak RSS: $peak KiB; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$done" -eq "$requests" ] || { echo "MISSING: $done of $requests images"; exit 1; }
