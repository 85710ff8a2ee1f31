#!/bin/sh
# tests/integration/node_engine.sh: diffq-node against the scripted broker, scenario "engine"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" engine "$top_builddir/diffq-node"
