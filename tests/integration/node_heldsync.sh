#!/bin/sh
# tests/integration/node_heldsync.sh: diffq-node against the scripted broker, scenario "heldsync"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" heldsync "$top_builddir/diffq-node"
