#!/bin/bash
# broker_writefail.sh: when an image cannot be written (here its folder is replaced by a file,
# as a full disk would fail it) the broker does not acknowledge it and has the node send it again
# later; once writing works the job completes with every image committed once.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/broker_lib.sh"
plan 7
start_broker
write_job "$DQ_SCRATCH/job.jsonl" 3
IMG="$DQ_SCRATCH/img"
mkdir "$IMG"
ok "submit" "$DQ" submit --model tiny --out "$IMG" "$DQ_SCRATCH/job.jsonl"
rmdir "$IMG" && touch "$IMG"
start_node n1
ok "the write failure is logged" eventually 30 grep -q "cannot write image job=1" "$DQ_SCRATCH/broker.log"
ok "the node is told to resend later" eventually 30 grep -q "DISCONNECT \"the broker could not store" "$DQ_SCRATCH/n1.log"
ok "nothing was acknowledged as stored" bash -c "! grep -q 'stored=1' '$DQ_SCRATCH/n1.log'"
fails "... nor committed" 1 images_at_least 1 1
rm "$IMG" && mkdir "$IMG"
ok "once the folder is back the job completes" "$DQ" wait 1
kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
ok "3 images, each committed once, files and SHA-256 match" "$STORE_CHECK" "$STATE" 1 3
done_testing
