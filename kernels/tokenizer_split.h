/* kernels/tokenizer_split.h: CLIP pre-tokenization: normalized text -> words for BPE. */
#ifndef DQ_TOKENIZER_SPLIT_H
#define DQ_TOKENIZER_SPLIT_H

#include <stddef.h>

/* Receives one word (len bytes of valid UTF-8, never empty). A non-zero return stops the split. */
typedef int (*dq_toksplit_fn)(void *ctx, const char *word, size_t len);

/* Splits normalized text (see dq_toktext_normalize; valid UTF-8) into words with CLIP's pattern
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (leftmost match, alternatives in that order, white space dropped), then applies the GPT-2
 * pattern of tokenizers' ByteLevel pre-tokenizer to each match. That second split only changes
 * the special-token strings (they reach here only when the text spelled them with capitals that
 * lowercasing removed): "<|endoftext|>" becomes "<|", "endoftext", "|>".
 * Calls fn for each word in order. Returns 0, or the first non-zero value fn returned. */
int dq_toksplit_words(const char *text, size_t len, dq_toksplit_fn fn, void *ctx);

/* Receives a special token that CLIP's pattern matched whole: 0 for "<|startoftext|>", 1 for
 * "<|endoftext|>". A non-zero return stops the split. */
typedef int (*dq_toksplit_special_fn)(void *ctx, int which);

/* Splits text cleaned by dq_toktext_clean_clip with OpenAI CLIP's pattern (the same as above,
 * compiled with IGNORECASE, so U+017F counts as "s") and no second split: a special-token string
 * where a match starts is passed to special (spelled with U+017F it is one word for fn, as
 * OpenAI's bpe() only knows the exact strings), every other match to fn. Unlike splitting the text
 * at the special tokens first, a symbol run swallows one that follows it ("x!<|endoftext|>"
 * gives "!<|", "endoftext", "|>"), as re.findall does in OpenAI's tokenizer.
 * Returns 0, or the first non-zero value fn or special returned. */
int dq_toksplit_words_clip(const char *text, size_t len, dq_toksplit_fn fn,
                           dq_toksplit_special_fn special, void *ctx);

#endif
