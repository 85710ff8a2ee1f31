/* tests/unit/test_job.c: the JSONL job format: defaults, every error class and its message,
 * drawn seeds, canonical JSON round trips, streaming and whole-file parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/job.h"

static dq_job_limits_t s_limits;
static dq_errlist_t *s_errors;

static int s_setup(void **state) {
    (void)state;
    dq_job_limits_init(&s_limits);
    s_errors = dq_errlist_new(DQ_ERRLIST_DEFAULT_CAP);
    return s_errors ? 0 : -1;
}

static int s_teardown(void **state) {
    (void)state;
    dq_errlist_destroy(&s_errors);
    return 0;
}

/* Parses text as the file "t.jsonl". */
static dq_jobfile_t *s_parse(const char *text) {
    return dq_jobfile_parse_buffer("t.jsonl", text, strlen(text), &s_limits, s_errors);
}

/* Asserts that text is rejected with exactly one error, the given message. */
static void s_expect_error(const char *text, const char *message) {
    dq_jobfile_t *file = s_parse(text);
    if (dq_errlist_count(s_errors) != 1 || strcmp(dq_errlist_get(s_errors, 0), message) != 0) {
        print_error("input:    %s\nexpected: %s\n", text, message);
        dq_errlist_print(s_errors, stderr);
    }
    assert_null(file);
    assert_int_equal(dq_errlist_count(s_errors), 1);
    assert_string_equal(dq_errlist_get(s_errors, 0), message);
    dq_errlist_destroy(&s_errors);
    s_errors = dq_errlist_new(DQ_ERRLIST_DEFAULT_CAP);
}

static void test_defaults_applied(void **state) {
    (void)state;
    dq_jobfile_t *file = s_parse("{\"prompt\": \"a cat\", \"seed\": 42}\n");
    assert_non_null(file);
    assert_int_equal(dq_jobfile_count(file), 1);
    const dq_request_t *r = dq_jobfile_get(file, 0);
    assert_string_equal(r->prompt, "a cat");
    assert_string_equal(r->negative_prompt, "");
    assert_string_equal(r->id, "line-1");
    assert_true(r->id_assigned);
    assert_true(r->seed == 42);
    assert_false(r->seed_drawn);
    assert_int_equal(r->num_inference_steps, 50);
    assert_true(r->guidance_scale == 7.5);
    assert_int_equal(r->width, 512);
    assert_int_equal(r->height, 512);
    assert_int_equal(r->num_images_per_prompt, 1);
    assert_int_equal(r->scheduler, DQ_SCHED_MODEL);
    assert_int_equal(r->line, 1);
    assert_null(dq_jobfile_get(file, 1));
    dq_jobfile_destroy(&file);
    assert_null(file);
}

static void test_all_fields(void **state) {
    (void)state;
    dq_jobfile_t *file = s_parse(
        "\n"
        "{\"id\":\"fox-1.v2_a\",\"prompt\":\"a fox \\u00e9\\ud83e\\udd8a\",\"negative_prompt\":"
        "\"blurry\",\"seed\":18446744073709551615,\"num_inference_steps\":1000,"
        "\"guidance_scale\":0,\"width\":2048,\"height\":64,\"num_images_per_prompt\":8,"
        "\"scheduler\":\"dpmpp_2m_karras\"}\r\n"
        "   \t \n"
        "{\"prompt\":\"\",\"seed\":0,\"guidance_scale\":50.0,\"scheduler\":\"euler_a\"}");
    assert_non_null(file);
    assert_int_equal(dq_jobfile_count(file), 2);
    const dq_request_t *r = dq_jobfile_get(file, 0);
    assert_string_equal(r->id, "fox-1.v2_a");
    assert_false(r->id_assigned);
    assert_string_equal(r->prompt, "a fox \xc3\xa9\xf0\x9f\xa6\x8a");
    assert_string_equal(r->negative_prompt, "blurry");
    assert_true(r->seed == UINT64_MAX);
    assert_int_equal(r->num_inference_steps, 1000);
    assert_true(r->guidance_scale == 0.0);
    assert_int_equal(r->width, 2048);
    assert_int_equal(r->height, 64);
    assert_int_equal(r->num_images_per_prompt, 8);
    assert_int_equal(r->scheduler, DQ_SCHED_DPMPP_2M_KARRAS);
    assert_int_equal(r->line, 2);
    r = dq_jobfile_get(file, 1);
    assert_string_equal(r->id, "line-4"); /* blank lines count */
    assert_string_equal(r->prompt, "");
    assert_true(r->seed == 0);
    assert_true(r->guidance_scale == 50.0);
    assert_int_equal(r->scheduler, DQ_SCHED_EULER_A);
    dq_jobfile_destroy(&file);
}

