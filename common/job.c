/* common/job.c: the JSONL job format: line parsing and validation, canonical JSON, error lists. */
#include "common/job.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

/* ---- Schedulers ------------------------------------------------------------------------------ */

static const struct {
    const char *name;  /* job-file spelling */
    const char *klass; /* diffusers class */
    const char *a1111; /* AUTOMATIC1111 webui sampler name */
} s_schedulers[DQ_SCHED_COUNT] = {
    [DQ_SCHED_MODEL] = {"model", NULL, NULL},
    [DQ_SCHED_PNDM] = {"pndm", "PNDMScheduler", "PNDM"},
    [DQ_SCHED_DDIM] = {"ddim", "DDIMScheduler", "DDIM"},
    [DQ_SCHED_EULER] = {"euler", "EulerDiscreteScheduler", "Euler"},
    [DQ_SCHED_EULER_A] = {"euler_a", "EulerAncestralDiscreteScheduler", "Euler a"},
    [DQ_SCHED_LMS] = {"lms", "LMSDiscreteScheduler", "LMS"},
    [DQ_SCHED_DPMPP_2M] = {"dpmpp_2m", "DPMSolverMultistepScheduler", "DPM++ 2M"},
    [DQ_SCHED_DPMPP_2M_KARRAS] = {"dpmpp_2m_karras", "DPMSolverMultistepScheduler",
                                  "DPM++ 2M Karras"},
};

const char *dq_scheduler_name(dq_scheduler_t sched) {
    return (unsigned)sched < DQ_SCHED_COUNT ? s_schedulers[sched].name : NULL;
}

const char *dq_scheduler_diffusers_class(dq_scheduler_t sched) {
    return (unsigned)sched < DQ_SCHED_COUNT ? s_schedulers[sched].klass : NULL;
}

const char *dq_scheduler_a1111_name(dq_scheduler_t sched) {
    return (unsigned)sched < DQ_SCHED_COUNT ? s_schedulers[sched].a1111 : NULL;
}

int dq_scheduler_parse(const char *name) {
    for (int i = DQ_SCHED_MODEL + 1; i < DQ_SCHED_COUNT; i++)
        if (strcmp(name, s_schedulers[i].name) == 0) return i;
    return -1;
}

/* ---- Limits ---------------------------------------------------------------------------------- */

void dq_job_limits_init(dq_job_limits_t *limits) {
    *limits = (dq_job_limits_t){
        .min_size = 64,
        .max_size = 2048,
        .default_width = 512, /* SD 1.x was trained at 512x512 */
        .default_height = 512,
        .max_steps = 1000, /* the training schedule has 1000 timesteps */
        .default_steps = 50,
        .max_guidance_scale = 50.0, /* beyond ~30 images saturate; 50 leaves room to explore */
        .default_guidance_scale = 7.5,
        .max_images_per_prompt = 8,
        .max_line_bytes = 64 * 1024,
        .max_requests = 100000,
    };
}

/* ---- Seeds ----------------------------------------------------------------------------------- */

static dq_job_random_fn s_random = getrandom;

void dq_job_set_random_fn(dq_job_random_fn fn) {
    s_random = fn ? fn : getrandom;
}

/* ---- Requests -------------------------------------------------------------------------------- */

void dq_request_clear(dq_request_t *req) {
    free(req->id);
    free(req->prompt);
    free(req->negative_prompt);
    memset(req, 0, sizeof *req);
}

int dq_request_copy(dq_request_t *dst, const dq_request_t *src) {
    *dst = *src;
    dst->id = src->id ? strdup(src->id) : NULL;
    dst->prompt = src->prompt ? strdup(src->prompt) : NULL;
    dst->negative_prompt = src->negative_prompt ? strdup(src->negative_prompt) : NULL;
    if ((src->id && !dst->id) || (src->prompt && !dst->prompt) ||
        (src->negative_prompt && !dst->negative_prompt)) {
        dq_request_clear(dst);
        return -1;
    }
    return 0;
}

