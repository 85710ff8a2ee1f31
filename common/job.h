/* common/job.h: the JSONL job format (one render request per line), its validation and its
 * canonical JSON form. The format itself is documented in man/diffq-jobs.5. */
#ifndef DQ_JOB_H
#define DQ_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- Schedulers ------------------------------------------------------------------------------ */

/* The schedulers a request may name. DQ_SCHED_MODEL means "absent": use the scheduler the model
 * ships with (PNDM for the SD 1.x checkpoints). */
typedef enum {
    DQ_SCHED_MODEL,
    DQ_SCHED_PNDM,            /* diffusers PNDMScheduler */
    DQ_SCHED_DDIM,            /* DDIMScheduler */
    DQ_SCHED_EULER,           /* EulerDiscreteScheduler */
    DQ_SCHED_EULER_A,         /* EulerAncestralDiscreteScheduler */
    DQ_SCHED_LMS,             /* LMSDiscreteScheduler */
    DQ_SCHED_DPMPP_2M,        /* DPMSolverMultistepScheduler */
    DQ_SCHED_DPMPP_2M_KARRAS, /* DPMSolverMultistepScheduler with use_karras_sigmas=True */
    DQ_SCHED_COUNT
} dq_scheduler_t;

/* The name used in job files ("euler_a"); "model" for DQ_SCHED_MODEL. NULL when out of range. */
const char *dq_scheduler_name(dq_scheduler_t sched);
/* The diffusers class that defines its behaviour ("EulerAncestralDiscreteScheduler"); NULL for
 * DQ_SCHED_MODEL and out of range. */
const char *dq_scheduler_diffusers_class(dq_scheduler_t sched);
/* The AUTOMATIC1111 webui spelling used in PNG metadata ("Euler a"); NULL for DQ_SCHED_MODEL. */
const char *dq_scheduler_a1111_name(dq_scheduler_t sched);
/* Parses a job-file name ("ddim"). Returns -1 for an unknown name; "model" is not accepted (the
 * model's scheduler is asked for by leaving the field out). */
int dq_scheduler_parse(const char *name);

/* ---- Limits ---------------------------------------------------------------------------------- */

/* What a job file may ask for. Fill with dq_job_limits_init(), then change what you need. */
typedef struct {
    int min_size;                  /* px, smallest width/height; a multiple of 8 (default 64) */
    int max_size;                  /* px, largest width/height; a multiple of 8 (default 2048) */
    int default_width;             /* px, when "width" is absent (default 512: SD 1.x) */
    int default_height;            /* px, when "height" is absent (default 512) */
    int max_steps;                 /* largest num_inference_steps (default 1000) */
    int default_steps;             /* default 50, as diffusers */
    double max_guidance_scale;     /* largest guidance_scale (default 50); the smallest is 0 */
    double default_guidance_scale; /* default 7.5, as diffusers */
    int max_images_per_prompt;     /* largest num_images_per_prompt (default 8) */
    size_t max_line_bytes;         /* longest line, without its newline (default 65536) */
    size_t max_requests;           /* most requests in one file (default 100000) */
} dq_job_limits_t;

/* Sets every limit to its documented default. */
void dq_job_limits_init(dq_job_limits_t *limits);

/* ---- Requests -------------------------------------------------------------------------------- */

/* Longest id, in bytes. */
#define DQ_JOB_ID_MAX 128

/* True when id is a valid request id: 1..DQ_JOB_ID_MAX bytes of A-Z a-z 0-9 . _ -, not starting
 * with '.', so it is a safe file name on every system. */
bool dq_job_id_valid(const char *id);

/* The stem of a request's output files ("<stem>-<image>.png", results.jsonl): the id, or the
 * line zero-padded to 6 digits when id is NULL (the line had none). Returns 0, or -1 for an
 * invalid id, line 0, or a buffer too small. */
int dq_job_output_stem(const char *id, uint64_t line, char *buf, size_t size);

/* One render request: one line of a job file, with every default applied. */
typedef struct {
    char *id;              /* owned; names the output file(s); never NULL once parsed */
    bool id_assigned;      /* the line had no "id": the parser named it "line-N" */
    char *prompt;          /* owned UTF-8, may be "" */
    char *negative_prompt; /* owned UTF-8, "" when absent */
    uint64_t seed;         /* torch.Generator.manual_seed value */
    bool seed_drawn;       /* the line had no "seed": it was drawn with getrandom(2) */
    int num_inference_steps;
    double guidance_scale; /* finite, 0..limits.max_guidance_scale */
    int width;             /* px, multiple of 8 */
    int height;            /* px, multiple of 8 */
    int num_images_per_prompt;
    dq_scheduler_t scheduler; /* DQ_SCHED_MODEL when absent */
    size_t line;              /* 1-based line in the source it came from */
} dq_request_t;

/* Where drawn seeds come from: getrandom(2) unless a test replaces it (NULL restores it), so the
 * failure path can be exercised. Not thread-safe; set it before parsing starts. */
typedef ssize_t (*dq_job_random_fn)(void *buf, size_t len, unsigned int flags);
void dq_job_set_random_fn(dq_job_random_fn fn);

/* Frees the owned strings and zeroes *req. Safe on a zeroed or already cleared request. */
void dq_request_clear(dq_request_t *req);

/* Deep copy of src into *dst (which is overwritten, not freed). Returns 0, or -1 when out of
 * memory (then *dst is zeroed). */
int dq_request_copy(dq_request_t *dst, const dq_request_t *src);

