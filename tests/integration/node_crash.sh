#!/bin/sh
# tests/integration/node_crash.sh: diffq-node against the scripted broker, scenario "crash"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" crash "$top_builddir/diffq-node"