char *dq_job_format_double(double value, char *buf, size_t len) {
    if (!isfinite(value)) {
        snprintf(buf, len, "%s", isnan(value) ? "nan" : value > 0 ? "inf" : "-inf");
        return buf;
    }
    /* Like Python's repr(): the fewest significant digits that read back exactly (17 always
     * do), written in fixed notation when the decimal exponent is in [-4, 16), else as %e. */
    int prec = 1;
    char sci[40];
    for (; prec < 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, value);
        if (strtod(sci, NULL) == value) break;
    }
    snprintf(sci, sizeof sci, "%.*e", prec - 1, value);
    int exp10 = atoi(strchr(sci, 'e') + 1);
    if (exp10 >= -4 && exp10 < 16) {
        int decimals = prec - 1 - exp10;
        snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, value);
        if (!strchr(buf, '.')) {
            size_t n = strlen(buf);
            if (n + 3 <= len) memcpy(buf + n, ".0", 3);
        }
    } else {
        /* Python drops trailing zeros of the mantissa the same way: %.{p-1}e has none. */
        snprintf(buf, len, "%.*e", prec - 1, value);
        char *e = strchr(buf, 'e');
        if (prec == 1 && e && e > buf && e[-1] == '.') memmove(e - 1, e, strlen(e) + 1);
    }
    return buf;
}

/* A growing string for building JSON. On allocation failure `failed` is set and appends stop. */
typedef struct {
    char *data; /* owned */
    size_t len, cap;
    bool failed;
} s_buf_t;

static void s_buf_append(s_buf_t *b, const char *text, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void s_buf_printf(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_buf_printf(s_buf_t *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->failed = true; /* only used for short numbers */
    else
        s_buf_append(b, tmp, (size_t)n);
}

/* Appends "key":"value" with the value escaped by jansson (UTF-8 kept as is). */
static void s_buf_string_field(s_buf_t *b, const char *key, const char *value, bool first) {
    s_buf_printf(b, "%s\"%s\":", first ? "" : ",", key);
    json_t *str = json_string(value);
    char *text = str ? json_dumps(str, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    if (text)
        s_buf_append(b, text, strlen(text));
    else
        b->failed = true;
    free(text);
    json_decref(str);
}

char *dq_request_to_json(const dq_request_t *req) {
    s_buf_t b = {0};
    char num[40];
    s_buf_append(&b, "{", 1);
    s_buf_string_field(&b, "id", req->id ? req->id : "", true);
    s_buf_string_field(&b, "prompt", req->prompt ? req->prompt : "", false);
    s_buf_string_field(&b, "negative_prompt", req->negative_prompt ? req->negative_prompt : "",
                       false);
    s_buf_printf(&b, ",\"seed\":%" PRIu64, req->seed);
    s_buf_printf(&b, ",\"num_inference_steps\":%d", req->num_inference_steps);
    s_buf_printf(&b, ",\"guidance_scale\":%s",
                 dq_job_format_double(req->guidance_scale, num, sizeof num));
    s_buf_printf(&b, ",\"width\":%d,\"height\":%d", req->width, req->height);
    s_buf_printf(&b, ",\"num_images_per_prompt\":%d", req->num_images_per_prompt);
    if (req->scheduler != DQ_SCHED_MODEL && dq_scheduler_name(req->scheduler))
        s_buf_string_field(&b, "scheduler", dq_scheduler_name(req->scheduler), false);
    s_buf_append(&b, "}", 1);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* ---- Error lists ----------------------------------------------------------------------------- */

struct dq_errlist_t {
    char **msgs;  /* owned, `kept` owned strings */
    size_t kept;  /* messages stored */
    size_t cap;   /* most messages stored */
    size_t count; /* messages added, stored or not */
};

dq_errlist_t *dq_errlist_new(size_t cap) {
    dq_errlist_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->cap = cap ? cap : 1;
    self->msgs = calloc(self->cap, sizeof *self->msgs);
    if (!self->msgs) {
        free(self);
        return NULL;
    }
    return self;
}

void dq_errlist_destroy(dq_errlist_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_errlist_t *self = *self_p;
    for (size_t i = 0; i < self->kept; i++)
        free(self->msgs[i]);
    free(self->msgs);
    free(self);
    *self_p = NULL;
}

void dq_errlist_add(dq_errlist_t *self, const char *fmt, ...) {
    self->count++;
    if (self->kept >= self->cap) return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) >= 0) self->msgs[self->kept++] = msg;
    va_end(ap);
}

size_t dq_errlist_count(const dq_errlist_t *self) {
    return self->count;
}
size_t dq_errlist_kept(const dq_errlist_t *self) {
    return self->kept;
}

const char *dq_errlist_get(const dq_errlist_t *self, size_t i) {
    return i < self->kept ? self->msgs[i] : NULL;
}

int dq_errlist_print(const dq_errlist_t *self, FILE *out) {
    int lines = 0;
    for (size_t i = 0; i < self->kept; i++, lines++)
        if (fprintf(out, "%s\n", self->msgs[i]) < 0) return -1;
    if (self->count > self->kept) {
        size_t more = self->count - self->kept;
        if (fprintf(out, "and %zu more error%s\n", more, more == 1 ? "" : "s") < 0) return -1;
        lines++;
    }
    return lines;
}

/* ---- Line scanning --------------------------------------------------------------------------- */

size_t dq_utf8_check(const void *bytes, size_t len) {
    const unsigned char *s = bytes;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == 0) return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return i;
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n + 1;
    }
    return len;
}

