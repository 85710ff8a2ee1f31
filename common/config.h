/* common/config.h: program options from flags, then environment, then a config file, then defaults. */
#ifndef DQ_CONFIG_H
#define DQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { DQ_OPT_STRING, DQ_OPT_INT, DQ_OPT_DOUBLE, DQ_OPT_BOOL, DQ_OPT_TYPE_COUNT } dq_opt_type_t;

/* One option of a program. A table of these drives parsing, validation and --help. */
typedef struct {
    const char *name;          /* long flag without "--"; also the key in the config file */
    char short_name;           /* one-letter flag, or 0 */
    const char *env;           /* environment variable that sets it, or NULL */
    dq_opt_type_t type;        /* BOOL options take no argument on the command line */
    const char *default_value; /* as text; NULL leaves it unset */
    const char *metavar;       /* the argument's name in --help ("EP", "DIR") */
    const char *help;          /* one line */
} dq_option_t;

typedef struct dq_config_t dq_config_t;

/* Makes a parser for `program` with the given options (borrowed; must outlive the parser).
 * `usage` is the synopsis printed by --help ("[OPTIONS] FILE"); `about` a paragraph after it.
 * Every parser also knows --help, and --config FILE / DIFFQ_CONFIG for the config file. */
dq_config_t *dq_config_new(const char *program, const char *usage, const char *about,
                           const dq_option_t *options, size_t count);
void dq_config_destroy(dq_config_t **self_p);

/* Reads argv (argv[0] is the program or subcommand name), then the environment, then the config
 * file, in that order of precedence. Returns 0 when parsed, 1 when --help was printed to stdout
 * (the caller exits 0), -1 on bad input with a message in err naming the flag, variable or
 * file:line and what was expected. A config file is read only
 * when named by --config or DIFFQ_CONFIG. * Its format: "key = value" lines, '#' comments, and "[program]" sections; keys before any
 * section apply to every program that knows them, keys in this program's section must be known. */
int dq_config_parse(dq_config_t *self, int argc, char **argv, char *err, size_t errlen);

/* Values after parsing. Asking for an option that is not in the table is a programming error. */
const char *dq_config_str(const dq_config_t *self, const char *name); /* NULL when unset */
long dq_config_int(const dq_config_t *self, const char *name);        /* 0 when unset */
double dq_config_double(const dq_config_t *self, const char *name);   /* 0 when unset */
bool dq_config_bool(const dq_config_t *self, const char *name);
bool dq_config_is_set(const dq_config_t *self, const char *name);
/* Where the value came from: "flag", "env", "file", "default" or "unset". */
const char *dq_config_source(const dq_config_t *self, const char *name);

/* Arguments that are not options, in order. */
int dq_config_positional_count(const dq_config_t *self);
const char *dq_config_positional(const dq_config_t *self, int index);

/* Writes the --help text to stdout. */
void dq_config_print_help(const dq_config_t *self);

#endif