/* The canonical JSON of a request: one compact line, UTF-8, every field present with its
 * effective value (defaults applied, drawn seeds written out), in the order id, prompt,
 * negative_prompt, seed, num_inference_steps, guidance_scale, width, height,
 * num_images_per_prompt, scheduler (left out for DQ_SCHED_MODEL). Parsing it gives the same
 * request back (with id_assigned and seed_drawn false). Returns a malloc'd string the caller
 * frees, or NULL when out of memory. */
char *dq_request_to_json(const dq_request_t *req);

/* Parses one request given as JSON text (such as dq_request_to_json's) with every check a job
 * file's line gets, as line `line` of a file called `name`. Returns 0 with *out filled (caller
 * clears it), or -1 with *out zeroed and the first error in err ("name:12: field ..."). The id
 * rules across lines (unique ids and output names) need the whole file: dq_jobparser_t. */
int dq_request_from_json(const char *name, size_t line, const char *text,
                         const dq_job_limits_t *limits, dq_request_t *out, char *err,
                         size_t errlen);

/* Formats a double the way Python's repr() does: the shortest text that reads back to the same
 * value, with ".0" added to whole numbers ("7.5", "7.0", "0.1"). Writes at most len bytes
 * including the NUL; returns buf. */
char *dq_job_format_double(double value, char *buf, size_t len);

/* Returns the offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no
 * overlongs, no surrogates, nothing past U+10FFFF) or is a NUL, or len when all len bytes are. */
size_t dq_utf8_check(const void *bytes, size_t len);

/* ---- Error lists ----------------------------------------------------------------------------- */

/* Collected error messages, one line each ("prompts.jsonl:12: field ..."). Counts every error but
 * keeps only the first `cap` messages. */
typedef struct dq_errlist_t dq_errlist_t;

/* Default for cap: the first 100 errors are kept. */
#define DQ_ERRLIST_DEFAULT_CAP 100

/* Returns a new empty list keeping at most cap messages (cap >= 1), or NULL when out of memory. */
dq_errlist_t *dq_errlist_new(size_t cap);
void dq_errlist_destroy(dq_errlist_t **self_p);
/* Appends a message (no trailing newline). Messages past cap, and messages that cannot be stored
 * for lack of memory, are still counted. */
void dq_errlist_add(dq_errlist_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Every error added, kept or not. */
size_t dq_errlist_count(const dq_errlist_t *self);
/* Messages kept (<= cap) and the i-th of them (borrowed; NULL when i is out of range). */
size_t dq_errlist_kept(const dq_errlist_t *self);
const char *dq_errlist_get(const dq_errlist_t *self, size_t i);
/* Writes the kept messages, one per line, then "and N more errors" when some were dropped.
 * Returns the number of lines written, or -1 when writing failed. */
int dq_errlist_print(const dq_errlist_t *self, FILE *out);

/* ---- Parsing --------------------------------------------------------------------------------- */

/* Streaming parser: feed it a file line by line (the broker reads uploads this way). It keeps the
 * line count and the ids seen so far, so duplicate ids are found across lines. */
typedef struct dq_jobparser_t dq_jobparser_t;

/* Returns a parser whose messages start with `name` ("prompts.jsonl"; copied), checking against
 * *limits (copied), adding errors to `errors` (borrowed; must outlive the parser). NULL when out
 * of memory. */
dq_jobparser_t *dq_jobparser_new(const char *name, const dq_job_limits_t *limits,
                                 dq_errlist_t *errors);
void dq_jobparser_destroy(dq_jobparser_t **self_p);

/* Parses the next line: `len` bytes at `line`, without the '\n' (a trailing '\r' is dropped;
 * the bytes need not be NUL-terminated). `full_len` is the line's length before any truncation
 * by the reader, for the overlong-line check; pass len when the whole line is given.
 * Returns 1 with *out filled (caller clears it), 0 for a blank line (nothing to do), or -1 when
 * the line is bad, with every problem on it added to the error list and *out zeroed. */
int dq_jobparser_line(dq_jobparser_t *self, const char *line, size_t len, size_t full_len,
                      dq_request_t *out);

/* Ends the file: returns 0 when at least one request was parsed, else -1 after adding "no
 * requests" to the error list. Also -1 when any line was bad. */
int dq_jobparser_finish(dq_jobparser_t *self);

/* Lines fed so far, and requests returned so far. */
size_t dq_jobparser_lines(const dq_jobparser_t *self);
size_t dq_jobparser_requests(const dq_jobparser_t *self);

/* A whole parsed job file: all of its requests, or nothing. */
typedef struct dq_jobfile_t dq_jobfile_t;

/* Parses a job file held in memory (`len` bytes; need not be NUL-terminated). Returns the file
 * when every line is valid; else NULL with every error (up to the list's cap) in `errors`, so a
 * file is never half accepted. `name` is used in messages. Out of memory gives NULL and an
 * error. */
dq_jobfile_t *dq_jobfile_parse_buffer(const char *name, const char *buf, size_t len,
                                      const dq_job_limits_t *limits, dq_errlist_t *errors);
/* The same, reading `f` to its end. A read error is reported as an error of the file. */
dq_jobfile_t *dq_jobfile_parse_stream(const char *name, FILE *f, const dq_job_limits_t *limits,
                                      dq_errlist_t *errors);
/* The same, opening `path` ("-" is standard input); messages name the path. */
dq_jobfile_t *dq_jobfile_read(const char *path, const dq_job_limits_t *limits,
                              dq_errlist_t *errors);
void dq_jobfile_destroy(dq_jobfile_t **self_p);

size_t dq_jobfile_count(const dq_jobfile_t *self);
/* The i-th request (borrowed, valid until the file is destroyed); NULL when out of range. */
const dq_request_t *dq_jobfile_get(const dq_jobfile_t *self, size_t i);

#endif
