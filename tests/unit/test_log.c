/* tests/unit/test_log.c: log lines carry time, level and component; levels filter; names parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Runs fn with stderr redirected to a temporary file and returns what it wrote. */
static const char *s_capture(void (*fn)(void)) {
    static char text[4096];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(text, 1, sizeof text - 1, tmp);
    text[n] = '\0';
    fclose(tmp);
    return text;
}

static int s_evaluated;
static int s_side_effect(void) { return ++s_evaluated; }

static void s_log_info_and_debug(void) {
    dq_log_init("broker", DQ_LOG_INFO, false);
    dq_info("shard leased job=%d shard=%d", 7, 3);
    dq_debug("hidden %d", s_side_effect());
}

static void test_line_format_and_filtering(void **state) {
    (void) state;
    s_evaluated = 0;
    const char *out = s_capture(s_log_info_and_debug);
    /* 2026-11-27T02:10:00.123Z INFO broker: shard leased job=7 shard=3 */
    assert_non_null(strstr(out, " INFO broker: shard leased job=7 shard=3\n"));
    assert_true(strlen(out) > 24 && out[4] == '-' && out[10] == 'T' && out[19] == '.' &&
                out[23] == 'Z');
    assert_null(strstr(out, "hidden"));
    assert_int_equal(s_evaluated, 0); /* arguments below the level are not evaluated */
}

static void test_level_names(void **state) {
    (void) state;
    assert_int_equal(dq_log_level_parse("debug"), DQ_LOG_DEBUG);
    assert_int_equal(dq_log_level_parse("warn"), DQ_LOG_WARN);
    assert_int_equal(dq_log_level_parse("verbose"), -1);
    assert_int_equal(dq_log_level_parse(NULL), -1);
    assert_string_equal(dq_log_level_name(DQ_LOG_ERROR), "error");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format_and_filtering),
        cmocka_unit_test(test_level_names),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
