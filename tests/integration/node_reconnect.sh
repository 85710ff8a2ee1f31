#!/bin/sh
# tests/integration/node_reconnect.sh: diffq-node against the scripted broker, scenario "reconnect"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" reconnect "$top_builddir/diffq-node"
