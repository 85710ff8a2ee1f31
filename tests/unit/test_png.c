/* tests/unit/test_png.c: PNG encoding read back with libpng: exact pixels, text chunks and their
 * encodings, the AUTOMATIC1111 "parameters" text, file writes and clean errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>

#include "common/job.h"
#include "common/png_out.h"

/* What reading a PNG back gives. */
typedef struct {
    int width, height, bit_depth, color_type;
    uint8_t *rgb; /* owned */
    int ntexts;
    char *keys[8];  /* owned */
    char *texts[8]; /* owned, as stored (Latin-1 for tEXt, UTF-8 for iTXt) */
    int kinds[8];   /* png_text.compression: -1 tEXt, 1 iTXt */
} s_image_t;

typedef struct {
    const uint8_t *data;
    size_t len, pos;
} s_reader_t;

static void s_read_fn(png_structp png, png_bytep out, size_t n) {
    s_reader_t *r = png_get_io_ptr(png);
    if (n > r->len - r->pos) png_error(png, "read past end");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static void s_image_free(s_image_t *img) {
    free(img->rgb);
    for (int i = 0; i < img->ntexts; i++)
        free(img->keys[i]), free(img->texts[i]);
    memset(img, 0, sizeof *img);
}

/* Decodes PNG bytes with libpng; returns 0 or -1 when libpng rejects them. */
static int s_decode(const uint8_t *data, size_t len, s_image_t *img) {
    memset(img, 0, sizeof *img);
    if (len < 8 || png_sig_cmp(data, 0, 8) != 0) return -1;
    s_reader_t r = {data, len, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &r, s_read_fn);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    img->width = (int)png_get_image_width(png, info);
    img->height = (int)png_get_image_height(png, info);
    img->bit_depth = png_get_bit_depth(png, info);
    img->color_type = png_get_color_type(png, info);
    png_bytepp rows = png_get_rows(png, info);
    size_t stride = (size_t)img->width * 3;
    img->rgb = malloc(stride * (size_t)img->height);
    for (int y = 0; y < img->height; y++)
        memcpy(img->rgb + (size_t)y * stride, rows[y], stride);
    png_textp texts;
    int n = 0;
    png_get_text(png, info, &texts, &n);
    for (int i = 0; i < n && i < 8; i++) {
        img->keys[i] = strdup(texts[i].key);
        img->texts[i] = strdup(texts[i].text);
        img->kinds[i] = texts[i].compression;
    }
    img->ntexts = n < 8 ? n : 8;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* A deterministic test image with every byte value present. */
static uint8_t *s_pattern(int w, int h) {
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    uint32_t x = 12345;
    for (size_t i = 0; i < (size_t)w * (size_t)h * 3; i++) {
        x = x * 1103515245u + 12345u;
        rgb[i] = i < 256 ? (uint8_t)i : (uint8_t)(x >> 16);
    }
    return rgb;
}

static void test_encode_pixels_and_texts(void **state) {
    (void)state;
    int w = 67, h = 41; /* odd sizes catch stride mistakes */
    uint8_t *rgb = s_pattern(w, h);
    dq_png_text_t texts[] = {
        {"parameters", "caf\xc3\xa9 \xc2\xb5", DQ_PNG_TEXT_AUTO},    /* fits Latin-1 */
        {"wide", "\xe7\x8c\xab \xf0\x9f\xa6\x8a", DQ_PNG_TEXT_AUTO}, /* does not */
        {"diffq-request", "{\"prompt\":\"x\"}", DQ_PNG_TEXT_ITXT},   /* forced iTXt */
    };
    uint8_t *png = NULL;
    size_t len = 0;
    char err[256] = "";
    assert_int_equal(dq_png_encode(rgb, w, h, texts, 3, &png, &len, err, sizeof err), 0);
    assert_non_null(png);
    assert_true(len > 8);
    s_image_t img;
    assert_int_equal(s_decode(png, len, &img), 0);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    assert_int_equal(img.bit_depth, 8);
    assert_int_equal(img.color_type, PNG_COLOR_TYPE_RGB);
    assert_memory_equal(img.rgb, rgb, (size_t)w * (size_t)h * 3);
    assert_int_equal(img.ntexts, 3);
    assert_string_equal(img.keys[0], "parameters");
    assert_int_equal(img.kinds[0], PNG_TEXT_COMPRESSION_NONE);
    assert_string_equal(img.texts[0], "caf\xe9 \xb5"); /* stored as Latin-1 */
    assert_string_equal(img.keys[1], "wide");
    assert_int_equal(img.kinds[1], PNG_ITXT_COMPRESSION_NONE);
    assert_string_equal(img.texts[1], "\xe7\x8c\xab \xf0\x9f\xa6\x8a");
    assert_string_equal(img.keys[2], "diffq-request");
    assert_int_equal(img.kinds[2], PNG_ITXT_COMPRESSION_NONE);
    assert_string_equal(img.texts[2], "{\"prompt\":\"x\"}");
    /* The text chunks come before the image data, where streaming readers look. */
    const uint8_t *idat = memmem(png, len, "IDAT", 4);
    const uint8_t *text = memmem(png, len, "tEXtparameters", 14);
    assert_non_null(idat);
    assert_non_null(text);
    assert_true(text < idat);
    s_image_free(&img);
    free(png);
    free(rgb);
}

static void test_no_texts_one_pixel(void **state) {
    (void)state;
    uint8_t rgb[3] = {1, 2, 3};
    uint8_t *png = NULL;
    size_t len = 0;
    char err[256];
    assert_int_equal(dq_png_encode(rgb, 1, 1, NULL, 0, &png, &len, err, sizeof err), 0);
    s_image_t img;
    assert_int_equal(s_decode(png, len, &img), 0);
    assert_int_equal(img.width, 1);
    assert_memory_equal(img.rgb, rgb, 3);
    assert_int_equal(img.ntexts, 0);
    s_image_free(&img);
    free(png);
}

static void test_bad_arguments(void **state) {
    (void)state;
    uint8_t rgb[12] = {0};
    uint8_t *png = (uint8_t *)1;
    size_t len = 99;
    char err[256];
    assert_int_equal(dq_png_encode(rgb, 0, 2, NULL, 0, &png, &len, err, sizeof err), -1);
    assert_null(png);
    assert_int_equal(len, 0);
    assert_string_equal(err, "png: image size 0x2 is outside 1..65536");
    assert_int_equal(dq_png_encode(rgb, 2, 70000, NULL, 0, &png, &len, err, sizeof err), -1);

    const char *bad_keys[] = {"",
                              " lead",
                              "trail ",
                              "two  spaces",
                              "caf\xc3\xa9",
                              "0123456789012345678901234567890123456789012345678901234567890123"
                              "4567890123456789"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        dq_png_text_t t = {bad_keys[i], "x", DQ_PNG_TEXT_AUTO};
        assert_int_equal(dq_png_encode(rgb, 2, 2, &t, 1, &png, &len, err, sizeof err), -1);
        assert_non_null(strstr(err, "keyword 0 is not 1..79 printable ASCII"));
    }
    /* 79 characters is the longest keyword. */
    dq_png_text_t longest = {bad_keys[5] + 1, "x", DQ_PNG_TEXT_AUTO};
    assert_int_equal(strlen(longest.key), 79);
    assert_int_equal(dq_png_encode(rgb, 2, 2, &longest, 1, &png, &len, err, sizeof err), 0);
    free(png);
    dq_png_text_t bad_utf8 = {"parameters", "a\xff", DQ_PNG_TEXT_AUTO};
    assert_int_equal(dq_png_encode(rgb, 2, 2, &bad_utf8, 1, &png, &len, err, sizeof err), -1);
    assert_string_equal(err, "png: text \"parameters\" is not valid UTF-8 (byte 1)");
    assert_null(png);
}

static void test_write_file(void **state) {
    (void)state;
    char dir[] = "/tmp/dq-test-png-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/out.png", dir);
    int w = 16, h = 9;
    uint8_t *rgb = s_pattern(w, h);
    dq_png_text_t t = {"parameters", "a cat", DQ_PNG_TEXT_AUTO};
    char err[256] = "";
    assert_int_equal(dq_png_write_file(path, rgb, w, h, &t, 1, err, sizeof err), 0);

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[65536];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    s_image_t img;
    assert_int_equal(s_decode(buf, len, &img), 0);
    assert_memory_equal(img.rgb, rgb, (size_t)w * (size_t)h * 3);
    assert_string_equal(img.texts[0], "a cat");
    s_image_free(&img);

    /* Overwriting is atomic and leaves no temporary behind. */
    assert_int_equal(dq_png_write_file(path, rgb, w, h, NULL, 0, err, sizeof err), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test \"$(ls %s)\" = out.png", dir);
    assert_int_equal(system(cmd), 0);
    unlink(path);
    rmdir(dir);
    free(rgb);
}

static void test_unwritable_path(void **state) {
    (void)state;
    uint8_t rgb[3] = {0, 0, 0};
    char err[256] = "";
    assert_int_equal(
        dq_png_write_file("/nonexistent-dir/x/out.png", rgb, 1, 1, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/x/out.png.tmp-"));
    assert_non_null(strstr(err, ": cannot create: No such file or directory"));

    /* A directory in the way of the rename: the temporary is cleaned up. */
    char dir[] = "/tmp/dq-test-png-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/taken", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    char sub[160];
    snprintf(sub, sizeof sub, "%s/inner", path);
    assert_int_equal(mkdir(sub, 0700), 0); /* rename over a non-empty directory fails */
    assert_int_equal(dq_png_write_file(path, rgb, 1, 1, NULL, 0, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s: cannot rename into place: Is a directory", path);
    assert_string_equal(err, want);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test \"$(ls %s)\" = taken", dir);
    assert_int_equal(system(cmd), 0);
    rmdir(sub);
    rmdir(path);
    rmdir(dir);
}

/* Parses one job line for the parameters tests. */
static dq_request_t s_request(const char *line) {
    dq_job_limits_t limits;
    dq_job_limits_init(&limits);
    dq_errlist_t *errors = dq_errlist_new(4);
    dq_jobparser_t *p = dq_jobparser_new("t", &limits, errors);
    dq_request_t req;
    int rc = dq_jobparser_line(p, line, strlen(line), strlen(line), &req);
    if (rc != 1) dq_errlist_print(errors, stderr);
    assert_int_equal(rc, 1);
    dq_jobparser_destroy(&p);
    dq_errlist_destroy(&errors);
    return req;
}

static void test_parameters_text(void **state) {
    (void)state;
    dq_request_t req =
        s_request("{\"prompt\":\"a cat\",\"negative_prompt\":\"blurry\","
                  "\"seed\":42,\"num_inference_steps\":20,\"scheduler\":\"euler_a\"}");
    char *text = dq_png_parameters_text(&req, DQ_SCHED_PNDM, "v1-5-pruned-emaonly", 0);
    assert_string_equal(text, "a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG "
                              "scale: 7.5, Seed: 42, Size: 512x512, Model: v1-5-pruned-emaonly");
    free(text);
    dq_request_clear(&req);

    /* No negative prompt: no line for it; the model's scheduler fills in; batch entries. */
    req = s_request("{\"prompt\":\"a dog\",\"seed\":18446744073709551615,\"guidance_scale\":7,"
                    "\"width\":640,\"height\":384,\"num_images_per_prompt\":4}");
    text = dq_png_parameters_text(&req, DQ_SCHED_PNDM, "sd:1,5", 2);
    assert_string_equal(text, "a dog\nSteps: 50, Sampler: PNDM, CFG scale: 7.0, "
                              "Seed: 18446744073709551615, Size: 640x384, Model: \"sd:1,5\", "
                              "Batch size: 4, Batch pos: 2");
    free(text);
    /* Nothing known about the sampler or model: both left out. */
    text = dq_png_parameters_text(&req, DQ_SCHED_MODEL, NULL, 0);
    assert_string_equal(text, "a dog\nSteps: 50, CFG scale: 7.0, Seed: 18446744073709551615, "
                              "Size: 640x384, Batch size: 4, Batch pos: 0");
    free(text);
    dq_request_clear(&req);
}

static void test_encode_request(void **state) {
    (void)state;
    dq_request_t req = s_request("{\"id\":\"neko\",\"prompt\":\"\\u732b, ink\",\"seed\":7,"
                                 "\"scheduler\":\"dpmpp_2m_karras\"}");
    int w = 8, h = 8;
    uint8_t *rgb = s_pattern(w, h);
    uint8_t *png = NULL;
    size_t len = 0;
    char err[256] = "";
    assert_int_equal(dq_png_encode_request(rgb, w, h, &req, DQ_SCHED_PNDM, "sd15", 0, &png, &len,
                                           err, sizeof err),
                     0);
    s_image_t img;
    assert_int_equal(s_decode(png, len, &img), 0);
    assert_memory_equal(img.rgb, rgb, (size_t)w * (size_t)h * 3);
    assert_int_equal(img.ntexts, 2);
    /* A prompt outside Latin-1 makes "parameters" an iTXt chunk, as Pillow does for the webui. */
    assert_string_equal(img.keys[0], "parameters");
    assert_int_equal(img.kinds[0], PNG_ITXT_COMPRESSION_NONE);
    assert_string_equal(img.texts[0], "\xe7\x8c\xab, ink\nSteps: 50, Sampler: DPM++ 2M Karras, "
                                      "CFG scale: 7.5, Seed: 7, Size: 512x512, Model: sd15");
    assert_string_equal(img.keys[1], "diffq-request");
    assert_int_equal(img.kinds[1], PNG_ITXT_COMPRESSION_NONE);
    char *json = dq_request_to_json(&req);
    assert_string_equal(img.texts[1], json);
    free(json);
    s_image_free(&img);
    free(png);
    free(rgb);
    dq_request_clear(&req);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_pixels_and_texts), cmocka_unit_test(test_no_texts_one_pixel),
        cmocka_unit_test(test_bad_arguments),           cmocka_unit_test(test_write_file),
        cmocka_unit_test(test_unwritable_path),         cmocka_unit_test(test_parameters_text),
        cmocka_unit_test(test_encode_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
