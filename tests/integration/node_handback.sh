#!/bin/sh
# tests/integration/node_handback.sh: diffq-node against the scripted broker, scenario "handback"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" handback "$top_builddir/diffq-node"
