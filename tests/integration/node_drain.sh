#!/bin/sh
# tests/integration/node_drain.sh: diffq-node against the scripted broker, scenario "drain"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" drain "$top_builddir/diffq-node"
