#!/bin/sh
# tests/integration/node_basic.sh: diffq-node against the scripted broker, scenario "basic"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" basic "$top_builddir/diffq-node"
