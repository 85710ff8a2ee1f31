/* common/config.c: program options from flags, then environment, then a config file, then defaults. */
#include "common/config.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SRC_UNSET, SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG } source_t;
static const char *s_source_names[] = {"unset", "default", "file", "env", "flag"};

typedef struct {
    char *text;      /* owned; the value as given */
    source_t source; /* a later, weaker source never overwrites a stronger one */
} value_t;

struct dq_config_t {
    const char *program;        /* borrowed */
    const char *usage;          /* borrowed */
    const char *about;          /* borrowed */
    const dq_option_t *options; /* borrowed */
    size_t count;
    value_t *values;            /* owned; one per option */
    char **positional;          /* owned array of borrowed argv strings */
    int positional_count;
};

dq_config_t *dq_config_new(const char *program, const char *usage, const char *about,
                           const dq_option_t *options, size_t count) {
    dq_config_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->program = program;
    self->usage = usage;
    self->about = about;
    self->options = options;
    self->count = count;
    self->values = calloc(count ? count : 1, sizeof *self->values);
    if (!self->values) {
        free(self);
        return NULL;
    }
    return self;
}

void dq_config_destroy(dq_config_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_config_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) free(self->values[i].text);
    free(self->values);
    free(self->positional);
    free(self);
    *self_p = NULL;
}

static int s_find(const dq_config_t *self, const char *name) {
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->options[i].name, name) == 0) return (int) i;
    return -1;
}

static int s_index_of(const dq_config_t *self, const char *name) {
    int i = s_find(self, name);
    assert(i >= 0 && "option not in the program's table");
    return i;
}

/* Checks that text is a valid value for the option's type; on failure writes what was expected. */
static bool s_valid(const dq_option_t *opt, const char *text, char *expected, size_t len) {
    char *end = NULL;
    errno = 0;
    switch (opt->type) {
    case DQ_OPT_STRING: return true;
    case DQ_OPT_INT:
        (void) strtol(text, &end, 10);
        if (*text && end && *end == '\0' && errno == 0) return true;
        snprintf(expected, len, "an integer");
        return false;
    case DQ_OPT_DOUBLE: {
        double v = strtod(text, &end);
        if (*text && end && *end == '\0' && errno == 0 && isfinite(v)) return true;
        snprintf(expected, len, "a number");
        return false;
    }
    case DQ_OPT_BOOL:
        if (!strcmp(text, "1") || !strcmp(text, "0") || !strcmp(text, "true") ||
            !strcmp(text, "false") || !strcmp(text, "yes") || !strcmp(text, "no"))
            return true;
        snprintf(expected, len, "true or false");
        return false;
    default: return false;
    }
}

static int s_set(dq_config_t *self, int i, const char *text, source_t source) {
    value_t *v = &self->values[i];
    if (v->source > source) return 0;
    char *copy = strdup(text);
    if (!copy) return -1;
    free(v->text);
    v->text = copy;
    v->source = source;
    return 0;
}