static void test_scheduler_names(void **state) {
    (void)state;
    const char *names[] = {"pndm", "ddim",     "euler",          "euler_a",
                           "lms",  "dpmpp_2m", "dpmpp_2m_karras"};
    const char *a1111[] = {"PNDM", "DDIM",     "Euler",          "Euler a",
                           "LMS",  "DPM++ 2M", "DPM++ 2M Karras"};
    for (int i = 0; i < 7; i++) {
        int s = dq_scheduler_parse(names[i]);
        assert_int_equal(s, DQ_SCHED_PNDM + i);
        assert_string_equal(dq_scheduler_name((dq_scheduler_t)s), names[i]);
        assert_string_equal(dq_scheduler_a1111_name((dq_scheduler_t)s), a1111[i]);
        assert_non_null(dq_scheduler_diffusers_class((dq_scheduler_t)s));
    }
    assert_string_equal(dq_scheduler_diffusers_class(DQ_SCHED_EULER_A),
                        "EulerAncestralDiscreteScheduler");
    assert_int_equal(dq_scheduler_parse("model"), -1);
    assert_int_equal(dq_scheduler_parse("Euler"), -1);
    assert_null(dq_scheduler_diffusers_class(DQ_SCHED_MODEL));
    assert_null(dq_scheduler_name(DQ_SCHED_COUNT));
}

static void test_missing_prompt(void **state) {
    (void)state;
    s_expect_error("{\"seed\": 1}", "t.jsonl:1: field \"prompt\": required, but missing");
}

static void test_wrong_types(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": 5}", "t.jsonl:1: field \"prompt\": expected a string, got 5");
    s_expect_error("{\"prompt\": \"x\", \"negative_prompt\": null}",
                   "t.jsonl:1: field \"negative_prompt\": expected a string, got null");
    s_expect_error("{\"prompt\": \"x\", \"id\": [1]}",
                   "t.jsonl:1: field \"id\": expected a string, got an array");
    s_expect_error("{\"prompt\": \"x\", \"seed\": \"12\"}",
                   "t.jsonl:1: field \"seed\": expected an integer between 0 and "
                   "18446744073709551615, got \"12\"");
    s_expect_error("{\"prompt\": \"x\", \"num_inference_steps\": true}",
                   "t.jsonl:1: field \"num_inference_steps\": expected an integer between 1 and "
                   "1000, got true");
    s_expect_error("{\"prompt\": \"x\", \"guidance_scale\": false}",
                   "t.jsonl:1: field \"guidance_scale\": expected a number between 0 and 50.0, "
                   "got false");
    s_expect_error("{\"prompt\": \"x\", \"guidance_scale\": \"7.5\"}",
                   "t.jsonl:1: field \"guidance_scale\": expected a number between 0 and 50.0, "
                   "got \"7.5\"");
    s_expect_error("{\"prompt\": \"x\", \"width\": {\"a\": 1}}",
                   "t.jsonl:1: field \"width\": expected a multiple of 8 between 64 and 2048, got "
                   "an object");
    s_expect_error("{\"prompt\": \"x\", \"scheduler\": 3}",
                   "t.jsonl:1: field \"scheduler\": expected one of pndm, ddim, euler, euler_a, "
                   "lms, dpmpp_2m, dpmpp_2m_karras, got 3");
}

