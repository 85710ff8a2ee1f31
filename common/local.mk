# common/: the library every diffq program links: logging, options, wire protocol, job format, PNG.
noinst_LIBRARIES += libdqcommon.a
libdqcommon_a_SOURCES = \
	common/log.c common/log.h \
	common/config.c common/config.h \
	common/job.c common/job.h common/job_wire.c common/job_wire.h \
	common/png_out.c common/png_out.h \
	common/proto.c common/proto.h \
	common/proto_schema.c common/proto_schema.h \
	common/proto_codec.c common/proto_zmq.c
libdqcommon_a_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS) $(MSGPACK_CFLAGS) \
	$(JANSSON_CFLAGS) $(PNG_CFLAGS) $(CRYPTO_CFLAGS)
# What a program that links libdqcommon.a adds to its LDADD.
DQ_COMMON_LIBS = libdqcommon.a $(CZMQ_LIBS) $(ZMQ_LIBS) $(MSGPACK_LIBS) $(JANSSON_LIBS) \
	$(PNG_LIBS) $(CRYPTO_LIBS)

# Flags for unit tests (cmocka) of any part of the tree.
DQ_UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
DQ_UNIT_LIBS = $(DQ_COMMON_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_job
tests_unit_test_job_SOURCES = tests/unit/test_job.c
tests_unit_test_job_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_job_LDADD = $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_job

check_PROGRAMS += tests/unit/test_png
tests_unit_test_png_SOURCES = tests/unit/test_png.c
tests_unit_test_png_CFLAGS = $(DQ_UNIT_CFLAGS) $(PNG_CFLAGS)
tests_unit_test_png_LDADD = $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_png

# Not a test: `make bench/png_encode && bench/png_encode [SIDE [RGB_FILE]]` times the PNG writer
# beside libpng's defaults (bench/RESULTS.md).
check_PROGRAMS += bench/png_encode
bench_png_encode_SOURCES = bench/png_encode.c
bench_png_encode_CFLAGS = $(AM_CFLAGS) $(PNG_CFLAGS)
bench_png_encode_LDADD = $(DQ_COMMON_LIBS)

# The wire protocol: unit test, fuzz corpus replay (gcc, under the sanitizers) and the seed-corpus
# generator. tests/fuzz/run.sh builds the libFuzzer target with clang.
check_PROGRAMS += tests/unit/test_proto tests/fuzz/fuzz_proto_replay tests/fuzz/fuzz_proto_gencorpus
tests_unit_test_proto_SOURCES = tests/unit/test_proto.c \
	tests/fuzz/proto_samples.c tests/fuzz/proto_samples.h
tests_unit_test_proto_CFLAGS = $(DQ_UNIT_CFLAGS) $(CZMQ_CFLAGS) $(MSGPACK_CFLAGS)
tests_unit_test_proto_LDADD = $(DQ_UNIT_LIBS)
tests_fuzz_fuzz_proto_replay_SOURCES = tests/fuzz/fuzz_proto.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_proto_replay_CFLAGS = $(AM_CFLAGS) -DFUZZ_CORPUS='"proto"'
tests_fuzz_fuzz_proto_replay_LDADD = $(DQ_COMMON_LIBS)
tests_fuzz_fuzz_proto_gencorpus_SOURCES = tests/fuzz/gen_proto_corpus.c \
	tests/fuzz/proto_samples.c tests/fuzz/proto_samples.h
tests_fuzz_fuzz_proto_gencorpus_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_proto_gencorpus_LDADD = $(DQ_COMMON_LIBS)
DQ_UNIT_TESTS += tests/unit/test_proto tests/fuzz/fuzz_proto_replay
EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/corpus/proto
