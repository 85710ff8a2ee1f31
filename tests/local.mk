# tests/: unit tests (cmocka, TAP output), integration scripts (TAP), fuzz targets.
# DQ_UNIT_CFLAGS and DQ_UNIT_LIBS are defined in common/local.mk for every fragment's tests.

check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_config_LDADD = $(DQ_UNIT_LIBS)

DQ_UNIT_TESTS += tests/unit/test_config

check_PROGRAMS += tests/unit/test_log
tests_unit_test_log_SOURCES = tests/unit/test_log.c
tests_unit_test_log_CFLAGS = $(DQ_UNIT_CFLAGS)
tests_unit_test_log_LDADD = $(DQ_UNIT_LIBS)
DQ_UNIT_TESTS += tests/unit/test_log
DQ_SCRIPT_TESTS += tests/integration/cli_help.sh

# Other parts register their tests in their own local.mk with DQ_UNIT_TESTS += / DQ_SCRIPT_TESTS +=.
TESTS += $(DQ_UNIT_TESTS) $(DQ_SCRIPT_TESTS)
EXTRA_DIST += $(DQ_SCRIPT_TESTS) tests/integration/lib.sh

# `make check-unit` runs the unit tests alone (CI runs them under the sanitizers).
check-unit:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(DQ_UNIT_TESTS)'
.PHONY: check-unit

# Reference fixtures (tests/fixtures/, made by tests/reference/generate.py with PyTorch; CI only reads them).
EXTRA_DIST += tests/fixtures \
	tests/reference/README.md tests/reference/requirements.txt tests/reference/generate.py \
	tests/reference/ref_common.py tests/reference/clip_vocab.py tests/reference/tiny_model.py \
	tests/reference/ldm_keys.py tests/reference/fx_tokenizer.py tests/reference/fx_text_encoder.py \
	tests/reference/fx_vae.py tests/reference/fx_unet.py tests/reference/fx_latents.py \
	tests/reference/fx_schedulers.py tests/reference/fx_pipeline.py

# Fault tests (issue #5): a node killed or stopped mid-shard, and a lossy network between nodes
# and broker (lossy_proxy drops, delays, duplicates and truncates messages).
check_PROGRAMS += tests/integration/lossy_proxy
tests_integration_lossy_proxy_SOURCES = tests/integration/lossy_proxy.c
tests_integration_lossy_proxy_CFLAGS = $(AM_CFLAGS) $(CZMQ_CFLAGS) $(ZMQ_CFLAGS)
tests_integration_lossy_proxy_LDADD = $(DQ_COMMON_LIBS)
DQ_SCRIPT_TESTS += tests/integration/broker_node_kill.sh tests/integration/broker_node_stop.sh \
	tests/integration/broker_lossy.sh
# Model-aware leasing: the real broker and nodes (null backend), jobs of served and unserved models.
DQ_SCRIPT_TESTS += tests/integration/broker_models.sh
# Request ids on the wire: output names, results.jsonl and PNG metadata with the real node.
DQ_SCRIPT_TESTS += tests/integration/broker_ids.sh
