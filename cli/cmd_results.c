/* cli/cmd_results.c: "diffq results JOB --to DIR": copies a job's images from the broker, page
 * by page (RESULTS_LIST) and one image at a time (RESULT_FETCH), each written atomically. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/png_out.h"

#include "cli/client.h"
#include "cli/commands.h"
#include "common/config.h"

static const dq_option_t s_options[] = {
    {"broker", 'b', "DIFFQ_BROKER", DQ_OPT_STRING, NULL, "EP",
     "broker endpoint (default " DQ_PROTO_DEFAULT_ENDPOINT ")"},
    {"to", 't', NULL, DQ_OPT_STRING, NULL, "DIR", "folder to write the PNG files into (required)"},
};

/* Fetches one image into dir. Returns 0, or -1 with err. */
static int s_fetch(dq_client_t *client, uint64_t job, const dq_result_item_t *it, const char *dir,
                   char *err, size_t errlen) {
    if (strchr(it->path, '/') || it->path[0] == '.') {
        snprintf(err, errlen, "broker sent an unsafe file name '%s'", it->path);
        return -1;
    }
    dq_msg_t req = {.cmd = DQ_CMD_RESULT_FETCH}, reply;
    req.result_fetch =
        (dq_msg_result_fetch_t){.job = job, .line = it->line, .image_index = it->image_index};
    if (dq_client_request(client, &req, &reply, true, err, errlen) != 0) return -1;
    int rc = -1;
    if (reply.cmd != DQ_CMD_RESULT_DATA) {
        dq_client_error_text(&reply, err, errlen);
    } else {
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, it->path);
        rc =
            dq_png_save_bytes(path, reply.result_data.png, reply.result_data.png_size, err, errlen);
    }
    dq_msg_clear(&reply);
    return rc;
}

int dq_cmd_results(int argc, char **argv) {
    char err[1024] = "";
    const char *prog = "diffq results";
    dq_config_t *cfg = dq_config_new(prog, "[OPTIONS] --to DIR JOB",
                                     "Copies every image JOB has so far into DIR, through the "
                                     "broker (no shared filesystem needed).",
                                     s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_EXIT_FAILED;
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    uint64_t job = 0;
    const char *dir = dq_config_str(cfg, "to");
    if (rc == 0 && (dq_config_positional_count(cfg) != 1 || !dir)) {
        snprintf(err, sizeof err, "expected --to DIR and one JOB id (see --help)");
        rc = -1;
    } else if (rc == 0 &&
               dq_client_parse_job(dq_config_positional(cfg, 0), &job, err, sizeof err) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "%s: %s\n", prog, err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot create %s: %s\n", prog, dir, strerror(errno));
        dq_config_destroy(&cfg);
        return DQ_EXIT_FAILED;
    }
    dq_client_t *client =
        dq_client_new(dq_client_endpoint(dq_config_str(cfg, "broker")), err, sizeof err);
    int status = client ? DQ_EXIT_OK : DQ_EXIT_FAILED;
    uint64_t cursor = 0, copied = 0;
    while (client && status == DQ_EXIT_OK) {
        dq_msg_t req = {.cmd = DQ_CMD_RESULTS_LIST}, reply;
        req.results_list = (dq_msg_results_list_t){.job = job, .cursor = cursor, .limit = 256};
        if (dq_client_request(client, &req, &reply, true, err, sizeof err) != 0) {
            status = DQ_EXIT_FAILED;
            break;
        }
        if (reply.cmd != DQ_CMD_RESULTS_LIST_REPLY) {
            dq_client_error_text(&reply, err, sizeof err);
            dq_msg_clear(&reply);
            status = DQ_EXIT_FAILED;
            break;
        }
        for (uint32_t i = 0; i < reply.results_list_reply.n_items && status == DQ_EXIT_OK; i++) {
            if (s_fetch(client, job, &reply.results_list_reply.items[i], dir, err, sizeof err))
                status = DQ_EXIT_FAILED;
            else
                copied++;
        }
        cursor = reply.results_list_reply.next;
        dq_msg_clear(&reply);
        if (cursor == 0) break;
    }
    if (status != DQ_EXIT_OK)
        fprintf(stderr, "%s: %s\n", prog, err);
    else
        printf("%llu images copied to %s\n", (unsigned long long) copied, dir);
    dq_client_destroy(&client);
    dq_config_destroy(&cfg);
    return status;
}
