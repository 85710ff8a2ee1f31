#!/bin/sh
# tools/install-deps.sh: installs the Debian packages diffq needs to build and test (run as root).
# Installs only what is missing, so a prepared machine needs no network.
set -eu
packages="build-essential autoconf automake pkg-config git ca-certificates
  libzmq3-dev libczmq-dev libmsgpack-dev libpng-dev zlib1g-dev libjansson-dev libsqlite3-dev
  libopenblas-openmp-dev libutf8proc-dev libssl-dev libcmocka-dev
  clang libclang-rt-dev python3"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
