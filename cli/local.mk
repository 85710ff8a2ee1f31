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
# Broker clients: connection code, then one file per command (cancel/pause/resume/retry/nodes share
# cmd_control.c: each is one request and one printed answer).
diffq_SOURCES += cli/client.c cli/client.h cli/cmd_submit.c cli/cmd_status.c cli/cmd_wait.c \
	cli/cmd_control.c cli/cmd_results.c
diffq_CFLAGS += $(CZMQ_CFLAGS) $(ZMQ_CFLAGS)
DQ_SCRIPT_TESTS += tests/integration/cli_render.sh
DQ_SCRIPT_TESTS += tests/integration/cli_status_watch.sh
