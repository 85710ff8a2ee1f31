/* common/log.c: leveled, timestamped key=value logging to stderr or syslog. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

dq_log_level_t dq_log_active_level = DQ_LOG_INFO;

static const char *s_level_names[DQ_LOG_LEVEL_COUNT] = {"error", "warn", "info", "debug"};
static const char *s_level_tags[DQ_LOG_LEVEL_COUNT] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const int s_syslog_priority[DQ_LOG_LEVEL_COUNT] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

static char s_component[32] = "diffq";
static bool s_use_syslog;

void dq_log_init(const char *component, dq_log_level_t level, bool use_syslog) {
    snprintf(s_component, sizeof s_component, "%s", component ? component : "diffq");
    dq_log_active_level = level < DQ_LOG_LEVEL_COUNT ? level : DQ_LOG_DEBUG;
    if (s_use_syslog && !use_syslog) closelog();
    s_use_syslog = use_syslog;
    if (use_syslog) openlog(s_component, LOG_PID, LOG_DAEMON);
}

int dq_log_level_parse(const char *name) {
    for (int i = 0; i < DQ_LOG_LEVEL_COUNT; i++)
        if (name && strcmp(name, s_level_names[i]) == 0) return i;
    return -1;
}

const char *dq_log_level_name(dq_log_level_t level) {
    return level < DQ_LOG_LEVEL_COUNT ? s_level_names[level] : "?";
}

void dq_log_write(dq_log_level_t level, const char *fmt, ...) {
    if (level >= DQ_LOG_LEVEL_COUNT) level = DQ_LOG_DEBUG;
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);

    if (s_use_syslog) {
        syslog(s_syslog_priority[level], "%s", message);
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line: stdio locks the stream, so lines from threads do not interleave. */
    fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, now.tv_nsec / 1000000L, s_level_tags[level],
            s_component, message);
}
