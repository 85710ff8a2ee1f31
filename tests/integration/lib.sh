# tests/integration/lib.sh: a small TAP helper for the integration scripts.
# Usage in a test:  . "$top_srcdir/tests/integration/lib.sh"; plan 3; ok "name" cmd...; done_testing
# Programs are found in $top_builddir (set by `make check`); each test gets a scratch $TMPDIR.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
DQ="$top_builddir/diffq"
dq_tap_count=0
dq_tap_failed=0
DQ_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/dq-test.XXXXXX")
trap 'rm -rf "$DQ_SCRATCH"' EXIT

plan() { echo "1..$1"; }

# ok NAME COMMAND...: one test case that passes when COMMAND exits 0.
ok() {
    local name=$1; shift
    dq_tap_count=$((dq_tap_count + 1))
    if "$@" >"$DQ_SCRATCH/out" 2>&1; then
        echo "ok $dq_tap_count - $name"
    else
        echo "not ok $dq_tap_count - $name"
        sed 's/^/# /' "$DQ_SCRATCH/out" | head -40
        dq_tap_failed=$((dq_tap_failed + 1))
    fi
}

# fails NAME STATUS COMMAND...: passes when COMMAND exits with STATUS.
fails() {
    local name=$1 want=$2; shift 2
    dq_tap_count=$((dq_tap_count + 1))
    local got=0
    "$@" >"$DQ_SCRATCH/out" 2>&1 || got=$?
    if [ "$got" = "$want" ]; then
        echo "ok $dq_tap_count - $name"
    else
        echo "not ok $dq_tap_count - $name (exit $got, expected $want)"
        sed 's/^/# /' "$DQ_SCRATCH/out" | head -40
        dq_tap_failed=$((dq_tap_failed + 1))
    fi
}

# The output of the last ok/fails command.
last_output() { cat "$DQ_SCRATCH/out"; }

done_testing() { [ "$dq_tap_failed" -eq 0 ]; }