static void test_out_of_range(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"x\", \"seed\": -1}",
                   "t.jsonl:1: field \"seed\": expected an integer between 0 and "
                   "18446744073709551615, got -1");
    s_expect_error("{\"prompt\": \"x\", \"seed\": 18446744073709551616}",
                   "t.jsonl:1: field \"seed\": expected an integer between 0 and "
                   "18446744073709551615, got 18446744073709551616");
    s_expect_error("{\"prompt\": \"x\", \"seed\": -99999999999999999999}",
                   "t.jsonl:1: field \"seed\": expected an integer between 0 and "
                   "18446744073709551615, got -99999999999999999999");
    /* Not JSON: a leading zero stays an error, however large the number. */
    s_expect_error("{\"prompt\": \"x\", \"seed\": 018446744073709551615}",
                   "t.jsonl:1: invalid JSON at column 25: invalid token near '0'");
    s_expect_error("{\"prompt\": \"x\", \"num_inference_steps\": 0}",
                   "t.jsonl:1: field \"num_inference_steps\": expected an integer between 1 and "
                   "1000, got 0");
    s_expect_error("{\"prompt\": \"x\", \"num_inference_steps\": 9223372036854775808}",
                   "t.jsonl:1: field \"num_inference_steps\": expected an integer between 1 and "
                   "1000, got 9223372036854775808");
    s_expect_error("{\"prompt\": \"x\", \"num_images_per_prompt\": 9}",
                   "t.jsonl:1: field \"num_images_per_prompt\": expected an integer between 1 "
                   "and 8, got 9");
    s_expect_error("{\"prompt\": \"x\", \"guidance_scale\": -0.5}",
                   "t.jsonl:1: field \"guidance_scale\": expected a number between 0 and 50.0, "
                   "got -0.5");
    s_expect_error("{\"prompt\": \"x\", \"guidance_scale\": 1e400}",
                   "t.jsonl:1: invalid JSON at column 39: real number overflow near '1e400'");
    s_expect_error("{\"prompt\": \"x\", \"height\": 2056}",
                   "t.jsonl:1: field \"height\": expected a multiple of 8 between 64 and 2048, "
                   "got 2056");
    s_expect_error("{\"prompt\": \"x\", \"scheduler\": \"karras\"}",
                   "t.jsonl:1: field \"scheduler\": expected one of pndm, ddim, euler, euler_a, "
                   "lms, dpmpp_2m, dpmpp_2m_karras, got \"karras\"");
}

static void test_limits_are_configurable(void **state) {
    (void)state;
    s_limits.max_size = 1024;
    s_limits.max_images_per_prompt = 2;
    s_limits.max_guidance_scale = 20;
    s_expect_error("{\"prompt\": \"x\", \"width\": 1032}",
                   "t.jsonl:1: field \"width\": expected a multiple of 8 between 64 and 1024, "
                   "got 1032");
    s_expect_error("{\"prompt\": \"x\", \"num_images_per_prompt\": 3}",
                   "t.jsonl:1: field \"num_images_per_prompt\": expected an integer between 1 "
                   "and 2, got 3");
    s_expect_error("{\"prompt\": \"x\", \"guidance_scale\": 20.5}",
                   "t.jsonl:1: field \"guidance_scale\": expected a number between 0 and 20.0, "
                   "got 20.5");
}

static void test_not_multiple_of_8(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"x\", \"width\": 500}",
                   "t.jsonl:1: field \"width\": expected a multiple of 8 between 64 and 2048, "
                   "got 500");
}

static void test_float_for_integer(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"x\", \"num_inference_steps\": 20.0}",
                   "t.jsonl:1: field \"num_inference_steps\": expected an integer between 1 and "
                   "1000, got 20.0");
    s_expect_error("{\"prompt\": \"x\", \"num_inference_steps\": 1e3}",
                   "t.jsonl:1: field \"num_inference_steps\": expected an integer between 1 and "
                   "1000, got 1e3");
    s_expect_error("{\"prompt\": \"x\", \"seed\": 1.5}",
                   "t.jsonl:1: field \"seed\": expected an integer between 0 and "
                   "18446744073709551615, got 1.5");
    s_expect_error("{\"prompt\": \"x\", \"width\": 512.0}",
                   "t.jsonl:1: field \"width\": expected a multiple of 8 between 64 and 2048, "
                   "got 512.0");
}

static void test_unknown_field(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"x\", \"steps\": 20}",
                   "t.jsonl:1: field \"steps\": unknown field (did you mean "
                   "\"num_inference_steps\"?)");
    s_expect_error("{\"prompt\": \"x\", \"guidance_scal\": 2}",
                   "t.jsonl:1: field \"guidance_scal\": unknown field (did you mean "
                   "\"guidance_scale\"?)");
}

