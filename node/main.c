/* node/main.c: diffq-node, the per-machine daemon: options, signals, then the node's event loop
 * (node/node.c). With "--rank-fd FD" it is instead one of its own rank processes (node/rank.c). */
#include "config.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "node/backend.h"
#include "node/node.h"
#include "node/rank.h"
#include "node/setup.h"

/* The defaults below are written as text; keep them equal to the protocol's constants. */
_Static_assert(DQ_PROTO_NODE_DEATH_TIMEOUT_MS == 300 * 1000, "update --death-timeout's default");

static const dq_option_t s_options[] = {
    {"broker", 'b', "DIFFQ_BROKER", DQ_OPT_STRING, DQ_PROTO_DEFAULT_ENDPOINT, "EP",
     "broker endpoint"},
    {"name", 'n', "DIFFQ_NODE_NAME", DQ_OPT_STRING, NULL, "NAME",
     "node name announced to the broker (default: the host name)"},
    {"backend", 0, "DIFFQ_NODE_BACKEND", DQ_OPT_STRING, "engine", "NAME",
     "render backend: engine (diffq's pipeline, CPU) or null (simulated images, for tests)"},
    {"model", 'm', "DIFFQ_MODEL", DQ_OPT_STRING, NULL, "PATH|NAME", "the model to serve"},
    {"models", 0, "DIFFQ_MODELS", DQ_OPT_STRING, NULL, "DIR", "serve every model in DIR"},
    {"gpus", 0, "DIFFQ_GPUS", DQ_OPT_STRING, NULL, "all|0,1,...", "one rank per listed GPU"},
    {"cpu-ranks", 0, "DIFFQ_CPU_RANKS", DQ_OPT_INT, NULL, "N", "N ranks on the CPU backend"},
    {"batch", 0, "DIFFQ_NODE_BATCH", DQ_OPT_INT, "1", "N", "shards each rank holds at once"},
    {"max-batch", 0, "DIFFQ_NODE_MAX_BATCH", DQ_OPT_INT, NULL, "N",
     "most images a rank renders in one batch; the broker fits shards to it (default: 8 on GPU"
     " ranks, 4 on CPU ranks and the null backend)"},
    {"death-timeout", 0, "DIFFQ_DEATH_TIMEOUT", DQ_OPT_DOUBLE, "300", "SECONDS",
     "exit (status 3) after this long without the broker"},
    {"drain-timeout", 0, "DIFFQ_DRAIN_TIMEOUT", DQ_OPT_DOUBLE, "120", "SECONDS",
     "on SIGTERM/SIGUSR1/SIGINT wait at most this long for running shards (0: no limit)"},
    {"null-step-ms", 0, NULL, DQ_OPT_INT, "0", "MS", "null backend: sleep per denoising step"},
    {"null-fail", 0, NULL, DQ_OPT_STRING, NULL, "CLASS",
     "null backend: fail every shard with oom, model, input or internal"},
    {"log-level", 'l', "DIFFQ_LOG_LEVEL", DQ_OPT_STRING, "info", "LEVEL",
     "error, warn, info or debug"},
    {"syslog", 0, NULL, DQ_OPT_BOOL, NULL, NULL, "log to syslog instead of stderr"},
};

static int s_signal_pipe[2] = {-1, -1};

/* Async-signal-safe: one byte per signal into the self-pipe the event loop polls. */
static void s_on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char) sig;
    if (write(s_signal_pipe[1], &b, 1) < 0) {
        /* A full pipe already holds enough signals to act on. */
    }
    errno = saved;
}

