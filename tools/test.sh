#!/bin/sh
# tools/test.sh: sets up and runs every test, then prints "N passed, M failed".
#   1. unit tests built with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   2. all tests, unit and integration, in an optimised build (build/)
#   3. each fuzz target for a short while (tests/fuzz/run*.sh)
#   4. make distcheck (the release tarball builds and passes its tests)
# Warnings are errors throughout. Exits non-zero when anything failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" = 0 ]; then tools/install-deps.sh || exit 1; fi

extra_pass=0
extra_fail=0
step() { # step NAME COMMAND...: runs one step that is not an automake test suite, counted as one
    name=$1; shift
    echo "=== $name"
    if "$@"; then extra_pass=$((extra_pass + 1)); echo "PASS: $name"
    else extra_fail=$((extra_fail + 1)); echo "FAIL: $name"; fi
}

rm -f build-asan/test-suite.log build/test-suite.log
find build-asan build -name '*.trs' -delete 2>/dev/null
step "build with sanitizers" tools/build.sh build-asan --enable-werror --enable-sanitizers
[ -f build-asan/Makefile ] && { make -s -C build-asan check-unit >/dev/null 2>&1 ||
    cat build-asan/test-suite.log; }
step "build" tools/build.sh build --enable-werror
[ -f build/Makefile ] && { make -s -C build -j"$(nproc)" check >/dev/null 2>&1 ||
    cat build/test-suite.log; }
for f in tests/fuzz/run*.sh; do
    [ -e "$f" ] && step "fuzz $(basename "$f" .sh)" sh "$f" "${DQ_FUZZ_SECONDS:-20}"
done
step "make distcheck" sh -c 'make -s -C build distcheck >build/distcheck.log 2>&1 ||
    { tail -50 build/distcheck.log; exit 1; }'

set -- $(tools/count-results.sh build-asan build)
passed=$(($1 + extra_pass))
failed=$(($2 + extra_fail))
grep -h -E '^(FAIL|ERROR|XPASS):' build-asan/test-suite.log build/test-suite.log 2>/dev/null
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
