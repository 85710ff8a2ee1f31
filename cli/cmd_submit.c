/* cli/cmd_submit.c: "diffq submit": validates a JSONL job file locally, then uploads it to the
 * broker in chunks (SUBMIT_BEGIN, SUBMIT_CHUNK..., SUBMIT_COMMIT) and prints the job id. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/job.h"
#include "common/job_wire.h"

#include "cli/client.h"
#include "cli/commands.h"
#include "common/config.h"

static const dq_option_t s_options[] = {
    {"broker", 'b', "DIFFQ_BROKER", DQ_OPT_STRING, NULL, "EP",
     "broker endpoint (default " DQ_PROTO_DEFAULT_ENDPOINT ")"},
    {"model", 'm', "DIFFQ_MODEL", DQ_OPT_STRING, NULL, "NAME|PATH",
     "model every request is rendered with, as the nodes name it (required)"},
    {"out", 'o', NULL, DQ_OPT_STRING, NULL, "DIR",
     "output folder on the broker's machine (default: STATE/out/<upload> there)"},
    {"priority", 'p', NULL, DQ_OPT_INT, "0", "N", "higher runs first, -1000..1000"},
    {"name", 'n', NULL, DQ_OPT_STRING, NULL, "NAME",
     "job name in listings (default: the file name)"},
    {"wait", 'w', NULL, DQ_OPT_BOOL, NULL, NULL, "wait for the job to finish, as 'diffq wait'"},
};

/* What the wire cannot carry is an error of the file too, found before anything is sent. */
static size_t s_check_wire(const char *path, const dq_jobfile_t *file) {
    size_t bad = 0;
    for (size_t i = 0; i < dq_jobfile_count(file); i++) {
        const dq_request_t *r = dq_jobfile_get(file, i);
        size_t p = strlen(r->prompt), n = strlen(r->negative_prompt);
        if (p > DQ_PROTO_MAX_PROMPT || n > DQ_PROTO_MAX_PROMPT) {
            fprintf(stderr, "%s:%zu: %s is %zu bytes; the broker accepts at most %d\n", path,
                    r->line, p > DQ_PROTO_MAX_PROMPT ? "prompt" : "negative_prompt",
                    p > DQ_PROTO_MAX_PROMPT ? p : n, DQ_PROTO_MAX_PROMPT);
            bad++;
        }
    }
    return bad;
}

/* Uploads the file; returns 0 with the job id, or -1 with err. */
static int s_upload(dq_client_t *client, const dq_jobfile_t *file, const dq_config_t *cfg,
                    const char *name, const char *out, uint64_t *job, char *err, size_t errlen) {
    dq_msg_t req = {.cmd = DQ_CMD_SUBMIT_BEGIN}, reply;
    size_t count = dq_jobfile_count(file);
    snprintf(req.submit_begin.name, sizeof req.submit_begin.name, "%s", name);
    snprintf(req.submit_begin.model, sizeof req.submit_begin.model, "%s",
             dq_config_str(cfg, "model"));
    req.submit_begin.out_dir = (char *) out; /* borrowed for encoding */
    req.submit_begin.priority = (int32_t) dq_config_int(cfg, "priority");
    req.submit_begin.requests = count;
    if (dq_client_request(client, &req, &reply, true, err, errlen) != 0) return -1;
    if (reply.cmd != DQ_CMD_SUBMIT_READY) {
        dq_client_error_text(&reply, err, errlen);
        dq_msg_clear(&reply);
        return -1;
    }
    uint64_t upload = reply.submit_ready.upload;
    uint32_t max = reply.submit_ready.max_requests;
    dq_msg_clear(&reply);
    dq_wire_request_t wire[DQ_PROTO_MAX_REQUESTS];
    uint32_t seq = 0;
    for (size_t i = 0; i < count; seq++) {
        dq_msg_t chunk = {.cmd = DQ_CMD_SUBMIT_CHUNK};
        chunk.submit_chunk.upload = upload;
        chunk.submit_chunk.seq = seq;
        chunk.submit_chunk.requests = wire; /* borrowed for encoding */
        while (i < count && chunk.submit_chunk.n_requests < max) {
            const dq_request_t *r = dq_jobfile_get(file, i++);
            dq_request_to_wire(r, 0, (uint32_t) r->num_images_per_prompt,
                               &wire[chunk.submit_chunk.n_requests++]);
        }
        if (dq_client_request(client, &chunk, &reply, true, err, errlen) != 0) return -1;
        if (reply.cmd != DQ_CMD_SUBMIT_CHUNK_OK) {
            dq_client_error_text(&reply, err, errlen);
            dq_msg_clear(&reply);
            return -1;
        }
        dq_msg_clear(&reply);
    }
    dq_msg_t commit = {.cmd = DQ_CMD_SUBMIT_COMMIT};
    commit.submit_commit =
        (dq_msg_submit_commit_t){.upload = upload, .chunks = seq, .requests = count};
    if (dq_client_request(client, &commit, &reply, true, err, errlen) != 0) return -1;
    if (reply.cmd != DQ_CMD_SUBMIT_OK) {
        dq_client_error_text(&reply, err, errlen);
        dq_msg_clear(&reply);
        return -1;
    }
    *job = reply.submit_ok.job;
    dq_msg_clear(&reply);
    return 0;
}

