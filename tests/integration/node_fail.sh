#!/bin/sh
# tests/integration/node_fail.sh: diffq-node against the scripted broker, scenario "fail"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" fail "$top_builddir/diffq-node"
