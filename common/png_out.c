/* common/png_out.c: PNG encoding with libpng (errors caught with setjmp), atomic file writes,
 * and the AUTOMATIC1111-style "parameters" text. */
#include "common/png_out.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <png.h>

/* Where libpng's error callback leaves its message, and the growing output buffer. Lives in the
 * caller's frame, so nothing in it changes across the longjmp. */
typedef struct {
    char msg[256];
    uint8_t *data; /* owned until handed to the caller */
    size_t len, cap;
} s_encoder_t;

static void s_png_error(png_structp png, png_const_charp msg) {
    s_encoder_t *enc = png_get_error_ptr(png);
    snprintf(enc->msg, sizeof enc->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void s_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. about ancillary chunks) do not fail the image */
}

static void s_png_write(png_structp png, png_bytep bytes, size_t n) {
    s_encoder_t *enc = png_get_io_ptr(png);
    if (n > SIZE_MAX / 2 - enc->len) png_error(png, "image too large");
    if (enc->len + n > enc->cap) {
        size_t cap = enc->cap ? enc->cap : 64 * 1024;
        while (cap < enc->len + n)
            cap *= 2;
        uint8_t *data = realloc(enc->data, cap);
        if (!data) png_error(png, "out of memory");
        enc->data = data;
        enc->cap = cap;
    }
    memcpy(enc->data + enc->len, bytes, n);
    enc->len += n;
}

static void s_png_flush(png_structp png) {
    (void)png;
}

static void s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* PNG keyword rules (PNG spec 11.3.4.3), kept to printable ASCII. */
static bool s_keyword_ok(const char *key) {
    size_t n = strlen(key);
    if (n < 1 || n > 79 || key[0] == ' ' || key[n - 1] == ' ') return false;
    for (size_t i = 0; i < n; i++) {
        if (key[i] < 0x20 || key[i] > 0x7e) return false;
        if (key[i] == ' ' && key[i + 1] == ' ') return false;
    }
    return true;
}

/* The Latin-1 bytes of valid UTF-8 `text` in a new string, or NULL when some character is above
 * U+00FF (or out of memory: *oom is set). */
static char *s_to_latin1(const char *text, bool *oom) {
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    if (!out) {
        *oom = true;
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else if (c == 0xC2 || c == 0xC3) {
            out[o++] = (char)(((c & 0x03) << 6) | ((unsigned char)text[i + 1] & 0x3F));
            i += 2;
        } else {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    return out;
}

/* The part of encoding between setjmp and the end: nothing here may own memory that a longjmp
 * would leak, so the caller allocates rows, texts and the Latin-1 copies. */
static int s_encode(png_structp png, png_infop info, s_encoder_t *enc, int width, int height,
                    png_bytep *rows, png_textp ptexts, int ntexts) {
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_write_fn(png, enc, s_png_write, s_png_flush);
    /* zlib's fastest level after libpng's per-row adaptive filters: on 512x512 images it
     * encodes 3.2-4.8x faster than the default level 6 for files 1.6-7.5% larger
     * (bench/png_encode, bench/RESULTS.md). Run-length deflate was faster still but 37% larger on a patterned
     * image. A GPU rank encodes every image it renders. */
    png_set_compression_level(png, 1);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ntexts > 0) png_set_text(png, info, ptexts, ntexts);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    return 0;
}

int dq_png_encode(const uint8_t *rgb, int width, int height, const dq_png_text_t *texts,
                  size_t ntexts, uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    if (width < 1 || height < 1 || width > DQ_PNG_MAX_SIDE || height > DQ_PNG_MAX_SIDE) {
        s_err(err, errlen, "png: image size %dx%d is outside 1..%d", width, height,
              DQ_PNG_MAX_SIDE);
        return -1;
    }
    if (ntexts > 64) {
        s_err(err, errlen, "png: %zu text chunks, the most is 64", ntexts);
        return -1;
    }
    for (size_t i = 0; i < ntexts; i++) {
        if (!texts[i].key || !s_keyword_ok(texts[i].key)) {
            s_err(err, errlen,
                  "png: text keyword %zu is not 1..79 printable ASCII characters without "
                  "leading, trailing or double spaces",
                  i);
            return -1;
        }
        size_t n = texts[i].text ? strlen(texts[i].text) : 0;
        size_t bad = texts[i].text ? dq_utf8_check(texts[i].text, n) : 0;
        if (!texts[i].text || bad < n) {
            s_err(err, errlen, "png: text \"%s\" is not valid UTF-8 (byte %zu)", texts[i].key, bad);
            return -1;
        }
        if ((unsigned)texts[i].mode >= DQ_PNG_TEXT_MODE_COUNT) {
            s_err(err, errlen, "png: text \"%s\" has an unknown mode", texts[i].key);
            return -1;
        }
    }

    int rc = -1;
    s_encoder_t enc = {.msg = ""};
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *rows = malloc((size_t)height * sizeof *rows);
    png_textp ptexts = calloc(ntexts ? ntexts : 1, sizeof *ptexts);
    char **latin1 = calloc(ntexts ? ntexts : 1, sizeof *latin1); /* owned copies */
    if (!rows || !ptexts || !latin1) {
        s_err(err, errlen, "png: out of memory");
        goto done;
    }
    for (int y = 0; y < height; y++)
        rows[y] = (png_bytep)(uintptr_t)(rgb + (size_t)y * (size_t)width * 3); /* not written */
    for (size_t i = 0; i < ntexts; i++) {
        png_textp t = &ptexts[i];
        t->key = (png_charp)(uintptr_t)texts[i].key;
        bool oom = false;
        if (texts[i].mode == DQ_PNG_TEXT_AUTO) latin1[i] = s_to_latin1(texts[i].text, &oom);
        if (oom) {
            s_err(err, errlen, "png: out of memory");
            goto done;
        }
        if (latin1[i]) {
            t->compression = PNG_TEXT_COMPRESSION_NONE; /* tEXt */
            t->text = latin1[i];
            t->text_length = strlen(latin1[i]);
        } else {
            t->compression = PNG_ITXT_COMPRESSION_NONE; /* iTXt */
            t->text = (png_charp)(uintptr_t)texts[i].text;
            t->itxt_length = strlen(texts[i].text);
            t->lang = (png_charp) "";
            t->lang_key = (png_charp) "";
        }
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &enc, s_png_error, s_png_warning);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        s_err(err, errlen, "png: cannot start libpng (out of memory?)");
        goto done;
    }
    if (s_encode(png, info, &enc, width, height, rows, ptexts, (int)ntexts) < 0) {
        s_err(err, errlen, "png: %s", enc.msg[0] ? enc.msg : "libpng failed");
        goto done;
    }
    *out = enc.data;
    *outlen = enc.len;
    enc.data = NULL;
    rc = 0;
done:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    for (size_t i = 0; latin1 && i < ntexts; i++)
        free(latin1[i]);
    free(latin1);
    free(ptexts);
    free(rows);
    free(enc.data);
    return rc;
}

