#!/bin/sh
# tests/integration/node_lease.sh: diffq-node against the scripted broker, scenario "lease"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" lease "$top_builddir/diffq-node"