/* Where one top-level member's value is in the line, as written. */
typedef struct {
    const char *text; /* borrowed, into the caller's line */
    size_t len;
    bool big; /* an integer literal outside int64: jansson got "0" instead */
} s_span_t;

#define S_MAX_SPANS 64 /* more members than this cannot all be valid (there are 10 fields) */

/* Walks a line holding one JSON object, recording where each top-level member's value is (in
 * order; jansson keeps members in that order too) in spans[], and rewriting, in `copy` (same
 * length as `line`), each integer literal too large for jansson's int64 into "0" and spaces, so
 * seeds up to 2^64-1 parse and out-of-range numbers are reported by us with the text as written.
 * Text that is not JSON is left for jansson to report. Returns the number of spans recorded. */
static size_t s_scan(const char *line, char *copy, size_t len, s_span_t *spans, size_t max) {
    size_t nspans = 0, i = 0;
    int depth = 0;
    bool want_value = false; /* at depth 1, after ':' */
    size_t value_start = 0;
    bool in_value = false;
    while (i < len) {
        char c = line[i];
        size_t start = i;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
            continue;
        }
        bool value_begins = depth == 1 && want_value;
        if (value_begins) {
            want_value = false;
            in_value = true;
            value_start = start;
        }
        if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
        } else if (c == ':') {
            if (depth == 1) want_value = true;
            i++;
        } else if (c == ',') {
            i++;
        } else if (c == '"') {
            for (i++; i < len && line[i] != '"'; i++)
                if (line[i] == '\\' && i + 1 < len) i++;
            if (i < len) i++;
        } else {
            while (i < len && !strchr(" \t\r\n,:{}[]\"", line[i]))
                i++;
            /* An integer literal jansson cannot hold: -?[1-9][0-9]* beyond int64 (a leading
             * zero makes it invalid JSON, which jansson must see). The line need not be
             * NUL-terminated, so the token is measured and copied before strtoll sees it. */
            size_t n = i - start, neg = line[start] == '-', digits = 0;
            while (neg + digits < n && line[start + neg + digits] >= '0' &&
                   line[start + neg + digits] <= '9')
                digits++;
            if (neg + digits == n && digits >= 19 && digits < 64 && line[start + neg] != '0') {
                char num[72];
                memcpy(num, line + start, n);
                num[n] = '\0';
                errno = 0;
                (void)strtoll(num, NULL, 10);
                if (errno == ERANGE) {
                    copy[start] = '0';
                    memset(copy + start + 1, ' ', n - 1);
                    if (value_begins && nspans < max) spans[nspans].big = true;
                }
            }
        }
        if (in_value && depth == 1 && nspans < max) {
            spans[nspans].text = line + value_start;
            spans[nspans].len = i - value_start;
            nspans++;
            in_value = false;
        } else if (in_value && depth < 1) {
            in_value = false;
        }
    }
    return nspans;
}

/* ---- Fields ---------------------------------------------------------------------------------- */

typedef enum {
    F_ID,
    F_PROMPT,
    F_NEGATIVE,
    F_SEED,
    F_STEPS,
    F_GUIDANCE,
    F_WIDTH,
    F_HEIGHT,
    F_IMAGES,
    F_SCHEDULER,
    F_COUNT
} s_field_t;

static const char *const s_field_names[F_COUNT] = {
    [F_ID] = "id",
    [F_PROMPT] = "prompt",
    [F_NEGATIVE] = "negative_prompt",
    [F_SEED] = "seed",
    [F_STEPS] = "num_inference_steps",
    [F_GUIDANCE] = "guidance_scale",
    [F_WIDTH] = "width",
    [F_HEIGHT] = "height",
    [F_IMAGES] = "num_images_per_prompt",
    [F_SCHEDULER] = "scheduler",
};

