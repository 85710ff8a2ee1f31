/* cli/cmd_control.c: the one-request commands: "diffq cancel|pause|resume|retry JOB" and
 * "diffq nodes". Each sends one request and prints the broker's answer. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/config.h"

static const dq_option_t s_options[] = {
    {"broker", 'b', "DIFFQ_BROKER", DQ_OPT_STRING, NULL, "EP",
     "broker endpoint (default " DQ_PROTO_DEFAULT_ENDPOINT ")"},
};

/* Parses the options and, when want_job, the one JOB argument. Returns -1 to go on, else the
 * exit code. */
static int s_parse(dq_config_t *cfg, const char *prog, int argc, char **argv, bool want_job,
                   uint64_t *job) {
    char err[512] = "";
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc == 0 && dq_config_positional_count(cfg) != (want_job ? 1 : 0)) {
        snprintf(err, sizeof err,
                 want_job ? "expected one JOB id (see --help)"
                          : "expected no arguments (see --help)");
        rc = -1;
    } else if (rc == 0 && want_job &&
               dq_client_parse_job(dq_config_positional(cfg, 0), job, err, sizeof err) != 0) {
        rc = -1;
    }
    if (rc < 0) fprintf(stderr, "%s: %s\n", prog, err);
    return rc == 0 ? -1 : rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
}

/* Sends req, prints the answer through a reply of cmd `want`; returns the exit code. */
static int s_run(dq_config_t *cfg, const char *prog, const dq_msg_t *req, dq_cmd_t want) {
    char err[1024] = "";
    dq_client_t *client =
        dq_client_new(dq_client_endpoint(dq_config_str(cfg, "broker")), err, sizeof err);
    dq_msg_t reply = {0};
    int status = DQ_EXIT_FAILED;
    if (!client || dq_client_request(client, req, &reply, true, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
    } else if (reply.cmd != want) {
        dq_client_error_text(&reply, err, sizeof err);
        fprintf(stderr, "%s: %s\n", prog, err);
    } else if (want == DQ_CMD_JOB_OK) {
        printf("job %llu: %s (%llu images affected)\n", (unsigned long long) reply.job_ok.job,
               dq_proto_job_state_name((int) reply.job_ok.state),
               (unsigned long long) reply.job_ok.affected);
        status = DQ_EXIT_OK;
    } else {
        dq_cli_print_nodes(reply.nodes_reply.nodes, reply.nodes_reply.n_nodes);
        status = DQ_EXIT_OK;
    }
    dq_msg_clear(&reply);
    dq_client_destroy(&client);
    return status;
}

static int s_job_action(int argc, char **argv, dq_cmd_t cmd, const char *prog, const char *about) {
    dq_config_t *cfg = dq_config_new(prog, "[OPTIONS] JOB", about, s_options,
                                     sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_EXIT_FAILED;
    dq_msg_t req = {.cmd = cmd};
    int status = s_parse(cfg, prog, argc, argv, true, &req.job.job);
    if (status < 0) status = s_run(cfg, prog, &req, DQ_CMD_JOB_OK);
    dq_config_destroy(&cfg);
    return status;
}

int dq_cmd_cancel(int argc, char **argv) {
    return s_job_action(
        argc, argv, DQ_CMD_CANCEL, "diffq cancel",
        "Cancels JOB: nothing more of it is rendered; images already written stay.");
}

int dq_cmd_pause(int argc, char **argv) {
    return s_job_action(argc, argv, DQ_CMD_PAUSE, "diffq pause",
                        "Pauses JOB: no new shards start; running ones finish.");
}

int dq_cmd_resume(int argc, char **argv) {
    return s_job_action(argc, argv, DQ_CMD_RESUME, "diffq resume", "Resumes a paused JOB.");
}

int dq_cmd_retry(int argc, char **argv) {
    return s_job_action(argc, argv, DQ_CMD_RETRY, "diffq retry",
                        "Queues JOB's failed images again, with a fresh attempt count.");
}

int dq_cmd_nodes(int argc, char **argv) {
    const char *prog = "diffq nodes";
    dq_config_t *cfg = dq_config_new(prog, "[OPTIONS]",
                                     "Lists the broker's nodes: ranks, batch slots, models and "
                                     "the shards they run.",
                                     s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_EXIT_FAILED;
    int status = s_parse(cfg, prog, argc, argv, false, NULL);
    dq_msg_t req = {.cmd = DQ_CMD_NODES};
    if (status < 0) status = s_run(cfg, prog, &req, DQ_CMD_NODES_REPLY);
    dq_config_destroy(&cfg);
    return status;
}
