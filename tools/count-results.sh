#!/bin/sh
# tools/count-results.sh DIR...: counts test cases in automake .trs files under the given build
# directories and prints them; the last line of tools/test.sh is built from these counts.
# Prints "PASSED FAILED SKIPPED".
find "$@" -name '*.trs' -exec grep -h '^:test-result:' {} + 2>/dev/null | awk '
    $2 == "PASS" || $2 == "XFAIL" { p++ }
    $2 == "FAIL" || $2 == "XPASS" || $2 == "ERROR" { f++ }
    $2 == "SKIP" { s++ }
    END { printf "%d %d %d\n", p, f, s }'
