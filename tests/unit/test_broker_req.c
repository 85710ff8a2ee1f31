/* tests/unit/test_broker_req.c: a wire request survives the broker's stored JSON form exactly
 * (all 64 seed bits, UTF-8 prompts, guidance), and damaged JSON is refused, not half read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/server_int.h"

static void s_roundtrip(const dq_wire_request_t *in) {
    char *json = dq_server_req_to_json(in);
    assert_non_null(json);
    dq_wire_request_t out;
    assert_int_equal(dq_server_req_from_json(json, in->line, &out), 0);
    assert_int_equal(out.line, in->line);
    assert_int_equal(out.image_first, 0);
    assert_int_equal(out.image_count, in->num_images);
    assert_string_equal(out.prompt, in->prompt);
    assert_string_equal(out.negative_prompt, in->negative_prompt);
    assert_true(out.seed == in->seed);
    assert_int_equal(out.steps, in->steps);
    assert_true(out.guidance == in->guidance);
    assert_int_equal(out.width, in->width);
    assert_int_equal(out.height, in->height);
    assert_string_equal(out.scheduler, in->scheduler);
    assert_int_equal(out.num_images, in->num_images);
    free(out.prompt);
    free(out.negative_prompt);
    free(json);
}

static void test_roundtrip(void **state) {
    (void)state;
    dq_wire_request_t r = {.line = 7, .image_first = 0, .image_count = 3, .prompt = "a cat",
                      .negative_prompt = "", .seed = 42, .steps = 30, .guidance = 7.5,
                      .width = 512, .height = 768, .scheduler = "euler_a", .num_images = 3};
    s_roundtrip(&r);
    r.seed = UINT64_MAX; /* above INT64_MAX: kept as its bit pattern */
    r.prompt = "\xc3\xa9t\xc3\xa9 \xe2\x98\x83 \"quoted\" \\ back";
    r.negative_prompt = "blurry";
    r.guidance = 0.1;
    snprintf(r.scheduler, sizeof r.scheduler, "model");
    s_roundtrip(&r);
}

static void test_bad_json(void **state) {
    (void)state;
    static const char *bad[] = {
        "",
        "{",
        "[]",
        "{\"prompt\":\"x\"}",
        "{\"prompt\":1,\"negative_prompt\":\"\",\"seed\":1,\"num_inference_steps\":1,"
        "\"guidance_scale\":1,\"width\":8,\"height\":8,\"num_images_per_prompt\":1,"
        "\"scheduler\":\"ddim\"}",
        "{\"prompt\":\"x\",\"negative_prompt\":\"\",\"seed\":1,\"num_inference_steps\":-1,"
        "\"guidance_scale\":1,\"width\":8,\"height\":8,\"num_images_per_prompt\":1,"
        "\"scheduler\":\"ddim\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dq_wire_request_t out;
        memset(&out, 0x5a, sizeof out);
        assert_int_equal(dq_server_req_from_json(bad[i], 1, &out), -1);
        assert_null(out.prompt); /* cleared, nothing to free */
        assert_null(out.negative_prompt);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
