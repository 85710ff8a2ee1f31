# common/: the library every diffq program links: logging, options, wire protocol, job format, PNG.
noinst_LIBRARIES += libdqcommon.a
libdqcommon_a_SOURCES = \
	common/log.c common/log.h \
	common/config.c common/config.h \
	common/job.c common/job.h \
	common/png_out.c common/png_out.h
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
