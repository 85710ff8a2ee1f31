#!/bin/sh
# tests/integration/cli_help.sh: every program answers --help and rejects unknown commands clearly.
. "$top_srcdir/tests/integration/lib.sh"
plan 4
ok "diffq --help lists commands" sh -c "'$DQ' --help | grep -q 'Commands:'"
ok "diffq --version names the version" sh -c "'$DQ' --version | grep -q '^diffq [0-9]'"
fails "diffq with no command is a usage error" 2 "$DQ"
fails "an unknown command is a usage error" 2 sh -c "'$DQ' frobnicate 2>&1 | grep -q \"unknown command 'frobnicate'\" && exit 2"
done_testing
