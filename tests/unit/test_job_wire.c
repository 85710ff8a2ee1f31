/* tests/unit/test_job_wire.c: a request keeps every field through wire form -> job form ->
 * canonical JSON (what the broker stores) -> job form -> wire form (what a node gets); the wire
 * gets the job file's checks; ids name output files and must not collide with line names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/job_wire.h"

static char s_err[1024];

static dq_wire_request_t s_wire(uint64_t line, const char *id) {
    dq_wire_request_t w = {.line = line, .image_first = 0, .image_count = 3, .prompt = "a cat",
                           .negative_prompt = "", .seed = 42, .steps = 30, .guidance = 7.5,
                           .width = 512, .height = 768, .num_images = 3};
    snprintf(w.scheduler, sizeof w.scheduler, "euler_a");
    snprintf(w.id, sizeof w.id, "%s", id);
    return w;
}

/* wire -> job -> JSON -> job -> wire, as submit then assign do in the broker. */
static void s_round_trip(const dq_wire_request_t *in) {
    dq_request_t a, b;
    uint32_t first = 99, count = 99;
    if (dq_request_from_wire("job 1", in, NULL, &a, &first, &count, s_err, sizeof s_err) != 0)
        fail_msg("from_wire: %s", s_err);
    assert_int_equal(first, in->image_first);
    assert_int_equal(count, in->image_count);
    assert_int_equal(a.id_assigned, in->id[0] == '\0');
    char *json = dq_request_to_json(&a);
    assert_non_null(json);
    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    if (dq_request_from_json("stored", (size_t) in->line, json, &limits, &b, s_err,
                             sizeof s_err) != 0)
        fail_msg("from_json: %s: %s", json, s_err);
    b.id_assigned = a.id_assigned; /* the store keeps this beside the JSON */
    dq_wire_request_t out;
    dq_request_to_wire(&b, in->image_first, in->image_count, &out);
    assert_int_equal(out.line, in->line);
    assert_int_equal(out.image_first, in->image_first);
    assert_int_equal(out.image_count, in->image_count);
    assert_string_equal(out.prompt, in->prompt);
    assert_string_equal(out.negative_prompt, in->negative_prompt);
    assert_true(out.seed == in->seed);
    assert_int_equal(out.steps, in->steps);
    assert_true(out.guidance == in->guidance);
    assert_int_equal(out.width, in->width);
    assert_int_equal(out.height, in->height);
    assert_string_equal(out.scheduler, in->scheduler[0] ? in->scheduler : "model");
    assert_int_equal(out.num_images, in->num_images);
    assert_string_equal(out.id, in->id);
    free(json);
    dq_request_clear(&a);
    dq_request_clear(&b);
}

static void test_round_trip(void **state) {
    (void) state;
    dq_wire_request_t w = s_wire(7, "");
    s_round_trip(&w);
    w = s_wire(8, "fox-01.v2");
    w.seed = UINT64_MAX; /* all 64 bits, above INT64_MAX */
    w.prompt = "\xc3\xa9t\xc3\xa9 \xe2\x98\x83 \"quoted\" \\ back\n\x01";
    w.negative_prompt = "blurry";
    w.guidance = 0.1;
    w.image_first = 1;
    w.image_count = 2;
    snprintf(w.scheduler, sizeof w.scheduler, "model");
    s_round_trip(&w);
    w.scheduler[0] = '\0'; /* "" is the model's own too */
    s_round_trip(&w);
}

