#!/bin/sh
# tests/integration/node_death.sh: diffq-node against the scripted broker, scenario "death"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" death "$top_builddir/diffq-node"