static char *s_trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Reads the config file. Returns 0, or -1 with err set. */
static int s_read_file(dq_config_t *self, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0;
    bool in_own_section = false, in_any_section = false;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line longer than %zu bytes", path, lineno, sizeof line - 1);
            rc = -1;
            break;
        }
        char *s = s_trim(line);
        if (*s == '\0' || *s == '#') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] != '\0') {
                snprintf(err, errlen, "%s:%d: expected a section header like [%s]", path, lineno,
                         self->program);
                rc = -1;
                break;
            }
            *close = '\0';
            in_any_section = true;
            in_own_section = strcmp(s_trim(s + 1), self->program) == 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = s_trim(s), *value = s_trim(eq + 1);
        if (in_any_section && !in_own_section) continue;
        int i = s_find(self, key);
        if (i < 0) {
            if (in_own_section) {
                snprintf(err, errlen, "%s:%d: unknown key '%s' for %s (see %s --help)", path,
                         lineno, key, self->program, self->program);
                rc = -1;
                break;
            }
            continue; /* a global key meant for another program */
        }
        char expected[64];
        if (!s_valid(&self->options[i], value, expected, sizeof expected)) {
            snprintf(err, errlen, "%s:%d: %s: expected %s, got '%s'", path, lineno, key, expected,
                     value);
            rc = -1;
            break;
        }
        if (s_set(self, i, value, SRC_FILE) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

int dq_config_parse(dq_config_t *self, int argc, char **argv, char *err, size_t errlen) {
    /* getopt_long table: every option, plus --help and --config. */
    size_t n = self->count;
    struct option *longopts = calloc(n + 3, sizeof *longopts);
    char *shortopts = calloc(2 * n + 4, 1);
    if (!longopts || !shortopts) {
        free(longopts);
        free(shortopts);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t sp = 0;
    shortopts[sp++] = ':'; /* a leading ':' makes getopt report a missing argument as ':' */
    for (size_t i = 0; i < n; i++) {
        const dq_option_t *o = &self->options[i];
        bool arg = o->type != DQ_OPT_BOOL;
        longopts[i] = (struct option){o->name, arg ? required_argument : no_argument, NULL,
                                      (int) (256 + i)};
        if (o->short_name) {
            shortopts[sp++] = o->short_name;
            if (arg) shortopts[sp++] = ':';
        }
    }
    longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n + 1] = (struct option){"config", required_argument, NULL, 'C'};
    shortopts[sp++] = 'h';

    const char *config_path = NULL;
    int rc = 0;
    optind = 0; /* 0 resets GNU getopt fully, so parsers can run one after another */
    opterr = 0;
    for (;;) {
        int longindex = -1;
        int c = getopt_long(argc, argv, shortopts, longopts, &longindex);
        if (c == -1) break;
        if (c == 'h') {
            dq_config_print_help(self);
            rc = 1;
            goto done;
        }
        if (c == 'C') {
            config_path = optarg;
            continue;
        }
        if (c == '?' || c == ':') {
            const char *what = argv[optind - 1];
            if (c == ':')
                snprintf(err, errlen, "%s: option %s needs a value (see --help)", self->program, what);
            else
                snprintf(err, errlen, "%s: unknown option %s (see --help)", self->program, what);
            rc = -1;
            goto done;
        }
        int i = -1;
        if (c >= 256) i = c - 256;
        else
            for (size_t k = 0; k < n; k++)
                if (self->options[k].short_name == c) i = (int) k;
        assert(i >= 0);
        const dq_option_t *o = &self->options[i];
        const char *text = o->type == DQ_OPT_BOOL ? "true" : optarg;
        char expected[64];
        if (!s_valid(o, text, expected, sizeof expected)) {
            snprintf(err, errlen, "%s: --%s: expected %s, got '%s'", self->program, o->name,
                     expected, text);
            rc = -1;
            goto done;
        }
        if (s_set(self, i, text, SRC_FLAG) < 0) goto oom;
    }
    free(self->positional);
    self->positional_count = argc - optind;
    self->positional = calloc((size_t) self->positional_count + 1, sizeof(char *));
    if (!self->positional) goto oom;
    for (int k = 0; k < self->positional_count; k++) self->positional[k] = argv[optind + k];

    for (size_t i = 0; i < n; i++) {
        const dq_option_t *o = &self->options[i];
        const char *text = o->env ? getenv(o->env) : NULL;
        if (!text || !*text) continue;
        char expected[64];
        if (!s_valid(o, text, expected, sizeof expected)) {
            snprintf(err, errlen, "%s: environment variable %s: expected %s, got '%s'",
                     self->program, o->env, expected, text);
            rc = -1;
            goto done;
        }
        if (s_set(self, (int) i, text, SRC_ENV) < 0) goto oom;
    }

    /* A config file is read only when named, by --config or DIFFQ_CONFIG, and then must exist. */
    if (!config_path) config_path = getenv("DIFFQ_CONFIG");
    if (config_path && *config_path && s_read_file(self, config_path, err, errlen) < 0) {
        rc = -1;
        goto done;
    }

    for (size_t i = 0; i < n; i++)
        if (self->options[i].default_value &&
            s_set(self, (int) i, self->options[i].default_value, SRC_DEFAULT) < 0)
            goto oom;
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
    rc = -1;
done:
    free(longopts);
    free(shortopts);
    return rc;
}

const char *dq_config_str(const dq_config_t *self, const char *name) {
    return self->values[s_index_of(self, name)].text;
}

long dq_config_int(const dq_config_t *self, const char *name) {
    const char *t = dq_config_str(self, name);
    return t ? strtol(t, NULL, 10) : 0;
}

double dq_config_double(const dq_config_t *self, const char *name) {
    const char *t = dq_config_str(self, name);
    return t ? strtod(t, NULL) : 0.0;
}

bool dq_config_bool(const dq_config_t *self, const char *name) {
    const char *t = dq_config_str(self, name);
    return t && (!strcmp(t, "1") || !strcmp(t, "true") || !strcmp(t, "yes"));
}

bool dq_config_is_set(const dq_config_t *self, const char *name) {
    return dq_config_str(self, name) != NULL;
}

const char *dq_config_source(const dq_config_t *self, const char *name) {
    return s_source_names[self->values[s_index_of(self, name)].source];
}

int dq_config_positional_count(const dq_config_t *self) { return self->positional_count; }

const char *dq_config_positional(const dq_config_t *self, int index) {
    return index >= 0 && index < self->positional_count ? self->positional[index] : NULL;
}

void dq_config_print_help(const dq_config_t *self) {
    printf("Usage: %s %s\n", self->program, self->usage ? self->usage : "[OPTIONS]");
    if (self->about) printf("\n%s\n", self->about);
    printf("\nOptions:\n");
    for (size_t i = 0; i < self->count; i++) {
        const dq_option_t *o = &self->options[i];
        char flag[96];
        if (o->type == DQ_OPT_BOOL)
            snprintf(flag, sizeof flag, "%s%c%s--%s", o->short_name ? "-" : "",
                     o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name);
        else
            snprintf(flag, sizeof flag, "%s%c%s--%s %s", o->short_name ? "-" : "",
                     o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                     o->metavar ? o->metavar : "VALUE");
        printf("  %-30s %s", o->short_name ? flag : flag + 1, o->help ? o->help : "");
        if (o->env) printf(" [env %s]", o->env);
        if (o->default_value) printf(" (default: %s)", o->default_value);
        printf("\n");
    }
    printf("  %-30s %s\n", "  --config FILE", "read options from FILE [env DIFFQ_CONFIG]");
    printf("  %-30s %s\n", "-h, --help", "print this help and exit");
}