/* Names other tools use for our fields, suggested when they appear. */
static const struct {
    const char *alias, *field;
} s_aliases[] = {
    {"steps", "num_inference_steps"},
    {"cfg_scale", "guidance_scale"},
    {"cfg", "guidance_scale"},
    {"sampler", "scheduler"},
    {"sampler_name", "scheduler"},
    {"negative", "negative_prompt"},
    {"batch_size", "num_images_per_prompt"},
    {"n_iter", "num_images_per_prompt"},
    {"num_images", "num_images_per_prompt"},
    {"name", "id"},
};

/* Levenshtein distance between a and b, capped: returns cap+1 for anything larger. */
static size_t s_distance(const char *a, const char *b, size_t cap) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap) return cap + 1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known field an unknown key most likely meant, or NULL. */
static const char *s_suggest(const char *key) {
    for (size_t i = 0; i < sizeof s_aliases / sizeof s_aliases[0]; i++)
        if (strcasecmp(key, s_aliases[i].alias) == 0) return s_aliases[i].field;
    const char *best = NULL;
    size_t best_d = 3; /* up to two edits */
    for (int f = 0; f < F_COUNT; f++) {
        size_t d = s_distance(key, s_field_names[f], best_d - 1);
        if (d < best_d) best_d = d, best = s_field_names[f];
    }
    return best;
}

/* The state of one line being checked. */
typedef struct {
    const char *name;              /* borrowed: file name for messages */
    size_t line;                   /* 1-based */
    const dq_job_limits_t *limits; /* borrowed */
    dq_errlist_t *errors;          /* borrowed */
    int nerrors;                   /* errors on this line */
} s_ctx_t;

