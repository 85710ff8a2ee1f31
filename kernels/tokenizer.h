/* kernels/tokenizer.h: the CLIP BPE tokenizer of Stable Diffusion 1.x (text -> token ids). */
#ifndef DQ_TOKENIZER_H
#define DQ_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CLIP's context: BOS, at most 75 tokens, EOS (the text encoder's 77 positions). */
#define DQ_TOKENIZER_CONTEXT 77
/* Environment variable naming the data folder that holds clip/bpe_simple_vocab_16e6.txt.gz; it
 * overrides the installed one ($(pkgdatadir)), so the build tree and tests can run uninstalled. */
#define DQ_TOKENIZER_DATA_ENV "DIFFQ_DATA_DIR"

/* Which text cleanup and special-token matching the tokenizer follows. */
typedef enum {
    /* OpenAI CLIP's own tokenizer, which SD 1.x's text encoder was trained with (and
     * transformers 4.x's CLIPTokenizer when ftfy was installed, which also skipped
     * html.unescape): ftfy.fix_text (tokenizer_ftfy.h), html.unescape twice, white space collapsed, Python's str.lower, CLIP's word pattern with
     * IGNORECASE: "<|startoftext|>" and "<|endoftext|>" in any case are BOS and EOS wherever a
     * word starts. The default. */
    DQ_TOKENIZER_RULES_CLIP,
    /* transformers 5.x CLIPTokenizer (tokenizers-backed): NFC, white space collapsed,
     * lowercase, no ftfy or HTML unescaping; special tokens as its added-token table says. */
    DQ_TOKENIZER_RULES_TRANSFORMERS5,
    DQ_TOKENIZER_RULES_COUNT
} dq_tokenizer_rules_t;

/* Names of the rules, "clip" and "transformers5", indexed by dq_tokenizer_rules_t. */
extern const char *const dq_tokenizer_rules_names[DQ_TOKENIZER_RULES_COUNT];

/* Parses a rules name; returns 0, or -1 (nothing written) when name is not one of the above. */
int dq_tokenizer_rules_parse(const char *name, dq_tokenizer_rules_t *rules);

/* Text -> CLIP ids: cleanup by the chosen rules, CLIP's word pattern, byte-level BPE with
 * "</w>" (see the tokenize section of diffq(1)). */
typedef struct dq_tokenizer_t dq_tokenizer_t;

/* Loads a tokenizer. dir is a Hugging Face tokenizer folder (vocab.json, merges.txt and,
 * optionally, tokenizer_config.json / special_tokens_map.json naming the special tokens), or a
 * model folder holding one at tokenizer/. NULL loads the built-in CLIP vocabulary from
 * clip/bpe_simple_vocab_16e6.txt.gz (see dq_tokenizer_builtin_path).
 * Returns the tokenizer, or NULL with a message naming the file, line and problem in err
 * (missing or malformed files, a special token that is not in the vocabulary, out of memory). */
dq_tokenizer_t *dq_tokenizer_load(const char *dir, char *err, size_t errlen);

/* Where the built-in vocabulary's merge file is looked for, in order: $DIFFQ_DATA_DIR/clip/, the
 * installed data folder, then the source tree this program was built from (so programs run from
 * a build folder work uninstalled). Writes the first that exists, or the installed path when none
 * does (so a message names it), into out. */
void dq_tokenizer_builtin_path(char *out, size_t len);

/* Chooses the rules later encodings follow (a loaded tokenizer starts with
 * DQ_TOKENIZER_RULES_CLIP). An out-of-range value is our bug: it asserts. */
void dq_tokenizer_set_rules(dq_tokenizer_t *self, dq_tokenizer_rules_t rules);
dq_tokenizer_rules_t dq_tokenizer_get_rules(const dq_tokenizer_t *self);

/* Frees the tokenizer and sets *self_p to NULL; does nothing when either is NULL. */
void dq_tokenizer_destroy(dq_tokenizer_t **self_p);

/* Encodes NUL-terminated UTF-8 text into ids: BOS, the text's tokens, EOS, without padding.
 * max_ids (at least 2) is the room in ids; when the text has more than max_ids - 2 tokens the
 * rest are dropped, EOS still ends the ids, *truncated (when not NULL) is set to true and a
 * warning is logged ("prompt truncated"), as diffusers does with max_ids 77.
 * Text that is not valid UTF-8 is rejected (transformers only ever sees valid Unicode).
 * Returns the number of ids written, or -1 with a message in err (invalid UTF-8, max_ids < 2,
 * out of memory); ids is then unspecified. */
int dq_tokenizer_encode(const dq_tokenizer_t *self, const char *utf8, int32_t *ids, int max_ids,
                        bool *truncated, char *err, size_t errlen);

/* Fills ids[count .. length-1] with the pad id (SD 1.5: <|endoftext|> = 49407; a folder's
 * tokenizer_config.json may name another, such as "!" = 0). Returns length, or -1 when
 * count > length or count < 0 (nothing written). */
int dq_tokenizer_pad(const dq_tokenizer_t *self, int32_t *ids, int count, int length);

/* The special ids and the vocabulary size. */
int32_t dq_tokenizer_bos(const dq_tokenizer_t *self);
int32_t dq_tokenizer_eos(const dq_tokenizer_t *self);
int32_t dq_tokenizer_pad_id(const dq_tokenizer_t *self);
size_t dq_tokenizer_vocab_size(const dq_tokenizer_t *self);

#endif
