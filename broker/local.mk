# broker/: diffq-broker, the durable job queue (issue: the cluster queue).

# The queue store: jobs, shards, leases, results in SQLite (WAL). No networking; the broker
# program links it. docs/queue-store.md describes the schema and state machines.
noinst_LIBRARIES += libdqbroker.a
libdqbroker_a_SOURCES = \
	broker/store.c broker/store.h broker/store_int.h \
	broker/store_schema.c \
	broker/store_submit.c \
	broker/store_lease.c \
	broker/store_split.c \
	broker/store_result.c \
	broker/store_admin.c \
	broker/store_serve.c
libdqbroker_a_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
# What a program that links the store adds to its LDADD (before DQ_COMMON_LIBS).
DQ_BROKER_LIBS = libdqbroker.a $(SQLITE_LIBS)

check_PROGRAMS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c tests/unit/test_store_util.c \
	tests/unit/test_store_util.h
tests_unit_test_store_CFLAGS = $(DQ_UNIT_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_LDADD = $(DQ_BROKER_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_store

# Not a test: `make bench/store_bench && bench/store_bench DIR` measures commit_result rates.
check_PROGRAMS += bench/store_bench
bench_store_bench_SOURCES = bench/store_bench.c
bench_store_bench_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
bench_store_bench_LDADD = $(DQ_BROKER_LIBS) $(DQ_COMMON_LIBS)

check_PROGRAMS += tests/unit/test_store_sched
tests_unit_test_store_sched_SOURCES = tests/unit/test_store_sched.c tests/unit/test_store_util.c \
	tests/unit/test_store_util.h
tests_unit_test_store_sched_CFLAGS = $(DQ_UNIT_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_sched_LDADD = $(DQ_BROKER_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_store_sched

check_PROGRAMS += tests/unit/test_store_serve
tests_unit_test_store_serve_SOURCES = tests/unit/test_store_serve.c tests/unit/test_store_util.c \
	tests/unit/test_store_util.h
tests_unit_test_store_serve_CFLAGS = $(DQ_UNIT_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_serve_LDADD = $(DQ_BROKER_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_store_serve

check_PROGRAMS += tests/unit/test_store_split
tests_unit_test_store_split_SOURCES = tests/unit/test_store_split.c tests/unit/test_store_util.c \
	tests/unit/test_store_util.h
tests_unit_test_store_split_CFLAGS = $(DQ_UNIT_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_split_LDADD = $(DQ_BROKER_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_store_split

check_PROGRAMS += tests/unit/test_store_durable
tests_unit_test_store_durable_SOURCES = tests/unit/test_store_durable.c \
	tests/unit/test_store_util.c tests/unit/test_store_util.h
tests_unit_test_store_durable_CFLAGS = $(DQ_UNIT_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_durable_LDADD = $(DQ_BROKER_LIBS) $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_store_durable

# The daemon: options and signals (main.c), the event loop and socket (server.c), nodes, clients,
# result files and manifests.
sbin_PROGRAMS += diffq-broker
diffq_broker_SOURCES = broker/main.c broker/server.h broker/server_int.h broker/server.c \
	broker/server_node.c broker/server_client.c broker/server_result.c \
	broker/file_batch.c broker/file_batch.h
diffq_broker_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
diffq_broker_LDADD = $(DQ_BROKER_LIBS) $(DQ_COMMON_LIBS) -lpthread

# Integration tests: real broker and CLI processes on loopback with fake nodes (test helpers).
check_PROGRAMS += tests/integration/fake_node tests/integration/junk_sender \
	tests/integration/store_check
tests_integration_fake_node_SOURCES = tests/integration/fake_node.c
tests_integration_fake_node_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS)
tests_integration_fake_node_LDADD = $(DQ_COMMON_LIBS)
tests_integration_junk_sender_SOURCES = tests/integration/junk_sender.c
tests_integration_junk_sender_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS)
tests_integration_junk_sender_LDADD = $(DQ_COMMON_LIBS)
tests_integration_store_check_SOURCES = tests/integration/store_check.c
tests_integration_store_check_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
tests_integration_store_check_LDADD = $(DQ_BROKER_LIBS) $(DQ_COMMON_LIBS)
DQ_SCRIPT_TESTS += tests/integration/broker_basic.sh tests/integration/broker_restart.sh \
	tests/integration/broker_silent.sh tests/integration/broker_junk.sh tests/integration/broker_badjob.sh \
	tests/integration/broker_writefail.sh tests/integration/broker_upload.sh \
	tests/integration/broker_control.sh tests/integration/broker_e2e.sh \
	tests/integration/broker_retry.sh tests/integration/broker_e2e300.sh
DQ_SCRIPT_TESTS += tests/integration/broker_diskfull.sh
# Shards cut to each node's batch (diffq-node --max-batch, READY bimg).
DQ_SCRIPT_TESTS += tests/integration/broker_capacity.sh
# A READY repeated on a live connection keeps the node's shards (fake_node --ready-again-after).
DQ_SCRIPT_TESTS += tests/integration/broker_reready.sh
# Reconnect and restart told apart by READY.boot (fake_node --leave-on-assign, --restart-after).
DQ_SCRIPT_TESTS += tests/integration/broker_reconnect.sh tests/integration/broker_node_restart.sh
# A SHARD_FAILED repeated (or its first copy lost) counts one failed attempt (fake_node --fail-*).
DQ_SCRIPT_TESTS += tests/integration/broker_failrep.sh
DQ_SCRIPT_TESTS += tests/integration/broker_lossy_fail.sh
EXTRA_DIST += tests/integration/broker_lib.sh
# Compares two PNGs' pixels (the end-to-end test checks the broker's images against diffq render).
check_PROGRAMS += tests/integration/png_pixels
tests_integration_png_pixels_SOURCES = tests/integration/png_pixels.c
tests_integration_png_pixels_CFLAGS = $(AM_CFLAGS) $(PNG_CFLAGS)
tests_integration_png_pixels_LDADD = $(PNG_LIBS)

# The one stored form of a request: the wire form to the job form and back (common/job_wire.c).
check_PROGRAMS += tests/unit/test_job_wire
tests_unit_test_job_wire_SOURCES = tests/unit/test_job_wire.c
tests_unit_test_job_wire_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_job_wire_LDADD = $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_job_wire

check_PROGRAMS += tests/unit/test_file_batch
tests_unit_test_file_batch_SOURCES = tests/unit/test_file_batch.c broker/file_batch.c
tests_unit_test_file_batch_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_file_batch_LDADD = $(DQ_UNIT_LIBS) -lpthread
DQ_UNIT_TESTS += tests/unit/test_file_batch