static void test_unknown_field_suggestions(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"x\", \"hieght\": 512}",
                   "t.jsonl:1: field \"hieght\": unknown field (did you mean \"height\"?)");
    s_expect_error("{\"prompt\": \"x\", \"Sampler\": \"ddim\"}",
                   "t.jsonl:1: field \"Sampler\": unknown field (did you mean \"scheduler\"?)");
    s_expect_error("{\"prompt\": \"x\", \"colour\": 1}",
                   "t.jsonl:1: field \"colour\": unknown field");
}

static void test_duplicate_key(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"x\", \"seed\": 1, \"seed\": 2}",
                   "t.jsonl:1: field \"seed\": appears more than once");
}

static void test_duplicate_id(void **state) {
    (void)state;
    s_expect_error("{\"id\": \"a\", \"prompt\": \"x\"}\n{\"id\": \"b\", \"prompt\": \"y\"}\n"
                   "{\"id\": \"a\", \"prompt\": \"z\"}\n",
                   "t.jsonl:3: field \"id\": \"a\" is already used on line 1");
    /* An assigned name counts too. */
    s_expect_error("{\"prompt\": \"x\"}\n{\"id\": \"line-1\", \"prompt\": \"y\"}\n",
                   "t.jsonl:2: field \"id\": \"line-1\" is already used on line 1");
}

static void test_bad_id(void **state) {
    (void)state;
    const char *bad[] = {"\"\"", "\".hidden\"", "\"a/b\"", "\"a b\"", "\"caf\\u00e9\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], msg[256];
        snprintf(text, sizeof text, "{\"prompt\": \"x\", \"id\": %s}", bad[i]);
        snprintf(msg, sizeof msg,
                 "t.jsonl:1: field \"id\": expected 1 to 128 characters from A-Z a-z 0-9 . _ - "
                 "not starting with '.', got %s",
                 bad[i]);
        s_expect_error(text, msg);
    }
    char text[300];
    snprintf(text, sizeof text, "{\"prompt\": \"x\", \"id\": \"%0129d\"}", 0);
    dq_jobfile_t *file = s_parse(text);
    assert_null(file);
    assert_int_equal(dq_errlist_count(s_errors), 1);
    assert_non_null(strstr(dq_errlist_get(s_errors, 0), "field \"id\": expected 1 to 128"));
    /* 128 characters are fine. */
    dq_errlist_destroy(&s_errors);
    s_errors = dq_errlist_new(10);
    snprintf(text, sizeof text, "{\"prompt\": \"x\", \"id\": \"%0128d\"}", 0);
    file = s_parse(text);
    assert_non_null(file);
    dq_jobfile_destroy(&file);
}

static void test_trailing_garbage(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"x\"} x",
                   "t.jsonl:1: invalid JSON at column 17: end of file expected near 'x'");
    s_expect_error("{\"prompt\": \"x\"}{\"prompt\": \"y\"}",
                   "t.jsonl:1: invalid JSON at column 16: end of file expected near '{'");
    s_expect_error("{\"prompt\": \"x\",", "t.jsonl:1: invalid JSON at column 15: string or '}' "
                                          "expected near end of file");
}

static void test_invalid_utf8(void **state) {
    (void)state;
    s_expect_error("{\"prompt\": \"\xff\"}", "t.jsonl:1: invalid UTF-8 at column 13 (byte 0xff)");
    /* An overlong encoding of '/' and a UTF-16 surrogate encoded as UTF-8 */
    s_expect_error("{\"prompt\": \"\xc0\xaf\"}",
                   "t.jsonl:1: invalid UTF-8 at column 13 (byte 0xc0)");
    s_expect_error("{\"prompt\": \"\xed\xa0\x80\"}",
                   "t.jsonl:1: invalid UTF-8 at column 13 (byte 0xed)");
    /* Truncated sequence at the end of the line. */
    s_expect_error("{\"prompt\": \"x\"}\xe2\x82",
                   "t.jsonl:1: invalid UTF-8 at column 16 (byte 0xe2)");
    static const char nul[] = "{\"prompt\": \"a\0b\"}";
    dq_jobfile_t *file =
        dq_jobfile_parse_buffer("t.jsonl", nul, sizeof nul - 1, &s_limits, s_errors);
    assert_null(file);
    assert_string_equal(dq_errlist_get(s_errors, 0), "t.jsonl:1: NUL byte at column 14");
}