int dq_png_save_bytes(const char *path, const uint8_t *bytes, size_t len, char *err,
                      size_t errlen) {
    static unsigned s_counter; /* tells apart temporaries of one process */
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp-%ld-%u", path, (long)getpid(),
                 __atomic_add_fetch(&s_counter, 1, __ATOMIC_RELAXED)) < 0) {
        s_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        s_err(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *what = NULL;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, bytes + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            what = "cannot write";
            break;
        }
        done += (size_t)n;
    }
    if (!what && fsync(fd) < 0) what = "cannot flush";
    int saved = errno;
    if (close(fd) < 0 && !what) what = "cannot close", saved = errno;
    if (!what && rename(tmp, path) < 0) what = "cannot rename into place", saved = errno;
    if (what) {
        s_err(err, errlen, "%s: %s: %s", path, what, strerror(saved ? saved : EIO));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int dq_png_write_file(const char *path, const uint8_t *rgb, int width, int height,
                      const dq_png_text_t *texts, size_t ntexts, char *err, size_t errlen) {
    uint8_t *png = NULL;
    size_t len = 0;
    if (dq_png_encode(rgb, width, height, texts, ntexts, &png, &len, err, errlen) < 0) return -1;
    int rc = dq_png_save_bytes(path, png, len, err, errlen);
    free(png);
    return rc;
}

/* Appends ", Key: value" (no comma first) to *text, quoting the value as the webui's quote()
 * does: as a JSON string when it holds ',', ':' or a newline. Frees *text and sets it NULL when
 * out of memory. */
static void s_param(char **text, bool first, const char *key, const char *value) {
    if (!*text) return;
    char *quoted = NULL;
    if (strpbrk(value, ",:\n")) {
        json_t *s = json_string(value);
        quoted = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        json_decref(s);
        if (!quoted) {
            free(*text);
            *text = NULL;
            return;
        }
    }
    char *next = NULL;
    if (asprintf(&next, "%s%s%s: %s", *text, first ? "" : ", ", key, quoted ? quoted : value) < 0)
        next = NULL;
    free(quoted);
    free(*text);
    *text = next;
}

char *dq_png_parameters_text(const dq_request_t *req, dq_scheduler_t model_scheduler,
                             const char *model, int index) {
    const char *neg = req->negative_prompt ? req->negative_prompt : "";
    char *text = NULL;
    if (asprintf(&text, "%s%s%s\n", req->prompt ? req->prompt : "",
                 neg[0] ? "\nNegative prompt: " : "", neg) < 0)
        return NULL;
    char num[48];
    snprintf(num, sizeof num, "%d", req->num_inference_steps);
    s_param(&text, true, "Steps", num);
    dq_scheduler_t sched = req->scheduler != DQ_SCHED_MODEL ? req->scheduler : model_scheduler;
    const char *sampler = dq_scheduler_a1111_name(sched);
    if (sampler) s_param(&text, false, "Sampler", sampler);
    s_param(&text, false, "CFG scale", dq_job_format_double(req->guidance_scale, num, sizeof num));
    snprintf(num, sizeof num, "%" PRIu64, req->seed);
    s_param(&text, false, "Seed", num);
    snprintf(num, sizeof num, "%dx%d", req->width, req->height);
    s_param(&text, false, "Size", num);
    if (model) s_param(&text, false, "Model", model);
    if (req->num_images_per_prompt > 1) {
        snprintf(num, sizeof num, "%d", req->num_images_per_prompt);
        s_param(&text, false, "Batch size", num);
        snprintf(num, sizeof num, "%d", index);
        s_param(&text, false, "Batch pos", num);
    }
    return text;
}

int dq_png_encode_request(const uint8_t *rgb, int width, int height, const dq_request_t *req,
                          dq_scheduler_t model_scheduler, const char *model, int index,
                          uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    char *params = dq_png_parameters_text(req, model_scheduler, model, index);
    char *json = dq_request_to_json(req);
    int rc = -1;
    if (!params || !json) {
        s_err(err, errlen, "png: out of memory");
    } else {
        dq_png_text_t texts[2] = {
            {DQ_PNG_KEY_PARAMETERS, params, DQ_PNG_TEXT_AUTO},
            {DQ_PNG_KEY_REQUEST, json, DQ_PNG_TEXT_ITXT},
        };
        rc = dq_png_encode(rgb, width, height, texts, 2, out, outlen, err, errlen);
    }
    free(params);
    free(json);
    return rc;
}
