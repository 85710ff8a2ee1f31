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

#endif
