/* cli/diffq.c: the diffq command: finds the subcommand and hands it the rest of the arguments. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"

/* Subcommands, in the order "diffq --help" lists them. */
static const dq_command_t s_commands[] = {
    {NULL, NULL, NULL},
};

static void s_print_help(void) {
    printf("Usage: diffq COMMAND [OPTIONS] [ARGS]\n\n"
           "diffq renders text-to-image jobs on a cluster: submit JSONL prompt files to a\n"
           "diffq-broker, watch them, and collect one PNG per image.\n\nCommands:\n");
    for (const dq_command_t *c = s_commands; c->name; c++)
        printf("  %-10s %s\n", c->name, c->summary);
    printf("\nRun 'diffq COMMAND --help' for a command's options. See diffq(1).\n");
}

static void s_print_version(void) {
#ifdef DQ_HAVE_CUDA
    const char *cuda = "yes";
#else
    const char *cuda = "no";
#endif
    printf("diffq %s (CUDA backend: %s)\n", PACKAGE_VERSION, cuda);
}

int main(int argc, char **argv) {
    dq_log_init("diffq", DQ_LOG_WARN, false);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_print_help();
        return argc < 2 ? DQ_EXIT_USAGE : DQ_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        s_print_version();
        return DQ_EXIT_OK;
    }
    for (const dq_command_t *c = s_commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "diffq: unknown command '%s' (see 'diffq --help')\n", argv[1]);
    return DQ_EXIT_USAGE;
}
