# node/: diffq-node, one daemon per machine running one rank per GPU (issue: the cluster queue).
# libdqnode.a holds everything but main(), so unit tests link the parts they test.
noinst_LIBRARIES += libdqnode.a
libdqnode_a_SOURCES = \
	node/backend.c node/backend.h node/backend_engine.c node/backend_null.c \
	node/flow.c node/flow.h \
	node/node.c node/node.h \
	node/png.c node/png.h \
	node/rank.c node/rank.h \
	node/rankio.c node/rankio.h \
	node/setup.c node/setup.h \
	node/supervise.c node/supervise.h
libdqnode_a_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS) $(JANSSON_CFLAGS)
if HAVE_CUDA
libdqnode_a_CFLAGS += $(CUDA_CPPFLAGS)
endif

sbin_PROGRAMS += diffq-node
diffq_node_SOURCES = node/main.c
diffq_node_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS)
diffq_node_LDADD = libdqnode.a $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)

# Tests: unit tests of the parts, and integration scenarios against a scripted fake broker.
check_PROGRAMS += tests/unit/test_node_rankio tests/unit/test_node_flow \
	tests/unit/test_node_backend tests/unit/test_node_setup tests/integration/node_fake_broker
tests_unit_test_node_rankio_SOURCES = tests/unit/test_node_rankio.c
tests_unit_test_node_rankio_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_node_rankio_LDADD = libdqnode.a $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
tests_unit_test_node_flow_SOURCES = tests/unit/test_node_flow.c
tests_unit_test_node_flow_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_node_flow_LDADD = libdqnode.a $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
tests_unit_test_node_backend_SOURCES = tests/unit/test_node_backend.c
tests_unit_test_node_backend_CFLAGS = $(DQ_UNIT_CFLAGS) $(PNG_CFLAGS)
tests_unit_test_node_backend_LDADD = libdqnode.a $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
tests_unit_test_node_setup_SOURCES = tests/unit/test_node_setup.c
tests_unit_test_node_setup_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_node_setup_LDADD = libdqnode.a $(DQ_ENGINE_LIBS) $(DQ_UNIT_LIBS)
tests_integration_node_fake_broker_SOURCES = tests/integration/node_fake_broker.c
tests_integration_node_fake_broker_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS) $(PNG_CFLAGS)
tests_integration_node_fake_broker_LDADD = libdqnode.a $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
DQ_UNIT_TESTS += tests/unit/test_node_rankio tests/unit/test_node_flow tests/unit/test_node_backend \
	tests/unit/test_node_setup
DQ_SCRIPT_TESTS += tests/integration/node_usage.sh tests/integration/node_basic.sh \
	tests/integration/node_stop.sh tests/integration/node_fail.sh \
	tests/integration/node_crash.sh tests/integration/node_reconnect.sh \
	tests/integration/node_drain.sh tests/integration/node_death.sh \
	tests/integration/node_ranks.sh tests/integration/node_handback.sh \
	tests/integration/node_draintimeout.sh tests/integration/node_lease.sh \
	tests/integration/node_engine.sh
DQ_SCRIPT_TESTS += tests/integration/node_threads.sh tests/integration/node_window.sh
# Held-shard sync (protocol minor 5): lost ASSIGNs named, late and repeated ones dropped.
DQ_SCRIPT_TESTS += tests/integration/node_heldsync.sh
# SHARD_FAILED sent 3 times (at once, then with 2 HEARTBEATs), the rest after a reconnect's READY.
DQ_SCRIPT_TESTS += tests/integration/node_failrep.sh
