/* common/log.h: leveled, timestamped key=value logging to stderr or syslog. */
#ifndef DQ_LOG_H
#define DQ_LOG_H

#include <stdbool.h>

typedef enum {
    DQ_LOG_ERROR,
    DQ_LOG_WARN,
    DQ_LOG_INFO,
    DQ_LOG_DEBUG,
    DQ_LOG_LEVEL_COUNT
} dq_log_level_t;

/* Sets the component name printed on each line ("broker", "node", "rank3"), the lowest level
 * printed, and where lines go (syslog when use_syslog, else stderr). Safe to call again. */
void dq_log_init(const char *component, dq_log_level_t level, bool use_syslog);

/* Parses "error", "warn", "info" or "debug". Returns -1 for anything else. */
int dq_log_level_parse(const char *name);
const char *dq_log_level_name(dq_log_level_t level);

/* The active level; the DQ_LOG_* macros test it first so arguments below it are not evaluated. */
extern dq_log_level_t dq_log_active_level;

/* Writes one line: "2026-11-27T02:10:00.123Z INFO broker: message key=value ...".
 * By convention the message is a short phrase, and ids follow as key=value pairs
 * (job=, shard=, attempt=, rank=) so lines can be grepped and parsed. */
void dq_log_write(dq_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define DQ_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= dq_log_active_level) dq_log_write((level), __VA_ARGS__);                   \
    } while (0)
#define dq_error(...) DQ_LOG(DQ_LOG_ERROR, __VA_ARGS__)
#define dq_warn(...) DQ_LOG(DQ_LOG_WARN, __VA_ARGS__)
#define dq_info(...) DQ_LOG(DQ_LOG_INFO, __VA_ARGS__)
#define dq_debug(...) DQ_LOG(DQ_LOG_DEBUG, __VA_ARGS__)

#endif
