#!/bin/sh
# tests/integration/node_stop.sh: diffq-node against the scripted broker, scenario "stop"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" stop "$top_builddir/diffq-node"
