/* kernels/tokenizer_mojibake.h: ftfy 6.3.1's fix_encoding: finds text that was decoded with the
 * wrong single-byte codec ("cafÃ©") and decodes it again as UTF-8. */
#ifndef DQ_TOKENIZER_MOJIBAKE_H
#define DQ_TOKENIZER_MOJIBAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/tokenizer_cps.h"

/* ftfy.badness.is_bad: true when some sequence of in[0..n) matches BADNESS_RE (characters that
 * are unlikely together except as mojibake). */
bool dq_tokmoji_is_bad(const int32_t *in, size_t n);

/* Appends to out what ftfy.fix_encoding(text) (default settings) returns for in[0..n): unchanged
 * when the text is ASCII or not bad; else re-encoded with the first of ftfy's single-byte codecs
 * (Latin-1, sloppy Windows-1252/1251/1250/1253/1254/1257, ISO-8859-2, MacRoman, CP437) that can
 * encode it and whose bytes decode as UTF-8 (after restore_byte_a0, replace_lossy_sequences, and
 * with CESU-8 and "C0 80" accepted when those bytes occur); else decode_inconsistent_utf8 on the
 * UTF-8-looking runs; else Latin-1 read as Windows-1252; else C1 controls as Windows-1252;
 * repeated until nothing changes. Fails only by running out of memory (out->oom). */
void dq_tokmoji_fix_encoding(const int32_t *in, size_t n, dq_tokcps_t *out);

#endif