static void s_error(s_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_error(s_ctx_t *ctx, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dq_errlist_add(ctx->errors, "%s:%zu: %s", ctx->name, ctx->line, msg);
    ctx->nerrors++;
}

/* Describes what was given, for "got ...": the value as written (shortened) when known,
 * else its JSON type. */
static const char *s_got(const json_t *v, const s_span_t *span, char *buf, size_t len) {
    if (span && span->text && !json_is_object(v) && !json_is_array(v)) {
        int n = span->len <= 40 ? (int)span->len : 36;
        /* Shorten on a character boundary so the message stays valid UTF-8. */
        while (n > 0 && n < (int)span->len && (span->text[n] & 0xC0) == 0x80)
            n--;
        snprintf(buf, len, "%.*s%s", n, span->text, n < (int)span->len ? "..." : "");
        return buf;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return "null";
    }
}

/* Reads an integer field into *out within [lo, hi]; reports and returns -1 otherwise. */
static int s_get_uint(s_ctx_t *ctx, const char *key, const json_t *v, const s_span_t *span,
                      uint64_t lo, uint64_t hi, uint64_t *out) {
    char got[48];
    if (json_is_integer(v)) {
        uint64_t value = 0;
        bool ok;
        if (span && span->big) {
            char num[72]; /* s_scan marks only literals of under 64 digits */
            snprintf(num, sizeof num, "%.*s", (int)span->len, span->text);
            errno = 0;
            value = strtoull(num, NULL, 10);
            ok = num[0] != '-' && errno == 0;
        } else {
            json_int_t i = json_integer_value(v);
            ok = i >= 0;
            value = (uint64_t)i;
        }
        if (ok && value >= lo && value <= hi) {
            *out = value;
            return 0;
        }
    }
    s_error(ctx, "field \"%s\": expected an integer between %" PRIu64 " and %" PRIu64 ", got %s",
            key, lo, hi, s_got(v, span, got, sizeof got));
    return -1;
}

static int s_get_int(s_ctx_t *ctx, const char *key, const json_t *v, const s_span_t *span, int lo,
                     int hi, int *out) {
    uint64_t value;
    if (s_get_uint(ctx, key, v, span, (uint64_t)lo, (uint64_t)hi, &value) < 0) return -1;
    *out = (int)value;
    return 0;
}

static int s_get_size(s_ctx_t *ctx, const char *key, const json_t *v, const s_span_t *span,
                      int *out) {
    const dq_job_limits_t *lim = ctx->limits;
    char got[48];
    if (json_is_integer(v) && !(span && span->big)) {
        json_int_t i = json_integer_value(v);
        if (i >= lim->min_size && i <= lim->max_size && i % 8 == 0) {
            *out = (int)i;
            return 0;
        }
    }
    s_error(ctx, "field \"%s\": expected a multiple of 8 between %d and %d, got %s", key,
            lim->min_size, lim->max_size, s_got(v, span, got, sizeof got));
    return -1;
}

static int s_get_string(s_ctx_t *ctx, const char *key, const json_t *v, const s_span_t *span,
                        char **out) {
    char got[48];
    if (!json_is_string(v)) {
        s_error(ctx, "field \"%s\": expected a string, got %s", key,
                s_got(v, span, got, sizeof got));
        return -1;
    }
    *out = strdup(json_string_value(v));
    if (!*out) {
        s_error(ctx, "field \"%s\": out of memory", key);
        return -1;
    }
    return 0;
}

bool dq_job_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n < 1 || n > DQ_JOB_ID_MAX || id[0] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

int dq_job_output_stem(const char *id, uint64_t line, char *buf, size_t size) {
    int n;
    if (id) {
        if (!dq_job_id_valid(id)) return -1;
        n = snprintf(buf, size, "%s", id);
    } else {
        if (line < 1) return -1;
        n = snprintf(buf, size, "%06" PRIu64, line);
    }
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Checks one member and stores it in *req. */
static void s_field(s_ctx_t *ctx, s_field_t f, const char *key, const json_t *v,
                    const s_span_t *span, dq_request_t *req) {
    const dq_job_limits_t *lim = ctx->limits;
    char got[48];
    switch (f) {
    case F_ID:
        if (s_get_string(ctx, key, v, span, &req->id) < 0) return;
        if (!dq_job_id_valid(req->id))
            s_error(ctx,
                    "field \"id\": expected 1 to %d characters from A-Z a-z 0-9 . _ - not "
                    "starting with '.', got %s",
                    DQ_JOB_ID_MAX, s_got(v, span, got, sizeof got));
        return;
    case F_PROMPT:
        (void)s_get_string(ctx, key, v, span, &req->prompt);
        return;
    case F_NEGATIVE:
        (void)s_get_string(ctx, key, v, span, &req->negative_prompt);
        return;
    case F_SEED: {
        uint64_t seed;
        if (s_get_uint(ctx, key, v, span, 0, UINT64_MAX, &seed) == 0) req->seed = seed;
        return;
    }
    case F_STEPS:
        (void)s_get_int(ctx, key, v, span, 1, lim->max_steps, &req->num_inference_steps);
        return;
    case F_GUIDANCE: {
        char hi[40];
        if (json_is_number(v) && !(span && span->big)) {
            double g = json_number_value(v);
            if (isfinite(g) && g >= 0 && g <= lim->max_guidance_scale) {
                req->guidance_scale = g;
                return;
            }
        }
        s_error(ctx, "field \"guidance_scale\": expected a number between 0 and %s, got %s",
                dq_job_format_double(lim->max_guidance_scale, hi, sizeof hi),
                s_got(v, span, got, sizeof got));
        return;
    }
    case F_WIDTH:
        (void)s_get_size(ctx, key, v, span, &req->width);
        return;
    case F_HEIGHT:
        (void)s_get_size(ctx, key, v, span, &req->height);
        return;
    case F_IMAGES:
        (void)s_get_int(ctx, key, v, span, 1, lim->max_images_per_prompt,
                        &req->num_images_per_prompt);
        return;
    case F_SCHEDULER: {
        int s = json_is_string(v) ? dq_scheduler_parse(json_string_value(v)) : -1;
        if (s < 0)
            s_error(ctx,
                    "field \"scheduler\": expected one of pndm, ddim, euler, euler_a, lms, "
                    "dpmpp_2m, dpmpp_2m_karras, got %s",
                    s_got(v, span, got, sizeof got));
        else
            req->scheduler = (dq_scheduler_t)s;
        return;
    }
    case F_COUNT:
        break;
    }
}

/* Checks one non-blank, well-formed-UTF-8 line into *req; errors go through ctx. Sets *has_seed
 * when the line gave a "seed". */
static void s_parse_object(s_ctx_t *ctx, const char *line, size_t len, dq_request_t *req,
                           bool *has_seed) {
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        s_error(ctx, "out of memory");
        return;
    }
    memcpy(copy, line, len);
    s_span_t spans[S_MAX_SPANS];
    memset(spans, 0, sizeof spans);
    size_t nspans = s_scan(line, copy, len, spans, S_MAX_SPANS);

    json_error_t jerr;
    json_t *root = json_loadb(copy, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    free(copy);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key) {
            /* jansson says: duplicate object key near '"seed"' */
            const char *near = strstr(jerr.text, "near '");
            size_t n = near ? strlen(near + 6) : 0;
            if (n >= 1)
                s_error(ctx, "field %.*s: appears more than once", (int)n - 1, near + 6);
            else
                s_error(ctx, "a field appears more than once");
        } else {
            s_error(ctx, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        }
        return;
    }
    if (!json_is_object(root)) {
        char got[48];
        s_span_t whole = {line, len, false};
        while (whole.len && strchr(" \t", whole.text[0]))
            whole.text++, whole.len--;
        s_error(ctx, "expected a JSON object, got %s", s_got(root, &whole, got, sizeof got));
        json_decref(root);
        return;
    }

    bool seen[F_COUNT] = {false};
    bool use_spans = nspans == json_object_size(root);
    size_t idx = 0;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        const s_span_t *span = use_spans ? &spans[idx] : NULL;
        idx++;
        int f = 0;
        while (f < F_COUNT && strcmp(key, s_field_names[f]) != 0)
            f++;
        if (f == F_COUNT) {
            const char *hint = s_suggest(key);
            json_t *k = json_string(key);
            char *quoted = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
            if (hint)
                s_error(ctx, "field %.60s: unknown field (did you mean \"%s\"?)",
                        quoted ? quoted : "?", hint);
            else
                s_error(ctx, "field %.60s: unknown field", quoted ? quoted : "?");
            free(quoted);
            json_decref(k);
            continue;
        }
        seen[f] = true;
        s_field(ctx, (s_field_t)f, key, value, span, req);
    }
    json_decref(root);
    *has_seed = seen[F_SEED];
    if (!seen[F_PROMPT]) s_error(ctx, "field \"prompt\": required, but missing");
}

