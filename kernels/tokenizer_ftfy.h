/* kernels/tokenizer_ftfy.h: ftfy 6.3.1's fix_text with its default settings, as OpenAI CLIP's
 * tokenizer (and transformers 4.x's with ftfy installed) runs it on a prompt. */
#ifndef DQ_TOKENIZER_FTFY_H
#define DQ_TOKENIZER_FTFY_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/tokenizer_cps.h"

/* Appends to out the code points in[0..n) fixed as ftfy.fix_text(text) does with the default
 * TextFixerConfig: line by line (ftfy's segments; a line holding "<" turns HTML unescaping off
 * for itself and every later line, as ftfy's "auto" does), each fixed until nothing changes by
 * unescape_html (HTML5 entities ending in ";", ftfy's all-caps names, numeric references),
 * fix_encoding (mojibake repair: see tokenizer_mojibake.h), fix_c1_controls,
 * fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
 * remove_terminal_escapes, remove_control_chars and NFC. fix_surrogates has nothing to do: the
 * input is valid UTF-8, which has no surrogates. Fails only by running out of memory
 * (out->oom). */
void dq_tokftfy_fix_text(const int32_t *in, size_t n, dq_tokcps_t *out);

#endif
