#!/bin/bash
# broker_diskfull.sh: the output folder's file system fills up mid-job (a 64 KiB tmpfs): images
# that cannot be written are not acknowledged and are sent again later; once there is room the
# job completes with every image committed once. Needs root's mount(8): skipped without it.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
IMG="$DQ_SCRATCH/img"
mkdir "$IMG"
if ! mount -t tmpfs -o size=64k diffq-test "$IMG" 2>/dev/null; then
    echo "1..0 # SKIP cannot mount a small tmpfs here (needs root)"
    exit 0
fi
trap 'for p in $dq_pids; do kill $p 2>/dev/null; done; wait 2>/dev/null; umount "$IMG"; rm -rf "$DQ_SCRATCH"' EXIT
plan 7
start_broker
write_job "$DQ_SCRATCH/job.jsonl" 40
ok "submit" "$DQ" submit --model tiny --out "$IMG" "$DQ_SCRATCH/job.jsonl"
# The node cuts the broker's shards of 16 requests to 4 requests (--bimg 4).
start_node n1 --cap 2 --bimg 4
ok "the full disk is logged" eventually 60 grep -q "No space left on device" "$DQ_SCRATCH/broker.log"
ok "the node is told to resend later" eventually 30 grep -q "DISCONNECT \"the broker could not store" "$DQ_SCRATCH/n1.log"
ok "some images fit, not all" bash -c "n=\$('$DQ' status --json 1 | sed -n 's/.*\"done\": \([0-9]*\).*/\1/p'); [ \"\$n\" -gt 0 ] && [ \"\$n\" -lt 40 ]"
ok "no temporary file is left behind" bash -c "! ls -a '$IMG' | grep -q '\.tmp\$'"
mount -o remount,size=8m "$IMG"
ok "once there is room the job completes" timeout 120 "$DQ" wait 1
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "40 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 40
done_testing
