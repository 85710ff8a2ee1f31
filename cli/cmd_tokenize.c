/* cli/cmd_tokenize.c: "diffq tokenize": prints the CLIP token ids of each text, one JSON array a
 * line. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include "cli/commands.h"
#include "common/config.h"
#include "common/log.h"
#include "kernels/tokenizer.h"

static const dq_option_t s_options[] = {
    {"model", 'm', "DIFFQ_MODEL", DQ_OPT_STRING, NULL, "DIR",
     "model folder (or its tokenizer/ folder); default: the built-in CLIP vocabulary"},
    {"rules", 'r', "DIFFQ_TOKENIZER_RULES", DQ_OPT_STRING, "clip", "RULES",
     "text cleanup: clip (OpenAI CLIP: ftfy, HTML entities) or transformers5"},
};

int dq_cmd_tokenize(int argc, char **argv) {
    char err[512] = "";
    dq_config_t *cfg = dq_config_new(
        "diffq tokenize", "[OPTIONS] [--] TEXT...",
        "Prints, for each TEXT, its CLIP token ids (SD 1.x) as one JSON array on its own line,\n"
        "from <|startoftext|> to <|endoftext|>, without padding; text beyond 75 tokens is cut.",
        s_options, sizeof s_options / sizeof s_options[0]);
    if (!cfg) {
        fprintf(stderr, "diffq tokenize: out of memory\n");
        return DQ_EXIT_FAILED;
    }
    int rc = dq_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "%s\n", err);
        dq_config_destroy(&cfg);
        return rc > 0 ? DQ_EXIT_OK : DQ_EXIT_USAGE;
    }
    if (dq_config_positional_count(cfg) == 0) {
        fprintf(stderr, "diffq tokenize: expected at least one TEXT (see --help)\n");
        dq_config_destroy(&cfg);
        return DQ_EXIT_USAGE;
    }
    dq_tokenizer_rules_t rules;
    const char *rules_name = dq_config_str(cfg, "rules");
    if (dq_tokenizer_rules_parse(rules_name, &rules) != 0) {
        fprintf(stderr, "diffq tokenize: --rules: expected clip or transformers5, got \"%s\"\n",
                rules_name);
        dq_config_destroy(&cfg);
        return DQ_EXIT_USAGE;
    }
    const char *model = dq_config_str(cfg, "model");
    dq_tokenizer_t *tok = dq_tokenizer_load(model, err, sizeof err);
    if (!tok) {
        fprintf(stderr, "diffq tokenize: %s\n", err);
        dq_config_destroy(&cfg);
        return DQ_EXIT_FAILED;
    }
    dq_tokenizer_set_rules(tok, rules);
    int status = DQ_EXIT_OK;
    for (int i = 0; i < dq_config_positional_count(cfg); i++) {
        int32_t ids[DQ_TOKENIZER_CONTEXT];
        int n = dq_tokenizer_encode(tok, dq_config_positional(cfg, i), ids, DQ_TOKENIZER_CONTEXT,
                                    NULL, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "diffq tokenize: text %d: %s\n", i + 1, err);
            status = DQ_EXIT_USAGE;
            continue;
        }
        printf("[");
        for (int k = 0; k < n; k++)
            printf(k ? ", %d" : "%d", (int)ids[k]);
        printf("]\n");
    }
    dq_tokenizer_destroy(&tok);
    dq_config_destroy(&cfg);
    return status;
}