/* What a raw client sends gets the job file's checks, with the line in the message. */
static void test_wire_gets_job_checks(void **state) {
    (void) state;
    struct {
        const char *what, *expect;
    } cases[] = {{"width", "job 1:5: field \"width\""},
                 {"id", "job 1:5: field \"id\""},
                 {"sched", "job 1:5: field \"scheduler\": unknown scheduler \"warp\""},
                 {"guidance", "job 1:5: field \"guidance_scale\""},
                 {"range", "job 1:5: images 2..4 are outside the request's 3"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dq_wire_request_t w = s_wire(5, "");
        if (!strcmp(cases[i].what, "width")) w.width = 13; /* not a multiple of 8 */
        if (!strcmp(cases[i].what, "id")) snprintf(w.id, sizeof w.id, "../etc/passwd");
        if (!strcmp(cases[i].what, "sched")) snprintf(w.scheduler, sizeof w.scheduler, "warp");
        if (!strcmp(cases[i].what, "guidance")) w.guidance = 99.0; /* job limit: 50 */
        if (!strcmp(cases[i].what, "range")) w.image_first = 2, w.image_count = 2;
        dq_request_t r;
        memset(&r, 0x5a, sizeof r);
        s_err[0] = '\0';
        assert_int_equal(
            dq_request_from_wire("job 1", &w, NULL, &r, NULL, NULL, s_err, sizeof s_err), -1);
        if (!strstr(s_err, cases[i].expect))
            fail_msg("%s: got \"%s\", expected \"%s\"", cases[i].what, s_err, cases[i].expect);
        assert_null(r.prompt); /* zeroed: nothing to free */
        assert_null(r.id);
    }
}

/* A node takes whatever the wire can carry; the broker applies the job format's limits. */
static void test_wire_limits(void **state) {
    (void) state;
    dq_wire_request_t w = s_wire(2, "");
    w.width = 32;       /* under the job format's 64 */
    w.guidance = 99.0;  /* over its 50 */
    w.num_images = 64;  /* over its 8 */
    w.image_count = 64;
    dq_request_t r;
    assert_int_equal(dq_request_from_wire("j", &w, NULL, &r, NULL, NULL, s_err, sizeof s_err), -1);
    dq_job_limits_t wide;
    dq_job_limits_wire(&wide);
    if (dq_request_from_wire("j", &w, &wide, &r, NULL, NULL, s_err, sizeof s_err) != 0)
        fail_msg("%s", s_err);
    assert_int_equal(r.width, 32);
    assert_int_equal(r.num_images_per_prompt, 64);
    dq_request_clear(&r);
    w.width = 12; /* the job rule "a multiple of 8" holds on the wire too */
    assert_int_equal(dq_request_from_wire("j", &w, &wide, &r, NULL, NULL, s_err, sizeof s_err),
                     -1);
}

static void test_from_json_checks_and_lines(void **state) {
    (void) state;
    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    dq_request_t r;
    assert_int_equal(dq_request_from_json("x", 12, "{\"prompt\":\"p\",\"seed\":1}", &limits, &r,
                                          s_err, sizeof s_err),
                     0);
    assert_int_equal(r.line, 12);
    assert_string_equal(r.id, "line-12");
    assert_true(r.id_assigned);
    dq_request_clear(&r);
    static const char *bad[] = {"", "{", "[]", "{\"seed\":1}", "{\"prompt\":1}",
                                "{\"prompt\":\"p\",\"num_inference_steps\":-1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(dq_request_from_json("x", 3, bad[i], &limits, &r, s_err, sizeof s_err),
                         -1);
        assert_null(r.prompt);
        assert_non_null(strstr(s_err, "x:3"));
    }
    assert_int_equal(dq_request_from_json("x", 0, "{\"prompt\":\"p\"}", &limits, &r, s_err,
                                          sizeof s_err),
                     -1);
}

static void test_output_stems(void **state) {
    (void) state;
    char buf[DQ_JOB_ID_MAX + 1];
    assert_int_equal(dq_job_output_stem(NULL, 12, buf, sizeof buf), 0);
    assert_string_equal(buf, "000012");
    assert_int_equal(dq_job_output_stem("cat.v2", 12, buf, sizeof buf), 0);
    assert_string_equal(buf, "cat.v2");
    assert_int_equal(dq_job_output_stem(".hidden", 1, buf, sizeof buf), -1);
    assert_int_equal(dq_job_output_stem("a/b", 1, buf, sizeof buf), -1);
    assert_int_equal(dq_job_output_stem(NULL, 0, buf, sizeof buf), -1);
    assert_int_equal(dq_job_output_stem(NULL, 1234567, buf, 4), -1);
    assert_true(dq_job_id_valid("A-z_0.9"));
    assert_false(dq_job_id_valid(""));
    assert_false(dq_job_id_valid("sp ace"));
}

/* An id that reads like another line's zero-padded number would name the same files: the job
 * file is refused with file:line errors, whichever line comes first. */
static void test_id_colliding_with_a_line_name(void **state) {
    (void) state;
    static const char *const files[2] = {
        "{\"prompt\":\"a\",\"seed\":1,\"id\":\"000003\"}\n{\"prompt\":\"b\",\"seed\":2}\n"
        "{\"prompt\":\"c\",\"seed\":3}\n",
        "{\"prompt\":\"a\",\"seed\":1}\n{\"prompt\":\"b\",\"seed\":2}\n"
        "{\"prompt\":\"c\",\"seed\":3,\"id\":\"000001\"}\n"};
    static const char *const expect[2] = {
        "f.jsonl:3: the line has no \"id\", so its files are named 000003-K.png, but line 1 has "
        "\"id\": \"000003\", which names the same files",
        "f.jsonl:3: field \"id\": \"000001\" names the same files (000001-K.png) as line 1, "
        "which has no \"id\""};
    for (int i = 0; i < 2; i++) {
        dq_job_limits_t limits;
        dq_job_limits_init(&limits);
        dq_errlist_t *errors = dq_errlist_new(10);
        dq_jobfile_t *f =
            dq_jobfile_parse_buffer("f.jsonl", files[i], strlen(files[i]), &limits, errors);
        assert_null(f);
        assert_int_equal(dq_errlist_count(errors), 1);
        assert_string_equal(dq_errlist_get(errors, 0), expect[i]);
        dq_errlist_destroy(&errors);
    }
    /* Ids that merely look numeric but name no line of the file are fine. */
    static const char ok[] = "{\"prompt\":\"a\",\"seed\":1,\"id\":\"000009\"}\n"
                             "{\"prompt\":\"b\",\"seed\":2}\n";
    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    dq_errlist_t *errors = dq_errlist_new(10);
    dq_jobfile_t *f = dq_jobfile_parse_buffer("f.jsonl", ok, strlen(ok), &limits, errors);
    assert_non_null(f);
    dq_jobfile_destroy(&f);
    dq_errlist_destroy(&errors);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_wire_gets_job_checks),
        cmocka_unit_test(test_wire_limits),
        cmocka_unit_test(test_from_json_checks_and_lines),
        cmocka_unit_test(test_output_stems),
        cmocka_unit_test(test_id_colliding_with_a_line_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