/* ---- Streaming parser ------------------------------------------------------------------------ */

struct dq_jobparser_t {
    char *name;             /* owned, for messages */
    dq_job_limits_t limits; /* copy */
    dq_errlist_t *errors;   /* borrowed */
    json_t *ids;            /* owned: id -> line number it first appeared on */
    json_t *stems;          /* owned: output file stem -> line number that names files so */
    size_t lines;           /* lines fed */
    size_t requests;        /* good requests returned */
    size_t bad_lines;       /* lines with errors */
    bool over_limit;        /* max_requests was passed (reported once, at the first line over) */
};

dq_jobparser_t *dq_jobparser_new(const char *name, const dq_job_limits_t *limits,
                                 dq_errlist_t *errors) {
    dq_jobparser_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->name = strdup(name);
    self->ids = json_object();
    self->stems = json_object();
    if (!self->name || !self->ids || !self->stems) {
        dq_jobparser_destroy(&self);
        return NULL;
    }
    self->limits = *limits;
    self->errors = errors;
    return self;
}

void dq_jobparser_destroy(dq_jobparser_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_jobparser_t *self = *self_p;
    json_decref(self->ids);
    json_decref(self->stems);
    free(self->name);
    free(self);
    *self_p = NULL;
}

size_t dq_jobparser_lines(const dq_jobparser_t *self) {
    return self->lines;
}
size_t dq_jobparser_requests(const dq_jobparser_t *self) {
    return self->requests;
}

