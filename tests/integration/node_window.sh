#!/bin/sh
# tests/integration/node_window.sh: diffq-node against the scripted broker, scenario "window":
# the result window's chunk limit (tests/integration/node_fake_broker.c prints the TAP).
exec "$top_builddir/tests/integration/node_fake_broker" window "$top_builddir/diffq-node"