/* The buffer parser reads only the bytes it is given: no NUL after them is needed. */
static void test_buffer_not_terminated(void **state) {
    (void)state;
    static const char text[] = "{\"prompt\": \"x\", \"seed\": 18446744073709551615";
    char *exact = malloc(sizeof text - 1);
    assert_non_null(exact);
    memcpy(exact, text, sizeof text - 1); /* ASan traps any read past the end */
    dq_jobfile_t *file =
        dq_jobfile_parse_buffer("t.jsonl", exact, sizeof text - 1, &s_limits, s_errors);
    free(exact);
    assert_null(file);
    assert_int_equal(dq_errlist_count(s_errors), 1);
    assert_non_null(strstr(dq_errlist_get(s_errors, 0), "t.jsonl:1: invalid JSON at column"));
}

/* A long value is shortened in messages without splitting a character. */
static void test_got_shortened(void **state) {
    (void)state;
    /* The 36th byte of the value is inside an "\xc3\xa9": the cut moves before it. */
    s_expect_error("{\"prompt\": \"x\", \"scheduler\": "
                   "\"0123456789012345678901234567890123\xc3\xa9\xc3\xa9\xc3\xa9\"}",
                   "t.jsonl:1: field \"scheduler\": expected one of pndm, ddim, euler, euler_a, "
                   "lms, dpmpp_2m, dpmpp_2m_karras, got \"0123456789012345678901234567890123...");
}

static void test_non_object(void **state) {
    (void)state;
    s_expect_error("[{\"prompt\": \"x\"}]", "t.jsonl:1: expected a JSON object, got an array");
    s_expect_error("\"a cat\"", "t.jsonl:1: expected a JSON object, got \"a cat\"");
    s_expect_error("42", "t.jsonl:1: expected a JSON object, got 42");
}

static void test_empty_file(void **state) {
    (void)state;
    s_expect_error("", "t.jsonl: no requests: the file is empty or has only blank lines");
    s_expect_error("\n \n\t\n", "t.jsonl: no requests: the file is empty or has only blank lines");
}

static void test_overlong_line(void **state) {
    (void)state;
    s_limits.max_line_bytes = 32;
    s_expect_error("{\"prompt\": \"0123456789012345678\"}",
                   "t.jsonl:1: line is too long: 33 bytes, the limit is 32");
    /* The limit itself is fine, and a trailing '\r' does not count. */
    dq_jobfile_t *file = s_parse("{\"prompt\": \"012345678901234567\"}\r\n");
    assert_non_null(file);
    dq_jobfile_destroy(&file);
}

static void test_all_errors_listed(void **state) {
    (void)state;
    dq_jobfile_t *file = s_parse("{\"prompt\": \"ok\"}\n"
                                 "{\"width\": 500, \"seed\": -1}\n"
                                 "{\"prompt\": \"ok\"}\n"
                                 "nonsense\n");
    assert_null(file);
    assert_int_equal(dq_errlist_count(s_errors), 4);
    assert_string_equal(dq_errlist_get(s_errors, 0),
                        "t.jsonl:2: field \"width\": expected a multiple of 8 between 64 and 2048, "
                        "got 500");
    assert_string_equal(dq_errlist_get(s_errors, 1),
                        "t.jsonl:2: field \"seed\": expected an integer between 0 and "
                        "18446744073709551615, got -1");
    assert_string_equal(dq_errlist_get(s_errors, 2),
                        "t.jsonl:2: field \"prompt\": required, but missing");
    assert_string_equal(dq_errlist_get(s_errors, 3),
                        "t.jsonl:4: invalid JSON at column 8: invalid token near 'nonsense'");
}

static void test_error_cap(void **state) {
    (void)state;
    size_t n = 250;
    char *text = malloc(n * 16);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "{\"seed\": 1}\n");
    dq_jobfile_t *file = dq_jobfile_parse_buffer("t.jsonl", text, len, &s_limits, s_errors);
    free(text);
    assert_null(file);
    assert_int_equal(dq_errlist_count(s_errors), 250);
    assert_int_equal(dq_errlist_kept(s_errors), 100);
    assert_string_equal(dq_errlist_get(s_errors, 99),
                        "t.jsonl:100: field \"prompt\": required, but missing");
    assert_null(dq_errlist_get(s_errors, 100));
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem = open_memstream(&out, &outlen);
    assert_non_null(mem);
    assert_int_equal(dq_errlist_print(s_errors, mem), 101);
    fclose(mem);
    assert_non_null(strstr(out, "t.jsonl:1: field \"prompt\": required, but missing\n"));
    assert_non_null(strstr(out, "\nand 150 more errors\n"));
    free(out);
}

