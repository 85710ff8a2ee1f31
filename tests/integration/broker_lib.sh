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

# ---- Real nodes and the checks of the fault tests (broker_node_kill.sh, broker_node_stop.sh,
# broker_lossy.sh). ----
DQ_NODE="$top_builddir/diffq-node"

# start_dq_node NAME [OPTIONS...]: a real diffq-node on the null backend (model "tiny", one CPU
# rank unless OPTIONS say otherwise) connected to ${NODE_EP:-$EP}, logging to $DQ_SCRATCH/NAME.log;
# sets NODE_PID.
start_dq_node() {
    local name=$1
    shift
    "$DQ_NODE" --broker "${NODE_EP:-$EP}" --backend null --model tiny --cpu-ranks 1 \
        --name "$name" "$@" 2>>"$DQ_SCRATCH/$name.log" &
    NODE_PID=$!
    dq_pids="$dq_pids $NODE_PID"
}

# status_is JOB N: diffq status says JOB is done with N images done and none queued, running or
# failed.
status_is() {
    local s
    s=$("$DQ" status --json "$1" | tr -d ' \n')
    case $s in
    *"\"id\":$1,"*"\"state\":\"done\""*"\"queued\":0,\"running\":0,\"done\":$2,\"failed\":0,"*) ;;
    *) echo "status of job $1: $s"; return 1 ;;
    esac
}

# job_events JOB: the job's event log (store_check --events), one event a line; the broker must
# have stopped.
job_events() {
    "$STORE_CHECK" --events "$STATE" "$1"
}

# taken_over JOB FROM TO: the event log shows that shards of FROM were taken away (requeued or
# expired, at least one), that each was finished by TO with a later attempt, and that nothing of
# a taken attempt was committed after it was taken.
taken_over() {
    job_events "$1" | awk -v from="$2" -v to="$3" '
        function val(k,   i) { for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
        ($1 == "requeue" || $1 == "expire") && val("node") == from {
            taken[val("shard")] = val("attempt"); n++
        }
        $1 == "commit" && (val("shard") in taken) && val("attempt") <= taken[val("shard")] {
            print "commit of a taken attempt: " $0; bad++
        }
        $1 == "done" && (val("shard") in taken) && val("attempt") > taken[val("shard")] && val("node") == to {
            finished[val("shard")] = 1
        }
        END {
            if (n == 0) { print "no shard of " from " was taken away"; exit 1 }
            for (s in taken) if (!(s in finished)) { print "shard " s " was not finished by " to; bad++ }
            exit bad > 0
        }'
}

# assigns_fit JOB NODE=MAX...: the event log shows that every shard of JOB assigned to each named
# node had at most MAX images (the batch the node announced, READY bimg), that each named node
# was assigned something, and that at least one shard was split to fit a node.
assigns_fit() {
    local job=$1
    shift
    job_events "$job" | awk -v limits="$*" '
        function val(k,   i) { for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
        BEGIN { n = split(limits, l, " "); for (i = 1; i <= n; i++) { split(l[i], kv, "="); max[kv[1]] = kv[2] } }
        $1 == "assign" {
            node = val("node"); images = val("images")
            if (!(node in max)) { print "assigned to an unknown node: " $0; bad++; next }
            if (images == "" || images + 0 > max[node] + 0) { print "over the batch of " node ": " $0; bad++ }
            got[node]++
            if (val("split_from") != "") splits++
        }
        END {
            for (node in max) if (!(node in got)) { print node " was assigned nothing"; bad++ }
            if (splits == 0) { print "no shard was split"; bad++ }
            exit bad > 0
        }'
}
