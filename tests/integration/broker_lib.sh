# tests/integration/broker_lib.sh: helpers for the broker's integration tests (sourced after
# lib.sh): start a broker on a free loopback port, fake nodes, poll with generous deadlines.
BROKER="$top_builddir/diffq-broker"
FAKE_NODE="$top_builddir/tests/integration/fake_node"
STORE_CHECK="$top_builddir/tests/integration/store_check"
JUNK_SENDER="$top_builddir/tests/integration/junk_sender"
STATE="$DQ_SCRATCH/state"
dq_pids=""
trap 'for p in $dq_pids; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$DQ_SCRATCH"' EXIT

# start_broker [BIND [OPTIONS...]]: starts diffq-broker on $STATE; sets BROKER_PID and EP. Without
# BIND it takes a random free port below the kernel's ephemeral range (32768 and up): a node
# reconnecting to a closed ephemeral port can be handed that very port as its own source port and
# connect to itself, and a restarted broker could then not bind it again.
start_broker() {
    local bind=${1:-}
    shift || true
    local tries=0
    while :; do
        local ep=$bind
        [ -n "$ep" ] || ep="tcp://127.0.0.1:$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))"
        "$BROKER" --state "$STATE" --bind "$ep" "$@" 2>>"$DQ_SCRATCH/broker.log" &
        BROKER_PID=$!
        local n=0 up=""
        while [ -z "$up" ] && [ $n -lt 100 ] && kill -0 "$BROKER_PID" 2>/dev/null; do
            [ "$(grep -c 'serving bind' "$DQ_SCRATCH/broker.log")" -ge "${BROKER_STARTS:-1}" ] && up=1
            n=$((n + 1))
            [ -n "$up" ] || sleep 0.1
        done
        if [ -n "$up" ] || [ -n "$bind" ] || [ $tries -ge 20 ]; then break; fi
        wait "$BROKER_PID" 2>/dev/null # the port was taken: try another
        tries=$((tries + 1))
    done
    dq_pids="$dq_pids $BROKER_PID"
    EP=$(grep -o "serving bind=tcp://[0-9.:]*" "$DQ_SCRATCH/broker.log" | tail -1 | cut -d= -f2)
    BROKER_STARTS=$(( ${BROKER_STARTS:-1} + 1 ))
    export DIFFQ_BROKER="$EP"
}

# start_node NAME [OPTIONS...]: a fake node logging to $DQ_SCRATCH/NAME.log; sets NODE_PID.
start_node() {
    local name=$1
    shift
    "$FAKE_NODE" --broker "$EP" --name "$name" "$@" 2>>"$DQ_SCRATCH/$name.log" &
    NODE_PID=$!
    dq_pids="$dq_pids $NODE_PID"
}

# eventually SECONDS COMMAND...: retries COMMAND every 0.2 s until it succeeds or time is up.
eventually() {
    local end=$(( $(date +%s) + $1 ))
    shift
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.2
    done
}

# write_job FILE N [IMAGES]: N valid requests of IMAGES images each (seeded, so reproducible).
write_job() {
    local i=1
    : >"$1"
    while [ $i -le "$2" ]; do
        echo "{\"prompt\":\"prompt $i\",\"seed\":$i,\"num_images_per_prompt\":${3:-1},\"num_inference_steps\":2}" >>"$1"
        i=$((i + 1))
    done
}

# done_images JOB: the job's committed images according to diffq status --json.
done_images() {
    "$DQ" status --json "$1" | sed -n 's/.*"done": \([0-9]*\).*/\1/p'
}

# images_at_least JOB N: true once JOB has N images done.
images_at_least() {
    local n
    n=$(done_images "$1")
    [ -n "$n" ] && [ "$n" -ge "$2" ]
}
