/* cli/cmd_wait.c: "diffq wait JOB": follows a job until it ends (progress bar on a terminal,
 * plain lines otherwise); the exit code says whether every image was rendered. */
#include "config.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/config.h"

#define DQ_WAIT_POLL_MS    500    /* status poll period */
#define DQ_WAIT_GIVE_UP_MS 120000 /* broker unreachable this long: give up (a restart is shorter)  \
                                   */

static const dq_option_t s_options[] = {
    {"broker", 'b', "DIFFQ_BROKER", DQ_OPT_STRING, NULL, "EP",
     "broker endpoint (default " DQ_PROTO_DEFAULT_ENDPOINT ")"},
};

static void s_bar(FILE *f, const dq_job_info_t *j, bool tty) {
    uint64_t total = j->queued + j->running + j->done + j->failed;
    char eta[32] = "?";
    if (j->eta_s >= 0) snprintf(eta, sizeof eta, "%.0fs", j->eta_s);
    if (tty) {
        int width = 30, filled = total ? (int) ((double) j->done * width / (double) total) : 0;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(f, "\rjob %llu [%s] %llu/%llu done, %llu failed, %.2f img/s, ETA %s   ",
                (unsigned long long) j->id, bar, (unsigned long long) j->done,
                (unsigned long long) total, (unsigned long long) j->failed, j->images_per_s, eta);
    } else {
        fprintf(f, "job %llu %s: %llu/%llu done, %llu failed, %llu running, %.2f img/s, ETA %s\n",
                (unsigned long long) j->id, dq_proto_job_state_name((int) j->state),
                (unsigned long long) j->done, (unsigned long long) total,
                (unsigned long long) j->failed, (unsigned long long) j->running, j->images_per_s,
                eta);
    }
    fflush(f);
}

int dq_client_wait_job(dq_client_t *self, uint64_t job) {
    FILE *f = stderr;
    bool tty = isatty(fileno(f));
    uint64_t last_done = UINT64_MAX, last_failed = UINT64_MAX;
    int64_t unreachable_since = 0;
    for (;;) {
        char err[512];
        dq_msg_t req = {.cmd = DQ_CMD_STATUS}, reply;
        req.status.job = job;
        if (dq_client_request(self, &req, &reply, true, err, sizeof err) != 0) {
            int64_t now = zclock_mono();
            if (!unreachable_since) unreachable_since = now;
            fprintf(f, "%sdiffq wait: %s (still trying)\n", tty ? "\n" : "", err);
            if (now - unreachable_since > DQ_WAIT_GIVE_UP_MS) {
                fprintf(f, "diffq wait: giving up on job %llu\n", (unsigned long long) job);
                return DQ_EXIT_FAILED;
            }
            continue;
        }
        unreachable_since = 0;
        if (reply.cmd != DQ_CMD_STATUS_REPLY || reply.status_reply.n_jobs != 1) {
            dq_client_error_text(&reply, err, sizeof err);
            fprintf(f, "diffq wait: job %llu: %s\n", (unsigned long long) job, err);
            dq_msg_clear(&reply);
            return DQ_EXIT_FAILED;
        }
        dq_job_info_t j = reply.status_reply.jobs[0];
        dq_msg_clear(&reply);
        bool end =
            j.state == DQ_JOB_DONE || j.state == DQ_JOB_FAILED || j.state == DQ_JOB_CANCELLED;
        if (tty || j.done != last_done || j.failed != last_failed || end) s_bar(f, &j, tty);
        last_done = j.done;
        last_failed = j.failed;
        if (end) {
            if (tty) fputc('\n', f);
            fprintf(f, "job %llu %s: %llu images done, %llu failed\n", (unsigned long long) job,
                    dq_proto_job_state_name((int) j.state), (unsigned long long) j.done,
                    (unsigned long long) j.failed);
            if (j.failed > 0 && j.error[0])
                fprintf(f, "job %llu error: %s\n", (unsigned long long) job, j.error);
            return j.state == DQ_JOB_DONE && j.failed == 0 ? DQ_EXIT_OK : DQ_EXIT_FAILED;
        }
        zclock_sleep(DQ_WAIT_POLL_MS);
    }
}

int dq_cmd_wait(int argc, char **argv) {
    char err[512] = "";
    dq_config_t *cfg = dq_config_new("diffq wait", "[OPTIONS] JOB",
                                     "Follows JOB until it ends. Exits 0 when every image was "
                                     "rendered, 1 when some failed\nor the job was cancelled.",
                                     s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_EXIT_FAILED;
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    uint64_t job = 0;
    if (rc == 0 && dq_config_positional_count(cfg) != 1) {
        snprintf(err, sizeof err, "expected one JOB id (see --help)");
        rc = -1;
    } else if (rc == 0 &&
               dq_client_parse_job(dq_config_positional(cfg, 0), &job, err, sizeof err) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "diffq wait: %s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
    }
    dq_client_t *client =
        dq_client_new(dq_client_endpoint(dq_config_str(cfg, "broker")), err, sizeof err);
    int status = DQ_EXIT_FAILED;
    if (!client)
        fprintf(stderr, "diffq wait: %s\n", err);
    else
        status = dq_client_wait_job(client, job);
    dq_client_destroy(&client);
    dq_config_destroy(&cfg);
    return status;
}
