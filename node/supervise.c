/* node/supervise.c: fork + exec of rank processes, and collecting them when they end. */
#include "node/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "node/rank.h"

int64_t dq_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dq_rank_spawn(dq_rank_t *r, const dq_rank_hello_t *hello, char *err, size_t errlen) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -1;
    }
    dq_rankio_t *io = dq_rankio_new(sv[0], DQ_RANKIO_MAX_RECORD);
    if (!io) {
        close(sv[0]);
        close(sv[1]);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char fdarg[16], index[16], step[16], batch[16];
    snprintf(fdarg, sizeof fdarg, "%d", sv[1]);
    snprintf(index, sizeof index, "%d", r->index);
    snprintf(step, sizeof step, "%u", hello->null_step_ms);
    snprintf(batch, sizeof batch, "%u", hello->max_batch);
    const char *parts[DQ_RANKIO_HELLO_PARTS] = {index,
                                                hello->backend,
                                                r->device,
                                                step,
                                                hello->null_fail ? hello->null_fail : "",
                                                hello->model_spec,
                                                batch};
    const uint8_t *p[DQ_RANKIO_HELLO_PARTS];
    size_t sz[DQ_RANKIO_HELLO_PARTS];
    for (int i = 0; i < DQ_RANKIO_HELLO_PARTS; i++) {
        p[i] = (const uint8_t *) parts[i];
        sz[i] = strlen(parts[i]);
    }
    if (dq_rankio_queue(io, DQ_RANKIO_HELLO, p, sz, DQ_RANKIO_HELLO_PARTS, err, errlen) != 0) {
        dq_rankio_destroy(&io);
        close(sv[1]);
        return -1;
    }
    /* The rank's environment is made before fork: the child may only exec (other threads of
     * this process may hold malloc's lock at the fork). */
    char threads[32];
    char **envp = NULL;
    if (hello->cpu_threads > 0 && strcmp(r->device, "cpu") == 0 && !getenv("OMP_NUM_THREADS")) {
        snprintf(threads, sizeof threads, "OMP_NUM_THREADS=%d", hello->cpu_threads);
        size_t n = 0;
        while (environ[n])
            n++;
        envp = calloc(n + 2, sizeof *envp);
        if (envp) {
            memcpy(envp, environ, n * sizeof *envp);
            envp[n] = threads;
        }
    }
    pid_t pid = fork();
    if (pid != 0) free(envp);
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        dq_rankio_destroy(&io);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* Child: its own process group, so a terminal's ^C reaches only the node, which drains. */
        setpgid(0, 0);
        fcntl(sv[1], F_SETFD, 0);
        char *argv[] = {(char *) hello->exe, DQ_RANK_FD_FLAG, fdarg, NULL};
        execve(hello->exe, argv, envp ? envp : environ);
        dprintf(2, "diffq-node: rank %d: exec %s: %s\n", r->index, hello->exe, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    r->io = io;
    r->pid = pid;
    r->state = DQ_RANK_STARTING;
    r->held = 0;
    return 0;
}

static void s_describe(int status, char *desc, size_t desclen) {
    if (WIFEXITED(status))
        snprintf(desc, desclen, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(desc, desclen, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(desc, desclen, "ended (wait status %d)", status);
}

/* Waits up to grace_ms for pid, then kills it. Returns its wait status. */
static int s_collect(pid_t pid, int grace_ms) {
    int status = 0;
    int64_t until = dq_now_ms() + grace_ms;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) return status;
        if (dq_now_ms() >= until) break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

void dq_rank_reap(dq_rank_t *r, char *desc, size_t desclen) {
    dq_rankio_destroy(&r->io);
    if (r->pid > 0)
        s_describe(s_collect(r->pid, 1000), desc, desclen);
    else
        snprintf(desc, desclen, "not running");
    r->pid = 0;
    r->state = DQ_RANK_DOWN;
    r->held = 0;
}

void dq_rank_stop_all(dq_rank_t *ranks, size_t n, int grace_ms) {
    for (size_t i = 0; i < n; i++)
        dq_rankio_destroy(&ranks[i].io);
    int64_t until = dq_now_ms() + grace_ms;
    for (size_t i = 0; i < n; i++) {
        if (ranks[i].pid <= 0) continue;
        int64_t left = until - dq_now_ms();
        int status = s_collect(ranks[i].pid, left > 0 ? (int) left : 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char desc[128];
            s_describe(status, desc, sizeof desc);
            dq_warn("rank %s at shutdown rank=%d", desc, ranks[i].index);
        }
        ranks[i].pid = 0;
        ranks[i].state = DQ_RANK_DOWN;
    }
}
