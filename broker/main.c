/* broker/main.c: diffq-broker: options, the state directory, signals, then the server's one event
 * loop (broker/server.c). man diffq-broker(8). */
#include "config.h"

#include <czmq.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "broker/server.h"
#include "common/config.h"
#include "common/log.h"
#include "common/proto.h"

static volatile int s_stop = 0;

static void s_on_signal(int sig) {
    (void) sig;
    s_stop = 1;
}

static const dq_option_t s_options[] = {
    {"bind", 'b', "DIFFQ_BROKER_BIND", DQ_OPT_STRING, "tcp://*:5555", "EP",
     "ZeroMQ endpoint to listen on (default port 5555)"},
    {"state", 's', "DIFFQ_BROKER_STATE", DQ_OPT_STRING, NULL, "DIR",
     "state directory: queue.db, lock, and out/ for jobs without --out (required)"},
    {"log-level", 'l', "DIFFQ_LOG_LEVEL", DQ_OPT_STRING, "info", "LEVEL",
     "error, warn, info or debug"},
    {"syslog", 0, NULL, DQ_OPT_BOOL, NULL, NULL, "log to syslog instead of stderr"},
    {"grace-ms", 0, NULL, DQ_OPT_INT, "15000", "MS",
     "after a restart, how long nodes may reclaim the shards they run"},
    {"lease-ms", 0, NULL, DQ_OPT_INT, "120000", "MS", "shard lease, renewed by each PROGRESS"},
    {"upload-timeout-ms", 0, NULL, DQ_OPT_INT, "60000", "MS",
     "discard an unfinished upload idle this long"},
    {"shard-size", 0, NULL, DQ_OPT_INT, "16", "N",
     "requests per shard at submit (1..256); a shard is cut to a node's batch when leased"},
    {"max-attempts", 0, NULL, DQ_OPT_INT, "3", "N", "leases per shard before it fails"},
    {"unserved-timeout", 0, NULL, DQ_OPT_DOUBLE, "120", "SECONDS",
     "fail a job's queued images when nodes are connected but none has served its model for"
     " this long"},
};
_Static_assert(DQ_BROKER_UNSERVED_DEFAULT_MS == 120 * 1000, "update --unserved-timeout's default");
_Static_assert(DQ_BROKER_SHARD_SIZE_DEFAULT == 16, "update --shard-size's default");

int main(int argc, char **argv) {
    char err[1024] = "";
    /* Every result's PNG passes through the heap: keep freed memory for the next batch instead
     * of returning it to the kernel (and faulting it in again) thousands of times a second. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    dq_log_init("broker", DQ_LOG_INFO, false);
    dq_config_t *cfg = dq_config_new(
        "diffq-broker", "[OPTIONS] --state DIR",
        "Holds the durable diffq job queue, hands shards to diffq-node processes and writes\n"
        "their images. See diffq-broker(8).",
        s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_BROKER_EXIT_FAILED;
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "diffq-broker: %s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_BROKER_EXIT_OK : DQ_BROKER_EXIT_USAGE;
    }
    int level = dq_log_level_parse(dq_config_str(cfg, "log-level"));
    dq_server_params_t params;
    dq_server_params_init(&params);
    params.bind = dq_config_str(cfg, "bind");
    params.state_dir = dq_config_str(cfg, "state");
    params.grace_ms = dq_config_int(cfg, "grace-ms");
    params.lease_ms = dq_config_int(cfg, "lease-ms");
    params.upload_timeout_ms = dq_config_int(cfg, "upload-timeout-ms");
    params.shard_size = (int) dq_config_int(cfg, "shard-size");
    params.max_attempts = (int) dq_config_int(cfg, "max-attempts");
    double unserved = dq_config_double(cfg, "unserved-timeout");
    params.unserved_ms = (int64_t) (unserved * 1000);
    const char *bad = level < 0             ? "--log-level: expected error, warn, info or debug"
                      : !params.state_dir   ? "--state DIR is required"
                      : params.grace_ms < 0 ? "--grace-ms: expected a number >= 0"
                      : params.lease_ms < 1000 || params.lease_ms > UINT32_MAX
                          ? "--lease-ms: expected 1000 .. 4294967295"
                      : params.upload_timeout_ms < 1 ? "--upload-timeout-ms: expected >= 1"
                      : params.shard_size < 1 || params.shard_size > DQ_PROTO_MAX_REQUESTS
                          ? "--shard-size: expected 1..256"
                      : params.max_attempts < 1 ? "--max-attempts: expected >= 1"
                      : !(unserved >= 0 && unserved <= 86400.0 * 365)
                          ? "--unserved-timeout: expected 0 .. 31536000 seconds"
                          : NULL;
    if (bad) {
        fprintf(stderr, "diffq-broker: %s (see --help)\n", bad);
        dq_config_destroy(&cfg);
        return DQ_BROKER_EXIT_USAGE;
    }
    dq_log_init("broker", (dq_log_level_t) level, dq_config_bool(cfg, "syslog"));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    zsys_handler_set(NULL); /* czmq must not install its own SIGINT handler over ours */

    int exit_code = DQ_BROKER_EXIT_OK;
    dq_server_t *server = dq_server_new(&params, err, sizeof err, &exit_code);
    if (!server) {
        dq_error("%s", err);
        dq_config_destroy(&cfg);
        return exit_code;
    }
    exit_code = dq_server_run(server, &s_stop);
    dq_server_destroy(&server);
    dq_config_destroy(&cfg);
    return exit_code;
}
