/* kernels/tokenizer_text.c: the CLIP tokenizer's text cleanup, following the normalizer of
 * transformers 5.x CLIPTokenizer (tokenizers: NFC, Replace(\s+ -> " "), Lowercase).
 * Unicode data comes from utf8proc. */
#include "kernels/tokenizer_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

int dq_toktext_validate(const char *text, size_t len, char *err, size_t errlen) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    size_t at = 0;
    while (at < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + at, (utf8proc_ssize_t)(len - at), &cp);
        if (n <= 0 || cp < 0) {
            snprintf(err, errlen, "invalid UTF-8 at byte %zu", at);
            return -1;
        }
        at += (size_t)n;
    }
    return 0;
}

bool dq_toktext_is_space(int32_t cp) {
    if ((cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85) return true;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

bool dq_toktext_is_letter(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

bool dq_toktext_is_number(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO;
}

/* Appends the lowercase form of cp. utf8proc gives the simple (one-character) mapping; the only
 * unconditional multi-character lowercase mapping in Unicode's SpecialCasing.txt is U+0130. */
static size_t s_put_lower(int32_t cp, utf8proc_uint8_t *dst) {
    if (cp == 0x130) {
        size_t n = (size_t)utf8proc_encode_char(0x69, dst);
        return n + (size_t)utf8proc_encode_char(0x307, dst + n);
    }
    return (size_t)utf8proc_encode_char(utf8proc_tolower(cp), dst);
}

char *dq_toktext_normalize(const char *text, size_t len, size_t *out_len, char *err,
                           size_t errlen) {
    if (dq_toktext_validate(text, len, err, errlen) != 0) return NULL;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t nfc_len = 0;
    if (len > 0) {
        nfc_len = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                               UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (nfc_len < 0) {
            snprintf(err, errlen, "cannot normalize text: %s", utf8proc_errmsg(nfc_len));
            return NULL;
        }
    }
    /* A lowercase form takes at most 3/2 the bytes of its capital (U+0130 -> 3 bytes from 2,
     * U+023A -> 3 from 2), and white space only shrinks, so twice the input always fits. */
    utf8proc_uint8_t *out = malloc((size_t)nfc_len * 2 + 1);
    if (!out) {
        free(nfc);
        snprintf(err, errlen, "out of memory normalizing %zu bytes of text", len);
        return NULL;
    }
    size_t o = 0;
    bool in_space = false;
    for (utf8proc_ssize_t at = 0; at < nfc_len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(nfc + at, nfc_len - at, &cp);
        if (n <= 0) { /* utf8proc's own output is valid; this traps a bug in the above */
            free(nfc);
            free(out);
            snprintf(err, errlen, "internal error: NFC output is not UTF-8");
            return NULL;
        }
        at += n;
        if (dq_toktext_is_space(cp)) {
            if (!in_space) out[o++] = ' ';
            in_space = true;
            continue;
        }
        in_space = false;
        o += s_put_lower(cp, out + o);
    }
    out[o] = '\0';
    free(nfc);
    *out_len = o;
    return (char *)out;
}
