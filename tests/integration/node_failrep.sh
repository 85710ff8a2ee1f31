#!/bin/sh
# tests/integration/node_failrep.sh: diffq-node against the scripted broker, scenario "failrep":
# each SHARD_FAILED goes out 3 times (at once, then with the next 2 HEARTBEATs), and repeats still
# due go out right after READY on a new connection (tests/integration/node_fake_broker.c).
exec "$top_builddir/tests/integration/node_fake_broker" failrep "$top_builddir/diffq-node"
