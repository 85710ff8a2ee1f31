/* cli/commands.h: the diffq subcommands. Each lives in its own cli/cmd_<name>.c file. */
#ifndef DQ_CLI_COMMANDS_H
#define DQ_CLI_COMMANDS_H

/* A subcommand's entry point: argv[0] is the subcommand's name. Returns the process exit code:
 * 0 success, 1 the work failed, 2 bad usage or input. */
typedef int (*dq_command_fn)(int argc, char **argv);

typedef struct {
    const char *name;    /* as typed after "diffq" */
    dq_command_fn run;
    const char *summary; /* one line for "diffq --help" */
} dq_command_t;

/* diffq model init|info: random-weight model folders and model descriptions (cli/cmd_model.c). */
int dq_cmd_model(int argc, char **argv);

/* Exit codes shared by every subcommand. */
enum { DQ_EXIT_OK = 0, DQ_EXIT_FAILED = 1, DQ_EXIT_USAGE = 2 };

/* diffq tokenize [--model DIR] TEXT...: CLIP token ids of each text (cli/cmd_tokenize.c). */
int dq_cmd_tokenize(int argc, char **argv);
int dq_cmd_render(int argc, char **argv);

/* The broker client commands (cli/client.c holds their connection code). */
/* diffq submit [--model M] [--out DIR] [--priority N] [--name N] [--wait] FILE|- (cmd_submit.c). */
int dq_cmd_submit(int argc, char **argv);
/* diffq status [JOB] [--json] [--watch] (cmd_status.c). */
int dq_cmd_status(int argc, char **argv);
/* diffq wait JOB (cmd_wait.c). */
int dq_cmd_wait(int argc, char **argv);
/* diffq cancel|pause|resume|retry JOB, diffq nodes (cmd_control.c). */
int dq_cmd_cancel(int argc, char **argv);
int dq_cmd_pause(int argc, char **argv);
int dq_cmd_resume(int argc, char **argv);
int dq_cmd_retry(int argc, char **argv);
int dq_cmd_nodes(int argc, char **argv);
/* diffq results JOB --to DIR (cmd_results.c). */
int dq_cmd_results(int argc, char **argv);

#endif
