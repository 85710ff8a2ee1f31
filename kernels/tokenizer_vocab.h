/* kernels/tokenizer_vocab.h: loading CLIP's vocabulary and merges (a model's tokenizer/ folder
 * or OpenAI's bpe_simple_vocab_16e6.txt.gz) and the special-token names. */
#ifndef DQ_TOKENIZER_VOCAB_H
#define DQ_TOKENIZER_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/tokenizer_map.h"

/* OpenAI CLIP's built-in vocabulary: 256 byte characters, the same with "</w>", the first
 * 48894 merges joined, then the two special tokens = 49408 ids. */
#define DQ_TOKVOCAB_CLIP_MERGES 48894
#define DQ_TOKVOCAB_CLIP_SIZE   49408
#define DQ_TOKVOCAB_BPE_FILE    "bpe_simple_vocab_16e6.txt.gz"

/* The special tokens, in the order transformers adds them (a later one with the same text sets
 * whether that text is matched before or after normalization). */
typedef enum {
    DQ_TOKVOCAB_BOS,
    DQ_TOKVOCAB_EOS,
    DQ_TOKVOCAB_UNK,
    DQ_TOKVOCAB_PAD,
    DQ_TOKVOCAB_SPECIAL_COUNT
} dq_tokvocab_special_t;

/* "bos", "eos", "unk", "pad". */
extern const char *const dq_tokvocab_special_names[DQ_TOKVOCAB_SPECIAL_COUNT];

/* One special token as a tokenizer_config.json names it. */
typedef struct {
    char *text;      /* owned; looked up in the vocabulary by the caller */
    bool normalized; /* matched in the normalized text (an AddedToken with "normalized": true);
                        a plain string is matched in the raw text */
} dq_tokvocab_name_t;

/* A token of tokenizer_config.json's "added_tokens_decoder": matched in the text as a whole
 * before any other splitting (special tokens, textual-inversion words). */
typedef struct {
    char *text;      /* owned */
    int32_t id;      /* also entered in vocab */
    bool normalized; /* matched in the normalized text, else in the raw text */
} dq_tokvocab_added_t;

/* What a tokenizer is made of. */
typedef struct {
    dq_tokmap_t *vocab;  /* owned; token -> id */
    dq_tokmap_t *merges; /* owned; "A B" -> rank (0 merges first) */
    dq_tokvocab_name_t special[DQ_TOKVOCAB_SPECIAL_COUNT]; /* owned texts */
    dq_tokvocab_added_t *added;                            /* owned array; its flags win */
    size_t added_count;
} dq_tokvocab_t;

/* Builds OpenAI CLIP's vocabulary and merges from the gzip'd merges file at path, exactly as
 * simple_tokenizer.SimpleTokenizer does. Special tokens as Stable Diffusion 1.x's
 * tokenizer_config.json names them: bos <|startoftext|> (normalized), eos, unk and pad
 * <|endoftext|> (pad is a plain string, so <|endoftext|> is matched in the raw text).
 * Returns a new dq_tokvocab_t, or NULL with a message in err (file that cannot be read, a line
 * that is not "A B", fewer than 48894 merges, out of memory). */
dq_tokvocab_t *dq_tokvocab_load_bpe_gz(const char *path, char *err, size_t errlen);

/* Reads dir/vocab.json (an object of token -> id, with jansson) and dir/merges.txt (an optional
 * "#version" line, then one "A B" merge a line, both parts and their join in the vocabulary),
 * then the special-token names from dir/tokenizer_config.json, falling back on
 * dir/special_tokens_map.json, falling back on CLIPTokenizer's defaults (bos <|startoftext|>;
 * eos, pad and unk <|endoftext|>; plain strings). A name is a string (matched in the raw text)
 * or an AddedToken object with a "content" string and an optional "normalized" boolean (default
 * false). tokenizer_config.json's "added_tokens_decoder" (id -> {"content", "normalized", ...},
 * written by transformers 4.34 and later) adds tokens and decides how each is matched; an entry
 * asking for lstrip, rstrip or single_word is refused as unsupported.
 * Returns a new dq_tokvocab_t, or NULL with "file:line: what was expected" in err. */
dq_tokvocab_t *dq_tokvocab_load_dir(const char *dir, char *err, size_t errlen);

void dq_tokvocab_destroy(dq_tokvocab_t **self_p);

#endif
