#!/bin/sh
# tests/integration/node_draintimeout.sh: diffq-node against the scripted broker, scenario "draintimeout"
# (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" draintimeout "$top_builddir/diffq-node"