/* SIGTERM, SIGINT and SIGUSR1 (Slurm's warning before the time limit) all drain. */
static int s_signals_install(void) {
    zsys_handler_set(NULL); /* czmq must not take SIGINT/SIGTERM for itself */
    if (pipe2(s_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGUSR1};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
    signal(SIGPIPE, SIG_IGN); /* a dead rank's pipe is an error code, not a signal */
    return 0;
}

/* Rank mode: the node owns the rank's life, so the signals that drain the node are ignored. */
static int s_rank_mode(const char *fd) {
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    const char *level = getenv("DIFFQ_LOG_LEVEL");
    int lv = level ? dq_log_level_parse(level) : -1;
    dq_log_init("rank", lv < 0 ? DQ_LOG_INFO : (dq_log_level_t) lv, false);
    return dq_rank_main(atoi(fd));
}

/* Options -> parameters. Returns 0, 1 after --help, or an exit code (> 1) after a message. */
static int s_configure(dq_config_t *cfg, int argc, char **argv, dq_node_params_t *p,
                       char (**rank_devices)[64], char *host, size_t hostlen) {
    char err[1024];
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "diffq-node: %s\n", err);
        return rc < 0 ? DQ_NODE_EXIT_USAGE : 1;
    }
    int level = dq_log_level_parse(dq_config_str(cfg, "log-level"));
    if (level < 0) {
        fprintf(stderr, "diffq-node: --log-level: expected error, warn, info or debug\n");
        return DQ_NODE_EXIT_USAGE;
    }
    dq_log_init("node", (dq_log_level_t) level, dq_config_bool(cfg, "syslog"));
    setenv("DIFFQ_LOG_LEVEL", dq_config_str(cfg, "log-level"), 1); /* for the ranks */
    /* The engine's CPU backend wants idle OpenMP threads to sleep between ops (see
     * kernels/cpu); a rank inherits this unless the environment already chose. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    p->name = dq_config_str(cfg, "name");
    if (!p->name) {
        if (gethostname(host, hostlen) != 0) snprintf(host, hostlen, "node");
        host[hostlen - 1] = '\0';
        p->name = host;
    }
    p->broker = dq_config_str(cfg, "broker");
    p->backend = dq_config_str(cfg, "backend");
    p->exe = "/proc/self/exe";
    long batch = dq_config_int(cfg, "batch"), step = dq_config_int(cfg, "null-step-ms");
    double death = dq_config_double(cfg, "death-timeout");
    double drain = dq_config_double(cfg, "drain-timeout");
    const char *bad = NULL;
    if (strlen(p->name) == 0 || strlen(p->name) > DQ_PROTO_MAX_NAME)
        bad = "--name: expected 1..128 bytes";
    else if (batch < 1 || batch > DQ_PROTO_MAX_CREDIT)
        bad = "--batch: expected 1..1024";
    else if (step < 0 || step > 3600000)
        bad = "--null-step-ms: expected 0..3600000";
    else if (!(death > 0 && death <= 86400 * 365))
        bad = "--death-timeout: expected > 0 seconds";
    else if (!(drain >= 0 && drain <= 86400 * 365))
        bad = "--drain-timeout: expected >= 0 seconds";
    else if (!dq_config_str(cfg, "model") && !dq_config_str(cfg, "models"))
        bad = "give the model to serve with --model PATH|NAME or --models DIR";
    if (bad) {
        fprintf(stderr, "diffq-node: %s\n", bad);
        return DQ_NODE_EXIT_USAGE;
    }
    p->batch = (uint32_t) batch;
    p->null_step_ms = (uint32_t) step;
    p->null_fail = dq_config_str(cfg, "null-fail");
    p->death_timeout_ms = (uint32_t) (death * 1000);
    p->drain_timeout_ms = (uint32_t) (drain * 1000);
    if ((dq_config_str(cfg, "model") &&
         dq_setup_model(p, dq_config_str(cfg, "model"), err, sizeof err) != 0) ||
        (dq_config_str(cfg, "models") &&
         dq_setup_models_dir(p, dq_config_str(cfg, "models"), err, sizeof err) != 0)) {
        fprintf(stderr, "diffq-node: %s\n", err);
        return DQ_NODE_EXIT_USAGE;
    }
    dq_render_params_t rp = {"cpu", p->null_step_ms, p->null_fail, 0};
    dq_render_backend_t *check = dq_render_backend_new(p->backend, &rp, err, sizeof err);
    if (!check) {
        fprintf(stderr, "diffq-node: --backend: %s\n", err);
        return DQ_NODE_EXIT_USAGE;
    }
    dq_render_backend_destroy(&check);
    rc = dq_setup_ranks(p, dq_config_str(cfg, "gpus"), dq_config_int(cfg, "cpu-ranks"),
                        rank_devices, err, sizeof err);
    if (rc == 0)
        rc = dq_setup_max_batch(p, dq_config_is_set(cfg, "max-batch"),
                                dq_config_int(cfg, "max-batch"), err, sizeof err);
    if (rc != 0) fprintf(stderr, "diffq-node: %s\n", err);
    return rc;
}

int main(int argc, char **argv) {
    /* Each image's PNG encoder (zlib's ~270 KiB of state) and message pass through the heap:
     * keep freed memory at the top of the heap instead of returning it to the kernel and faulting
     * it in again for the next image (that churn was half of a null rank's CPU). Large blocks
     * (model weights, engine buffers) are still mmap'ed and returned. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    if (argc == 3 && strcmp(argv[1], DQ_RANK_FD_FLAG) == 0) return s_rank_mode(argv[2]);

    /* Options. */
    dq_log_init("node", DQ_LOG_INFO, false);
    dq_config_t *cfg = dq_config_new(
        "diffq-node", "[OPTIONS]",
        "Renders shards pulled from a diffq-broker with one rank process per GPU (or per CPU\n"
        "rank). SIGTERM, SIGINT or SIGUSR1 drain it. See diffq-node(8).",
        s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) return DQ_NODE_EXIT_INTERNAL;
    dq_node_params_t params;
    memset(&params, 0, sizeof params);
    char(*rank_devices)[64] = NULL;
    char host[DQ_PROTO_MAX_NAME + 1];
    int code = s_configure(cfg, argc, argv, &params, &rank_devices, host, sizeof host);
    if (code == 1)
        code = DQ_NODE_EXIT_OK; /* --help */
    else if (code == 0) {
        /* Signals. */
        if (s_signals_install() != 0) {
            dq_error("cannot install signal handlers: %s", strerror(errno));
            code = DQ_NODE_EXIT_INTERNAL;
        } else {
            params.signal_fd = s_signal_pipe[0];
            /* The node: ranks, broker socket, one event loop. */
            char err[256];
            dq_node_t *node = dq_node_new(&params, err, sizeof err);
            if (!node) {
                dq_error("%s", err);
                code = DQ_NODE_EXIT_USAGE;
            } else {
                dq_info("starting name=%s ranks=%u batch=%u max_batch=%u backend=%s model=%s "
                        "broker=%s",
                        params.name, params.n_ranks, params.batch, params.max_batch,
                        params.backend, params.models[0].name, params.broker);
                code = dq_node_run(node);
                dq_node_destroy(&node);
                dq_info("exiting code=%d", code);
            }
        }
    }
    free(rank_devices);
    dq_config_destroy(&cfg);
    return code;
}
