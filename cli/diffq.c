/* cli/diffq.c: the diffq command: finds the subcommand and hands it the rest of the arguments. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"
#ifdef DQ_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

/* Subcommands, in the order "diffq --help" lists them. */
static const dq_command_t s_commands[] = {
    {"submit", dq_cmd_submit, "queue a JSONL job file on the broker; prints the job id"},
    {"status", dq_cmd_status, "jobs (counts, rate, ETA) and nodes, once or --watch"},
    {"wait", dq_cmd_wait, "follow a job until it ends; non-zero if any image failed"},
    {"cancel", dq_cmd_cancel, "cancel a job"},
    {"pause", dq_cmd_pause, "pause a job (running shards finish)"},
    {"resume", dq_cmd_resume, "resume a paused job"},
    {"retry", dq_cmd_retry, "queue a job's failed images again"},
    {"nodes", dq_cmd_nodes, "list the broker's nodes"},
    {"results", dq_cmd_results, "copy a job's images from the broker into a folder"},
    {"render", dq_cmd_render, "render one prompt on this machine, without a broker"},
    {"tokenize", dq_cmd_tokenize, "print the CLIP token ids of prompts (one JSON array each)"},
    {"model", dq_cmd_model, "write a random-weight model folder, or describe a model"},
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

/* Prints the version, whether the CUDA backend is built, and the GPUs it sees. */
static void s_print_version(void) {
#ifdef DQ_HAVE_CUDA
    char err[256] = "";
    int count = dq_cuda_device_count(err, sizeof err);
    printf("diffq %s (CUDA backend: built, %d device%s visible)\n", PACKAGE_VERSION, count,
           count == 1 ? "" : "s");
    if (err[0]) printf("  %s\n", err);
    for (int i = 0; i < count; i++) {
        dq_cuda_device_info_t info;
        if (dq_cuda_device_info(i, &info, err, sizeof err) == 0)
            printf("  gpu %d: %s, sm_%d%d, %zu MiB\n", i, info.name, info.sm_major, info.sm_minor,
                   info.total_memory >> 20);
    }
#else
    printf("diffq %s (CUDA backend: not built)\n", PACKAGE_VERSION);
#endif
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
