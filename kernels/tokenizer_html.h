/* kernels/tokenizer_html.h: Python's html.unescape, as OpenAI CLIP's tokenizer applies it. */
#ifndef DQ_TOKENIZER_HTML_H
#define DQ_TOKENIZER_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/tokenizer_cps.h"
#include "kernels/tokenizer_tables.h"

/* Appends to out the code points in[0..n) with character references decoded as Python 3.11's
 * html.unescape does: "&name;" and the legacy names without ";" from the HTML5 table (the longest
 * known prefix of an unknown name, as in "&ampx" -> "&x"), "&#NNN;" and "&#xHH;" with or without
 * ";" (0 and surrogates and values past U+10FFFF -> U+FFFD, 0x80..0x9F read as Windows-1252,
 * 0x0D -> CR, other control and non-characters dropped). Python raises ValueError on a decimal
 * reference of over 4300 digits; here it is simply past U+10FFFF (U+FFFD). Cannot fail except
 * by out of memory (out->oom). */
void dq_tokhtml_unescape(const int32_t *in, size_t n, dq_tokcps_t *out);

/* The character Windows-1252 (with its five undefined bytes kept as themselves, ftfy's
 * "sloppy-windows-1252") gives byte cp, for cp in 0x80..0x9F. */
int32_t dq_tokhtml_cp1252(int32_t cp);

/* Finds name (NUL-terminated, without "&") in a table sorted by name; NULL when absent. */
const dq_toktab_entity_t *dq_tokhtml_find(const dq_toktab_entity_t *table, size_t count,
                                          const char *name);

#endif