static void test_too_many_requests(void **state) {
    (void)state;
    s_limits.max_requests = 2;
    /* Said once, at the first line over the limit, not for every line after it. */
    s_expect_error("{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": \"c\"}\n"
                   "{\"prompt\": \"d\"}\n{\"prompt\": \"e\"}\n",
                   "t.jsonl:3: too many requests: the limit is 2 per file (split it into several "
                   "jobs)");
}

static void test_seed_drawn(void **state) {
    (void)state;
    dq_jobfile_t *file = s_parse("{\"prompt\": \"x\"}\n{\"prompt\": \"x\"}\n");
    assert_non_null(file);
    const dq_request_t *a = dq_jobfile_get(file, 0), *b = dq_jobfile_get(file, 1);
    assert_true(a->seed_drawn);
    assert_true(b->seed_drawn);
    assert_true(a->seed != b->seed); /* fails with probability 2^-64 */
    /* The drawn seed is recorded in the canonical JSON, so a re-run reproduces it. */
    char *json = dq_request_to_json(a);
    assert_non_null(json);
    char want[64];
    snprintf(want, sizeof want, "\"seed\":%llu,", (unsigned long long)a->seed);
    assert_non_null(strstr(json, want));
    dq_jobfile_t *again = s_parse(json);
    free(json);
    assert_non_null(again);
    assert_true(dq_jobfile_get(again, 0)->seed == a->seed);
    assert_false(dq_jobfile_get(again, 0)->seed_drawn);
    dq_jobfile_destroy(&again);
    dq_jobfile_destroy(&file);
}

static ssize_t s_random_fails(void *buf, size_t len, unsigned int flags) {
    (void)buf, (void)len, (void)flags;
    errno = ENOSYS;
    return -1;
}

static void test_seed_draw_fails(void **state) {
    (void)state;
    dq_job_set_random_fn(s_random_fails);
    dq_jobfile_t *file = s_parse("{\"prompt\": \"x\", \"seed\": 1}\n{\"prompt\": \"y\"}\n");
    dq_job_set_random_fn(NULL);
    assert_null(file);
    assert_int_equal(dq_errlist_count(s_errors), 1);
    assert_string_equal(dq_errlist_get(s_errors, 0),
                        "t.jsonl:2: cannot draw a random seed: Function not implemented");
    /* Restored: drawing works again. */
    file = s_parse("{\"prompt\": \"y\"}\n");
    assert_non_null(file);
    assert_true(dq_jobfile_get(file, 0)->seed_drawn);
    dq_jobfile_destroy(&file);
}

static void test_canonical_json(void **state) {
    (void)state;
    dq_jobfile_t *file = s_parse("{\"scheduler\":\"ddim\",\"prompt\":\"say "
                                 "\\\"hi\\\"\\n\\u00e9\",\"seed\":9223372036854775808,"
                                 "\"guidance_scale\":0.1,\"id\":\"x\",\"width\":640}\n"
                                 "{\"prompt\":\"p\",\"seed\":3,\"guidance_scale\":7}\n");
    assert_non_null(file);
    char *json = dq_request_to_json(dq_jobfile_get(file, 0));
    assert_non_null(json);
    assert_string_equal(json, "{\"id\":\"x\",\"prompt\":\"say \\\"hi\\\"\\n\xc3\xa9\","
                              "\"negative_prompt\":\"\",\"seed\":9223372036854775808,"
                              "\"num_inference_steps\":50,\"guidance_scale\":0.1,\"width\":640,"
                              "\"height\":512,\"num_images_per_prompt\":1,\"scheduler\":\"ddim\"}");
    char *json2 = dq_request_to_json(dq_jobfile_get(file, 1));
    assert_string_equal(json2, "{\"id\":\"line-2\",\"prompt\":\"p\",\"negative_prompt\":\"\","
                               "\"seed\":3,\"num_inference_steps\":50,\"guidance_scale\":7.0,"
                               "\"width\":512,\"height\":512,\"num_images_per_prompt\":1}");
    /* Round trip: parse the canonical lines and get equal requests and the same text. */
    char *both = NULL;
    assert_true(asprintf(&both, "%s\n%s\n", json, json2) > 0);
    dq_jobfile_t *again = s_parse(both);
    assert_non_null(again);
    for (size_t i = 0; i < 2; i++) {
        const dq_request_t *a = dq_jobfile_get(file, i), *b = dq_jobfile_get(again, i);
        assert_string_equal(a->id, b->id);
        assert_string_equal(a->prompt, b->prompt);
        assert_string_equal(a->negative_prompt, b->negative_prompt);
        assert_true(a->seed == b->seed);
        assert_int_equal(a->num_inference_steps, b->num_inference_steps);
        assert_true(a->guidance_scale == b->guidance_scale);
        assert_int_equal(a->width, b->width);
        assert_int_equal(a->height, b->height);
        assert_int_equal(a->num_images_per_prompt, b->num_images_per_prompt);
        assert_int_equal(a->scheduler, b->scheduler);
        char *j = dq_request_to_json(b);
        assert_string_equal(j, i == 0 ? json : json2);
        free(j);
    }
    free(both);
    free(json);
    free(json2);
    dq_jobfile_destroy(&again);
    dq_jobfile_destroy(&file);
}