/* Fills what the line left out, draws a seed, and checks the id across lines. */
static void s_complete(dq_jobparser_t *self, s_ctx_t *ctx, dq_request_t *req, bool has_seed) {
    if (!req->id) {
        if (asprintf(&req->id, "line-%zu", ctx->line) < 0) {
            req->id = NULL;
            s_error(ctx, "out of memory");
            return;
        }
        req->id_assigned = true;
    }
    if (!req->negative_prompt && !(req->negative_prompt = strdup(""))) {
        s_error(ctx, "out of memory");
        return;
    }
    if (!has_seed) {
        uint64_t seed;
        if (s_random(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
            s_error(ctx, "cannot draw a random seed: %s", strerror(errno));
            return;
        }
        req->seed = seed;
        req->seed_drawn = true;
    }
    json_t *first = json_object_get(self->ids, req->id);
    if (first) {
        s_error(ctx, "field \"id\": \"%s\" is already used on line %" JSON_INTEGER_FORMAT, req->id,
                json_integer_value(first));
        return;
    }
    if (json_object_set_new(self->ids, req->id, json_integer((json_int_t)ctx->line)) < 0) {
        s_error(ctx, "out of memory");
        return;
    }
    /* Files are named by the id, or by the zero-padded line when there is none: an id such as
     * "000012" would name the same files as line 12 without an id. */
    char stem[DQ_JOB_ID_MAX + 1];
    if (dq_job_output_stem(req->id_assigned ? NULL : req->id, ctx->line, stem, sizeof stem) != 0)
        return; /* cannot happen: the id was checked */
    first = json_object_get(self->stems, stem);
    if (first && req->id_assigned)
        s_error(ctx,
                "the line has no \"id\", so its files are named %s-K.png, but line %" JSON_INTEGER_FORMAT
                " has \"id\": \"%s\", which names the same files",
                stem, json_integer_value(first), stem);
    else if (first)
        s_error(ctx,
                "field \"id\": \"%s\" names the same files (%s-K.png) as line %" JSON_INTEGER_FORMAT
                ", which has no \"id\"",
                stem, stem, json_integer_value(first));
    else if (json_object_set_new(self->stems, stem, json_integer((json_int_t)ctx->line)) < 0)
        s_error(ctx, "out of memory");
}

int dq_jobparser_line(dq_jobparser_t *self, const char *line, size_t len, size_t full_len,
                      dq_request_t *out) {
    memset(out, 0, sizeof *out);
    self->lines++;
    s_ctx_t ctx = {self->name, self->lines, &self->limits, self->errors, 0};
    if (full_len < len) full_len = len;
    if (len && line[len - 1] == '\r') len--, full_len--;
    if (full_len > self->limits.max_line_bytes) {
        s_error(&ctx, "line is too long: %zu bytes, the limit is %zu", full_len,
                self->limits.max_line_bytes);
        self->bad_lines++;
        return -1;
    }
    size_t blank = 0;
    while (blank < len && (line[blank] == ' ' || line[blank] == '\t'))
        blank++;
    if (blank == len) return 0;
    size_t bad = dq_utf8_check(line, len);
    if (bad < len) {
        if (line[bad] == '\0')
            s_error(&ctx, "NUL byte at column %zu", bad + 1);
        else
            s_error(&ctx, "invalid UTF-8 at column %zu (byte 0x%02x)", bad + 1,
                    (unsigned char)line[bad]);
        self->bad_lines++;
        return -1;
    }
    if (self->requests >= self->limits.max_requests) {
        if (!self->over_limit)
            s_error(&ctx, "too many requests: the limit is %zu per file (split it into several "
                          "jobs)", self->limits.max_requests);
        self->over_limit = true;
        self->bad_lines++;
        return -1;
    }

    dq_request_t req = {
        .num_inference_steps = self->limits.default_steps,
        .guidance_scale = self->limits.default_guidance_scale,
        .width = self->limits.default_width,
        .height = self->limits.default_height,
        .num_images_per_prompt = 1,
        .scheduler = DQ_SCHED_MODEL,
        .line = self->lines,
    };
    bool has_seed = false;
    s_parse_object(&ctx, line, len, &req, &has_seed);
    if (ctx.nerrors == 0) s_complete(self, &ctx, &req, has_seed);
    if (ctx.nerrors > 0) {
        dq_request_clear(&req);
        self->bad_lines++;
        return -1;
    }
    *out = req;
    self->requests++;
    return 1;
}

int dq_request_from_json(const char *name, size_t line, const char *text,
                         const dq_job_limits_t *limits, dq_request_t *out, char *err,
                         size_t errlen) {
    memset(out, 0, sizeof *out);
    if (line < 1 || !text) {
        snprintf(err, errlen, "%s: line numbers start at 1", name);
        return -1;
    }
    dq_errlist_t *errors = dq_errlist_new(1);
    dq_jobparser_t *parser = errors ? dq_jobparser_new(name, limits, errors) : NULL;
    int rc = -1;
    if (!parser) {
        snprintf(err, errlen, "%s:%zu: out of memory", name, line);
    } else {
        parser->lines = line - 1; /* the next line fed is `line` */
        size_t len = strlen(text);
        int r = dq_jobparser_line(parser, text, len, len, out);
        if (r == 1)
            rc = 0;
        else if (r == 0)
            snprintf(err, errlen, "%s:%zu: no request (blank)", name, line);
        else
            snprintf(err, errlen, "%s", dq_errlist_kept(errors) ? dq_errlist_get(errors, 0)
                                                                : "invalid request");
    }
    dq_jobparser_destroy(&parser);
    dq_errlist_destroy(&errors);
    return rc;
}

int dq_jobparser_finish(dq_jobparser_t *self) {
    if (self->requests == 0 && self->bad_lines == 0) {
        dq_errlist_add(self->errors, "%s: no requests: the file is empty or has only blank lines",
                       self->name);
        return -1;
    }
    return self->bad_lines ? -1 : 0;
}

/* ---- Whole files ----------------------------------------------------------------------------- */

struct dq_jobfile_t {
    dq_request_t *reqs; /* owned array of `count` owned requests */
    size_t count, cap;
};

void dq_jobfile_destroy(dq_jobfile_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_jobfile_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        dq_request_clear(&self->reqs[i]);
    free(self->reqs);
    free(self);
    *self_p = NULL;
}

size_t dq_jobfile_count(const dq_jobfile_t *self) {
    return self->count;
}

const dq_request_t *dq_jobfile_get(const dq_jobfile_t *self, size_t i) {
    return i < self->count ? &self->reqs[i] : NULL;
}

/* Feeds one line to the parser and keeps the request. Returns -1 only when out of memory. */
static int s_feed(dq_jobfile_t *file, dq_jobparser_t *parser, const char *line, size_t len,
                  size_t full_len) {
    dq_request_t req;
    if (dq_jobparser_line(parser, line, len, full_len, &req) != 1) return 0;
    if (file->count == file->cap) {
        size_t cap = file->cap ? file->cap * 2 : 16;
        dq_request_t *reqs = realloc(file->reqs, cap * sizeof *reqs);
        if (!reqs) {
            dq_request_clear(&req);
            return -1;
        }
        file->reqs = reqs;
        file->cap = cap;
    }
    file->reqs[file->count++] = req;
    return 0;
}

/* The common end of both parse functions: returns the file or destroys it. */
static dq_jobfile_t *s_finish(dq_jobfile_t *file, dq_jobparser_t **parser_p, bool oom,
                              dq_errlist_t *errors, const char *name) {
    if (oom) dq_errlist_add(errors, "%s: out of memory", name);
    int rc = oom ? -1 : dq_jobparser_finish(*parser_p);
    dq_jobparser_destroy(parser_p);
    if (rc < 0) dq_jobfile_destroy(&file);
    return file;
}

dq_jobfile_t *dq_jobfile_parse_buffer(const char *name, const char *buf, size_t len,
                                      const dq_job_limits_t *limits, dq_errlist_t *errors) {
    dq_jobfile_t *file = calloc(1, sizeof *file);
    dq_jobparser_t *parser = file ? dq_jobparser_new(name, limits, errors) : NULL;
    if (!parser) {
        free(file);
        dq_errlist_add(errors, "%s: out of memory", name);
        return NULL;
    }
    bool oom = false;
    size_t pos = 0;
    while (pos < len && !oom) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        oom = s_feed(file, parser, buf + pos, n, n) < 0;
        pos += n + 1;
    }
    return s_finish(file, &parser, oom, errors, name);
}

