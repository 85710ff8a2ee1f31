#!/bin/bash
# broker_upload.sh: a client that disappears in the middle of a submit leaves nothing queued:
# its staged upload is discarded at once on DISCONNECT, or after the upload timeout.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 6
start_broker '' --upload-timeout-ms 1500
ok "a client sends half an upload and says DISCONNECT" "$JUNK_SENDER" "$EP" --half-upload-disconnect
ok "the broker discards it at once" eventually 10 grep -q "client disconnected: discarded upload" "$DQ_SCRATCH/broker.log"
ok "a client sends half an upload and vanishes" "$JUNK_SENDER" "$EP" --half-upload
ok "the broker discards it after the timeout" eventually 30 grep -q "upload idle for [0-9]* ms: discarded" "$DQ_SCRATCH/broker.log"
ok "no job was ever queued" bash -c "'$DQ' status --json | grep -q '\"jobs\": \[\]'"
write_job "$DQ_SCRATCH/job.jsonl" 300
ok "a job of 300 requests goes in two chunks and is queued whole" bash -c "'$DQ' submit --model tiny '$DQ_SCRATCH/job.jsonl' >/dev/null && \
    '$DQ' status --json | grep -q '\"queued\": 300'"
done_testing