static void test_format_double(void **state) {
    (void)state;
    char buf[40];
    assert_string_equal(dq_job_format_double(7.5, buf, sizeof buf), "7.5");
    assert_string_equal(dq_job_format_double(7.0, buf, sizeof buf), "7.0");
    assert_string_equal(dq_job_format_double(0.1, buf, sizeof buf), "0.1");
    assert_string_equal(dq_job_format_double(1.0 / 3.0, buf, sizeof buf), "0.3333333333333333");
    assert_string_equal(dq_job_format_double(1e22, buf, sizeof buf), "1e+22");
    assert_string_equal(dq_job_format_double(50, buf, sizeof buf), "50.0");
    assert_string_equal(dq_job_format_double(1e15, buf, sizeof buf), "1000000000000000.0");
    assert_string_equal(dq_job_format_double(1e16, buf, sizeof buf), "1e+16");
    assert_string_equal(dq_job_format_double(0.0001, buf, sizeof buf), "0.0001");
    assert_string_equal(dq_job_format_double(0.00001, buf, sizeof buf), "1e-05");
    assert_string_equal(dq_job_format_double(-2.25, buf, sizeof buf), "-2.25");
}

static void test_request_copy(void **state) {
    (void)state;
    dq_jobfile_t *file = s_parse("{\"prompt\": \"x\", \"negative_prompt\": \"y\", \"seed\": 5}");
    assert_non_null(file);
    dq_request_t copy;
    assert_int_equal(dq_request_copy(&copy, dq_jobfile_get(file, 0)), 0);
    dq_jobfile_destroy(&file);
    assert_string_equal(copy.prompt, "x");
    assert_string_equal(copy.negative_prompt, "y");
    assert_true(copy.seed == 5);
    dq_request_clear(&copy);
    assert_null(copy.prompt);
    dq_request_clear(&copy);
}

static void test_streaming_parser(void **state) {
    (void)state;
    dq_jobparser_t *p = dq_jobparser_new("up.jsonl", &s_limits, s_errors);
    assert_non_null(p);
    dq_request_t req;
    assert_int_equal(dq_jobparser_line(p, "", 0, 0, &req), 0);
    const char *l2 = "{\"prompt\": \"a\", \"id\": \"k\"}garbage-not-passed";
    assert_int_equal(dq_jobparser_line(p, l2, 26, 26, &req), 1);
    assert_string_equal(req.id, "k");
    assert_int_equal(req.line, 2);
    dq_request_clear(&req);
    assert_int_equal(dq_jobparser_line(p, "{\"prompt\": \"b\", \"id\": \"k\"}", 26, 26, &req), -1);
    assert_null(req.prompt);
    assert_int_equal(dq_jobparser_lines(p), 3);
    assert_int_equal(dq_jobparser_requests(p), 1);
    assert_int_equal(dq_jobparser_finish(p), -1);
    assert_int_equal(dq_errlist_count(s_errors), 1);
    assert_string_equal(dq_errlist_get(s_errors, 0),
                        "up.jsonl:3: field \"id\": \"k\" is already used on line 2");
    dq_jobparser_destroy(&p);
    assert_null(p);
}