int dq_cmd_submit(int argc, char **argv) {
    char err[1024] = "";
    dq_config_t *cfg = dq_config_new(
        "diffq submit", "[OPTIONS] FILE|-",
        "Checks every line of the JSONL job FILE (- reads standard input); a file with errors is\n"
        "rejected with all of them and nothing is sent. Otherwise queues it on the broker and\n"
        "prints the job id once the broker has stored it durably.",
        s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_EXIT_FAILED;
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "diffq submit: %s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
    }
    const char *bad = NULL;
    long prio = dq_config_int(cfg, "priority");
    if (dq_config_positional_count(cfg) != 1)
        bad = "expected one job FILE, or - for standard input";
    else if (!dq_config_str(cfg, "model") || !*dq_config_str(cfg, "model"))
        bad = "no model: give --model NAME|PATH or set DIFFQ_MODEL";
    else if (strlen(dq_config_str(cfg, "model")) > DQ_PROTO_MAX_NAME)
        bad = "--model: at most 128 bytes";
    else if (prio < -1000 || prio > 1000)
        bad = "--priority: expected -1000..1000";
    if (bad) {
        fprintf(stderr, "diffq submit: %s (see --help)\n", bad);
        dq_config_destroy(&cfg);
        return DQ_EXIT_USAGE;
    }
    const char *path = dq_config_positional(cfg, 0);
    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    dq_errlist_t *errors = dq_errlist_new(DQ_ERRLIST_DEFAULT_CAP);
    dq_jobfile_t *file = errors ? dq_jobfile_read(path, &limits, errors) : NULL;
    if (!file || s_check_wire(path, file) > 0) {
        if (errors) dq_errlist_print(errors, stderr);
        fprintf(stderr, "diffq submit: %s rejected, nothing was queued\n", path);
        dq_jobfile_destroy(&file);
        dq_errlist_destroy(&errors);
        dq_config_destroy(&cfg);
        return DQ_EXIT_USAGE;
    }
    dq_errlist_destroy(&errors);

    char out[PATH_MAX + 2] = "", cwd[PATH_MAX];
    const char *o = dq_config_str(cfg, "out");
    if (o && *o) {
        if (o[0] != '/' && getcwd(cwd, sizeof cwd))
            snprintf(out, sizeof out, "%s/%s", cwd, o);
        else
            snprintf(out, sizeof out, "%s", o);
    }
    const char *name = dq_config_str(cfg, "name");
    if (!name) {
        const char *slash = strrchr(path, '/');
        name = strcmp(path, "-") == 0 ? "stdin" : slash ? slash + 1 : path;
    }
    int status = DQ_EXIT_OK;
    uint64_t job = 0;
    dq_client_t *client =
        dq_client_new(dq_client_endpoint(dq_config_str(cfg, "broker")), err, sizeof err);
    if (!client || s_upload(client, file, cfg, name, out, &job, err, sizeof err) != 0) {
        fprintf(stderr, "diffq submit: %s\n", err);
        status = DQ_EXIT_FAILED;
    } else {
        printf("%llu\n", (unsigned long long) job);
        fflush(stdout);
        if (dq_config_bool(cfg, "wait")) status = dq_client_wait_job(client, job);
    }
    dq_client_destroy(&client);
    dq_jobfile_destroy(&file);
    dq_config_destroy(&cfg);
    return status;
}
