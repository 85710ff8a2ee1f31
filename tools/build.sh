#!/bin/sh
# tools/build.sh DIR [CONFIGURE-ARGS...]: configures (once) and builds diffq out of tree in DIR.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
shift
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p "$dir"
cd "$dir"
# Reconfigure when the arguments change, so a directory never mixes two builds' objects.
if [ ! -f Makefile ] || [ "$(cat .dq-configure-args 2>/dev/null)" != "$*" ]; then
    [ -f Makefile ] && make -s distclean >/dev/null 2>&1 || true
    "$top/configure" -q "$@"
    echo "$*" >.dq-configure-args
fi
make -s -j"$(nproc)" >/dev/null