static void test_stream_and_path(void **state) {
    (void)state;
    char path[] = "/tmp/dq-test-job-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\", \"seed\": 7}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    dq_jobfile_t *file = dq_jobfile_read(path, &s_limits, s_errors);
    assert_non_null(file);
    assert_int_equal(dq_jobfile_count(file), 2);
    assert_int_equal(dq_jobfile_get(file, 1)->line, 3);
    assert_true(dq_jobfile_get(file, 1)->seed == 7);
    dq_jobfile_destroy(&file);

    /* An overlong line read from a stream is reported with its full length. */
    s_limits.max_line_bytes = 20;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"prompt\": \"a\"}\n{\"prompt\": \"a long prompt here\"}\n");
    fclose(f);
    file = dq_jobfile_read(path, &s_limits, s_errors);
    assert_null(file);
    assert_int_equal(dq_errlist_count(s_errors), 1);
    char want[128];
    snprintf(want, sizeof want, "%s:2: line is too long: 32 bytes, the limit is 20", path);
    assert_string_equal(dq_errlist_get(s_errors, 0), want);
    unlink(path);

    dq_errlist_destroy(&s_errors);
    s_errors = dq_errlist_new(10);
    file = dq_jobfile_read(path, &s_limits, s_errors);
    assert_null(file);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(dq_errlist_get(s_errors, 0), want);
}

/* Mutated lines (bytes flipped, cut, spliced) never crash the parser or trip the sanitizers, and
 * each gives a request or at least one error. Deterministic, so a failure reproduces. */
static void test_mutations(void **state) {
    (void)state;
    static const char *const seeds[] = {
        "{\"id\":\"a-1\",\"prompt\":\"caf\\u00e9 \xe7\x8c\xab\",\"seed\":18446744073709551615,"
        "\"guidance_scale\":7.5,\"width\":[512,{\"x\":99999999999999999999}],\"scheduler\":"
        "\"ddim\"}",
        "{\"prompt\":\"a cat\",\"seed\":12345678901234567890,\"num_inference_steps\":20,"
        "\"width\":640,\"num_images_per_prompt\":2,\"guidance_scale\":7}",
    };
    static const char alphabet[] = "{}[]:,\"\\-0123456789eE. \tnutrfalse\xff\xc3";
    uint32_t x = 2463534242u;
    dq_jobparser_t *p = dq_jobparser_new("fuzz", &s_limits, s_errors);
    assert_non_null(p);
    char line[256];
    int good = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = strlen(seeds[iter % 2]);
        memcpy(line, seeds[iter % 2], len);
        int edits = 1 + iter % 4;
        for (int e = 0; e < edits; e++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            size_t pos = x % len;
            if ((x >> 8) % 5 == 0)
                len = pos; /* cut */
            else
                line[pos] = alphabet[(x >> 12) % (sizeof alphabet - 1)];
            if (len == 0) break;
        }
        size_t before = dq_errlist_count(s_errors);
        dq_request_t req;
        int rc = dq_jobparser_line(p, line, len, len, &req);
        assert_true(rc >= -1 && rc <= 1);
        if (rc == -1)
            assert_true(dq_errlist_count(s_errors) > before);
        else
            assert_int_equal(dq_errlist_count(s_errors), before);
        if (rc == 1) {
            good++;
            char *json = dq_request_to_json(&req);
            assert_non_null(json);
            free(json);
        }
        dq_request_clear(&req);
    }
    assert_true(good > 0); /* the mutations do not all miss the valid paths */
    dq_jobparser_destroy(&p);
}

/* The example shipped in examples/ must stay valid. */
static void test_shipped_example(void **state) {
    (void)state;
    const char *top = getenv("top_srcdir");
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/prompts.jsonl", top ? top : "..");
    dq_jobfile_t *file = dq_jobfile_read(path, &s_limits, s_errors);
    if (!file) dq_errlist_print(s_errors, stderr);
    assert_non_null(file);
    assert_true(dq_jobfile_count(file) >= 1);
    dq_jobfile_destroy(&file);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_applied, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_all_fields, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_names, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_prompt, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_limits_are_configurable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_not_multiple_of_8, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_float_for_integer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_field, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_field_suggestions, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_trailing_garbage, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_buffer_not_terminated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_got_shortened, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_non_object, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_overlong_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_all_errors_listed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_error_cap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_too_many_requests, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_seed_drawn, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_seed_draw_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_canonical_json, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_format_double, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_request_copy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_streaming_parser, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stream_and_path, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_mutations, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shipped_example, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
