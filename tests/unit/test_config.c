/* tests/unit/test_config.c: option precedence (flag > env > file > default) and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

static const dq_option_t s_options[] = {
    {"broker", 'b', "DQ_TEST_BROKER", DQ_OPT_STRING, "tcp://127.0.0.1:5555", "EP", "broker endpoint"},
    {"ranks", 0, "DQ_TEST_RANKS", DQ_OPT_INT, "1", "N", "ranks"},
    {"scale", 0, NULL, DQ_OPT_DOUBLE, NULL, "X", "a number"},
    {"verbose", 'v', NULL, DQ_OPT_BOOL, NULL, NULL, "say more"},
};
#define N_OPTIONS (sizeof s_options / sizeof s_options[0])

static char s_err[512];

static int s_parse(dq_config_t *cfg, int argc, const char **argv) {
    s_err[0] = '\0';
    return dq_config_parse(cfg, argc, (char **) argv, s_err, sizeof s_err);
}

static char *s_write_file(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/dq-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    return path;
}

static int s_setup(void **state) {
    (void) state;
    unsetenv("DQ_TEST_BROKER");
    unsetenv("DQ_TEST_RANKS");
    unsetenv("DIFFQ_CONFIG");
    return 0;
}

static void test_defaults_apply(void **state) {
    (void) state;
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog", "a.jsonl"};
    assert_int_equal(s_parse(cfg, 2, argv), 0);
    assert_string_equal(dq_config_str(cfg, "broker"), "tcp://127.0.0.1:5555");
    assert_string_equal(dq_config_source(cfg, "broker"), "default");
    assert_int_equal(dq_config_int(cfg, "ranks"), 1);
    assert_false(dq_config_is_set(cfg, "scale"));
    assert_false(dq_config_bool(cfg, "verbose"));
    assert_int_equal(dq_config_positional_count(cfg), 1);
    assert_string_equal(dq_config_positional(cfg, 0), "a.jsonl");
    dq_config_destroy(&cfg);
    assert_null(cfg);
}

static void test_precedence_flag_env_file(void **state) {
    (void) state;
    char *path = s_write_file("# comment\nbroker = tcp://file:1\nranks = 3\n[other]\nbogus = 1\n"
                              "[prog]\nscale = 0.5\n");
    setenv("DIFFQ_CONFIG", path, 1);
    setenv("DQ_TEST_RANKS", "2", 1);
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog", "--broker", "tcp://flag:9", "-v"};
    assert_int_equal(s_parse(cfg, 4, argv), 0);
    assert_string_equal(dq_config_str(cfg, "broker"), "tcp://flag:9");
    assert_string_equal(dq_config_source(cfg, "broker"), "flag");
    assert_int_equal(dq_config_int(cfg, "ranks"), 2);
    assert_string_equal(dq_config_source(cfg, "ranks"), "env");
    assert_true(dq_config_double(cfg, "scale") == 0.5);
    assert_string_equal(dq_config_source(cfg, "scale"), "file");
    assert_true(dq_config_bool(cfg, "verbose"));
    dq_config_destroy(&cfg);
    unlink(path);
}

static void test_bad_flag_value_names_flag(void **state) {
    (void) state;
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog", "--ranks", "four"};
    assert_int_equal(s_parse(cfg, 3, argv), -1);
    assert_non_null(strstr(s_err, "--ranks"));
    assert_non_null(strstr(s_err, "an integer"));
    assert_non_null(strstr(s_err, "four"));
    dq_config_destroy(&cfg);
}

static void test_unknown_flag(void **state) {
    (void) state;
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog", "--nope"};
    assert_int_equal(s_parse(cfg, 2, argv), -1);
    assert_non_null(strstr(s_err, "unknown option --nope"));
    dq_config_destroy(&cfg);
}

static void test_missing_value(void **state) {
    (void) state;
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog", "--broker"};
    assert_int_equal(s_parse(cfg, 2, argv), -1);
    assert_non_null(strstr(s_err, "needs a value"));
    dq_config_destroy(&cfg);
}

static void test_bad_env_names_variable(void **state) {
    (void) state;
    setenv("DQ_TEST_RANKS", "2x", 1);
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog"};
    assert_int_equal(s_parse(cfg, 1, argv), -1);
    assert_non_null(strstr(s_err, "DQ_TEST_RANKS"));
    dq_config_destroy(&cfg);
}

static void test_file_errors_name_line(void **state) {
    (void) state;
    char *path = s_write_file("ranks = 2\n[prog]\nwhat = 1\n");
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog", "--config", path};
    assert_int_equal(s_parse(cfg, 3, argv), -1);
    char want[128];
    snprintf(want, sizeof want, "%s:3: unknown key 'what'", path);
    assert_non_null(strstr(s_err, want));
    dq_config_destroy(&cfg);
    unlink(path);

    path = s_write_file("\n\nscale = fast\n");
    cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv2[] = {"prog", "--config", path};
    assert_int_equal(s_parse(cfg, 3, argv2), -1);
    snprintf(want, sizeof want, "%s:3: scale: expected a number", path);
    assert_non_null(strstr(s_err, want));
    dq_config_destroy(&cfg);
    unlink(path);
}

static void test_missing_named_file_is_error(void **state) {
    (void) state;
    dq_config_t *cfg = dq_config_new("prog", NULL, NULL, s_options, N_OPTIONS);
    const char *argv[] = {"prog", "--config", "/nonexistent/diffq.conf"};
    assert_int_equal(s_parse(cfg, 3, argv), -1);
    assert_non_null(strstr(s_err, "/nonexistent/diffq.conf"));
    dq_config_destroy(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_apply, s_setup),
        cmocka_unit_test_setup(test_precedence_flag_env_file, s_setup),
        cmocka_unit_test_setup(test_bad_flag_value_names_flag, s_setup),
        cmocka_unit_test_setup(test_unknown_flag, s_setup),
        cmocka_unit_test_setup(test_missing_value, s_setup),
        cmocka_unit_test_setup(test_bad_env_names_variable, s_setup),
        cmocka_unit_test_setup(test_file_errors_name_line, s_setup),
        cmocka_unit_test_setup(test_missing_named_file_is_error, s_setup),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
