/* cli/cmd_status.c: "diffq status [JOB]": jobs (image counts, rate, ETA) and nodes (ranks,
 * capacity, shards), as a table or JSON, once or every second (--watch). */
#include "config.h"

#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/config.h"

static const dq_option_t s_options[] = {
    {"broker", 'b', "DIFFQ_BROKER", DQ_OPT_STRING, NULL, "EP",
     "broker endpoint (default " DQ_PROTO_DEFAULT_ENDPOINT ")"},
    {"json", 'j', NULL, DQ_OPT_BOOL, NULL, NULL, "print one JSON object instead of tables"},
    {"watch", 'W', NULL, DQ_OPT_BOOL, NULL, NULL,
     "repeat every second until interrupted (or until JOB ends)"},
};

static volatile sig_atomic_t s_interrupted = 0;
static void s_on_sigint(int sig) {
    (void) sig;
    s_interrupted = 1;
}

static void s_print_json(const dq_msg_status_reply_t *r) {
    json_t *jobs = json_array(), *nodes = json_array();
    for (uint32_t i = 0; i < r->n_jobs; i++) {
        const dq_job_info_t *j = &r->jobs[i];
        json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:f, s:f}", "id",
                              (json_int_t) j->id, "name", j->name, "model", j->model, "state",
                              dq_proto_job_state_name((int) j->state), "priority", j->priority,
                              "queued", (json_int_t) j->queued, "running", (json_int_t) j->running,
                              "done", (json_int_t) j->done, "failed", (json_int_t) j->failed,
                              "images_per_s", j->images_per_s, "eta_s", j->eta_s);
        if (o && j->error[0]) json_object_set_new(o, "error", json_string(j->error));
        json_array_append_new(jobs, o);
    }
    for (uint32_t i = 0; i < r->n_nodes; i++) {
        const dq_node_info_t *n = &r->nodes[i];
        json_t *shards = json_array(), *models = json_array();
        for (uint32_t k = 0; k < n->n_shards; k++)
            json_array_append_new(shards, json_integer((json_int_t) n->shards[k]));
        for (uint32_t k = 0; k < n->n_models; k++)
            json_array_append_new(models, json_string(n->models[k]));
        json_array_append_new(
            nodes, json_pack("{s:s, s:b, s:I, s:i, s:i, s:o, s:o}", "name", n->name, "alive",
                             n->alive, "seen_ms", (json_int_t) n->last_seen_ms, "ranks", n->ranks,
                             "capacity", n->capacity, "models", models, "shards", shards));
    }
    json_t *o = json_pack("{s:o, s:o}", "jobs", jobs, "nodes", nodes);
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(o);
}

void dq_cli_print_nodes(const dq_node_info_t *nodes, uint32_t n) {
    printf("%-24s %-5s %5s %4s %-24s %s\n", "NODE", "ALIVE", "RANKS", "CAP", "MODELS", "SHARDS");
    for (uint32_t i = 0; i < n; i++) {
        const dq_node_info_t *x = &nodes[i];
        printf("%-24s %-5s %5u %4u %-24s", x->name, x->alive ? "yes" : "no", x->ranks, x->capacity,
               x->n_models ? x->models[0] : "-");
        for (uint32_t k = 0; k < x->n_shards; k++)
            printf("%s%llu", k ? "," : " ", (unsigned long long) x->shards[k]);
        printf("%s\n", x->n_shards ? "" : " -");
    }
}

static void s_print_tables(const dq_msg_status_reply_t *r) {
    printf("%-6s %-20s %-9s %4s %7s %7s %7s %6s %8s %8s\n", "JOB", "NAME", "STATE", "PRIO",
           "QUEUED", "RUNNING", "DONE", "FAILED", "IMG/S", "ETA");
    for (uint32_t i = 0; i < r->n_jobs; i++) {
        const dq_job_info_t *j = &r->jobs[i];
        char eta[32] = "-";
        if (j->eta_s >= 0) snprintf(eta, sizeof eta, "%.0fs", j->eta_s);
        printf("%-6llu %-20.20s %-9s %4d %7llu %7llu %7llu %6llu %8.2f %8s\n",
               (unsigned long long) j->id, j->name, dq_proto_job_state_name((int) j->state),
               j->priority, (unsigned long long) j->queued, (unsigned long long) j->running,
               (unsigned long long) j->done, (unsigned long long) j->failed, j->images_per_s, eta);
        if (j->error[0]) printf("       error: %s\n", j->error);
    }
    printf("\n");
    dq_cli_print_nodes(r->nodes, r->n_nodes);
}

int dq_cmd_status(int argc, char **argv) {
    char err[512] = "";
    dq_config_t *cfg = dq_config_new(
        "diffq status", "[OPTIONS] [JOB]",
        "Shows every job (or JOB) with its queued, running, done and failed images, the rate\n"
        "over the last 30 s and the time left, and the broker's nodes with their shards.",
        s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_EXIT_FAILED;
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    uint64_t job = 0;
    if (rc == 0 && dq_config_positional_count(cfg) > 1) {
        snprintf(err, sizeof err, "expected at most one JOB id (see --help)");
        rc = -1;
    } else if (rc == 0 && dq_config_positional_count(cfg) == 1 &&
               dq_client_parse_job(dq_config_positional(cfg, 0), &job, err, sizeof err) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "diffq status: %s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
    }
    bool watch = dq_config_bool(cfg, "watch"), json = dq_config_bool(cfg, "json");
    dq_client_t *client =
        dq_client_new(dq_client_endpoint(dq_config_str(cfg, "broker")), err, sizeof err);
    int status = client ? DQ_EXIT_OK : DQ_EXIT_FAILED;
    if (!client) fprintf(stderr, "diffq status: %s\n", err);
    if (watch) signal(SIGINT, s_on_sigint);
    while (client && !s_interrupted) {
        dq_msg_t req = {.cmd = DQ_CMD_STATUS}, reply;
        req.status.job = job;
        if (dq_client_request(client, &req, &reply, true, err, sizeof err) != 0 ||
            reply.cmd != DQ_CMD_STATUS_REPLY) {
            if (reply.cmd) dq_client_error_text(&reply, err, sizeof err);
            fprintf(stderr, "diffq status: %s\n", err);
            dq_msg_clear(&reply);
            status = DQ_EXIT_FAILED;
            break;
        }
        if (watch && !json && isatty(fileno(stdout))) printf("\033[H\033[2J");
        if (json)
            s_print_json(&reply.status_reply);
        else
            s_print_tables(&reply.status_reply);
        fflush(stdout);
        bool ended = job && reply.status_reply.n_jobs == 1 &&
                     reply.status_reply.jobs[0].state >= DQ_JOB_DONE;
        dq_msg_clear(&reply);
        if (!watch || ended) break;
        zclock_sleep(1000);
    }
    dq_client_destroy(&client);
    dq_config_destroy(&cfg);
    return status;
}
