/* kernels/tokenizer_bpe.h: CLIP's byte-level BPE: bytes -> printable characters -> merged tokens.
 */
#ifndef DQ_TOKENIZER_BPE_H
#define DQ_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/tokenizer_map.h"

/* The end-of-word marker CLIP appends to the last symbol of every word. */
#define DQ_TOKBPE_EOW "</w>"

/* The character GPT-2/CLIP's bytes_to_unicode() gives byte b: the printable Latin-1 bytes
 * ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves; the other 68 bytes, in byte order,
 * take U+0100, U+0101, ... Returns the code point. */
int32_t dq_tokbpe_byte_codepoint(uint8_t b);

/* Writes the UTF-8 of dq_tokbpe_byte_codepoint(b) into out (at least 2 bytes); returns its length.
 */
size_t dq_tokbpe_byte_utf8(uint8_t b, char *out);

/* Receives one token id of a word. A non-zero return stops the encoding. */
typedef int (*dq_tokbpe_emit_fn)(void *ctx, int32_t id);

/* Encodes one word (len > 0 bytes): maps each byte to its character, appends the end-of-word
 * marker to the last one, then repeatedly merges the adjacent pair with the lowest rank in
 * merges ("A B" -> rank), the leftmost among equals, until no pair has a rank (tokenizers' BPE
 * model; OpenAI CLIP's simple_tokenizer.bpe gives the same). Each final symbol is looked up in
 * vocab; one that is missing gives unk, or is skipped when unk < 0. Calls emit for each id in
 * order. Returns 0, -1 when out of memory, or the first non-zero value emit returned. */
int dq_tokbpe_encode_word(const dq_tokmap_t *vocab, const dq_tokmap_t *merges, int32_t unk,
                          const char *word, size_t len, dq_tokbpe_emit_fn emit, void *ctx);

#endif
