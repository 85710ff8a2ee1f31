# tests/: unit tests (cmocka, TAP output), integration scripts (TAP), fuzz targets.
# DQ_UNIT_CFLAGS and DQ_UNIT_LIBS are defined in common/local.mk for every fragment's tests.

check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_config_LDADD = $(DQ_UNIT_LIBS)

DQ_UNIT_TESTS += tests/unit/test_config
DQ_SCRIPT_TESTS += tests/integration/cli_help.sh

# Other parts register their tests in their own local.mk with DQ_UNIT_TESTS += / DQ_SCRIPT_TESTS +=.
TESTS += $(DQ_UNIT_TESTS) $(DQ_SCRIPT_TESTS)
EXTRA_DIST += $(DQ_SCRIPT_TESTS) tests/integration/lib.sh

# `make check-unit` runs the unit tests alone (CI runs them under the sanitizers).
check-unit:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(DQ_UNIT_TESTS)'
.PHONY: check-unit
