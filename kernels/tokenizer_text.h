/* kernels/tokenizer_text.h: the CLIP tokenizer's text cleanup (NFC, whitespace, lowercase). */
#ifndef DQ_TOKENIZER_TEXT_H
#define DQ_TOKENIZER_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks that text (len bytes) is well-formed UTF-8 without surrogates. Returns 0, or -1 with
 * "invalid UTF-8 at byte N" in err. */
int dq_toktext_validate(const char *text, size_t len, char *err, size_t errlen);

/* Normalizes text the way transformers 5.x CLIPTokenizer's normalizer does: Unicode NFC, every
 * run of white space replaced by one space, then each character lowercased on its own (full
 * lowercase mapping without context: U+0130 becomes "i" U+0307, a final capital sigma becomes
 * U+03C3, not U+03C2). Input must be valid UTF-8 (see dq_toktext_validate).
 * Returns a new NUL-terminated string (caller frees) and its length in *out_len, or NULL with a
 * message in err when out of memory or the text is not valid UTF-8. */
char *dq_toktext_normalize(const char *text, size_t len, size_t *out_len, char *err, size_t errlen);

/* Cleans text the way OpenAI CLIP's simple_tokenizer.py does (and transformers 4.x's
 * CLIPTokenizer with ftfy installed, apart from its html.unescape): ftfy.fix_text
 * (tokenizer_ftfy.h), html.unescape twice (tokenizer_html.h), strip,
 * every run of white space (the regex module's \s) replaced by one space, strip, then Python's
 * str.lower: the full mapping (U+0130 -> "i" U+0307) and the final-sigma rule (capital sigma
 * after a cased letter and not before one, case-ignorable characters skipped, becomes U+03C2).
 * Input must be valid UTF-8. Returns a new NUL-terminated string (caller frees) and its length
 * in *out_len, or NULL with a message in err when out of memory or the text is not UTF-8. */
char *dq_toktext_clean_clip(const char *text, size_t len, size_t *out_len, char *err,
                            size_t errlen);

/* True for the characters the tokenizer treats as white space: Unicode White_Space
 * (U+0009..U+000D, U+0020, U+0085, and the Zs, Zl and Zp categories). */
bool dq_toktext_is_space(int32_t cp);

/* True for letters (categories L*) and numbers (categories N*). */
bool dq_toktext_is_letter(int32_t cp);
bool dq_toktext_is_number(int32_t cp);

#endif