dq_jobfile_t *dq_jobfile_parse_stream(const char *name, FILE *f, const dq_job_limits_t *limits,
                                      dq_errlist_t *errors) {
    dq_jobfile_t *file = calloc(1, sizeof *file);
    dq_jobparser_t *parser = file ? dq_jobparser_new(name, limits, errors) : NULL;
    /* One line plus its '\r': longer lines are read on but not kept. */
    size_t cap = limits->max_line_bytes + 1;
    char *line = parser ? malloc(cap) : NULL;
    if (!line) {
        dq_jobparser_destroy(&parser);
        free(file);
        dq_errlist_add(errors, "%s: out of memory", name);
        return NULL;
    }
    bool oom = false;
    size_t n = 0, full = 0;
    int c;
    flockfile(f); /* one lock for the whole read, then getc_unlocked per byte */
    while (!oom && (c = getc_unlocked(f)) != EOF) {
        if (c == '\n') {
            oom = s_feed(file, parser, line, n, full) < 0;
            n = full = 0;
            continue;
        }
        if (n < cap) line[n++] = (char)c;
        full++;
    }
    funlockfile(f);
    if (!oom && ferror(f)) {
        dq_errlist_add(errors, "%s: read error: %s", name, strerror(errno));
        free(line);
        dq_jobparser_destroy(&parser);
        dq_jobfile_destroy(&file);
        return NULL;
    }
    if (!oom && full > 0) oom = s_feed(file, parser, line, n, full) < 0;
    free(line);
    return s_finish(file, &parser, oom, errors, name);
}

dq_jobfile_t *dq_jobfile_read(const char *path, const dq_job_limits_t *limits,
                              dq_errlist_t *errors) {
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (!f) {
        dq_errlist_add(errors, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    dq_jobfile_t *file = dq_jobfile_parse_stream(is_stdin ? "<stdin>" : path, f, limits, errors);
    if (!is_stdin) fclose(f);
    return file;
}
