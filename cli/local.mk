# cli/: the diffq command-line program.
bin_PROGRAMS += diffq
diffq_SOURCES = cli/diffq.c cli/commands.h
diffq_CFLAGS = $(AM_CFLAGS)
diffq_LDADD = $(DQ_ENGINE_LIBS) $(DQ_COMMON_LIBS)
diffq_SOURCES += cli/cmd_tokenize.c
diffq_SOURCES += cli/cmd_model.c
diffq_SOURCES += cli/cmd_render.c
diffq_CFLAGS += $(JANSSON_CFLAGS)
DQ_SCRIPT_TESTS += tests/integration/model_cli.sh
DQ_SCRIPT_TESTS += tests/integration/cli_render.sh
