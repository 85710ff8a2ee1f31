#!/bin/sh
# tests/integration/node_ranks.sh: diffq-node against the scripted broker, scenario "ranks"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" ranks "$top_builddir/diffq-node"
