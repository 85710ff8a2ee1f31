/* kernels/tokenizer_text.c: the CLIP tokenizer's text cleanup, following the normalizer of
 * transformers 5.x CLIPTokenizer (tokenizers: NFC, Replace(\s+ -> " "), Lowercase).
 * Unicode data comes from utf8proc. The OpenAI CLIP cleanup (dq_toktext_clean_clip) follows
 * simple_tokenizer.py's basic_clean, whitespace_clean and str.lower. */
#include "kernels/tokenizer_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "kernels/tokenizer_cps.h"
#include "kernels/tokenizer_ftfy.h"
#include "kernels/tokenizer_html.h"
#include "kernels/tokenizer_tables.h"

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

/* str.isspace: Unicode White_Space and U+001C..U+001F (Python's str.strip removes these). */
static bool s_py_isspace(int32_t cp) {
    return dq_toktext_is_space(cp) || (cp >= 0x1c && cp <= 0x1f);
}

static int s_cmp_range(const void *key, const void *elem) {
    int32_t cp = *(const int32_t *)key;
    const dq_toktab_range_t *r = elem;
    return cp < r->first ? -1 : cp > r->last ? 1 : 0;
}

static bool s_in(int32_t cp, const dq_toktab_range_t *table, size_t count) {
    return bsearch(&cp, table, count, sizeof *table, s_cmp_range) != NULL;
}

/* Python's handle_capital_sigma (Objects/unicodeobject.c): U+03A3 at text[i] lowercases to
 * final sigma when a cased character comes before it and none after it, skipping
 * case-ignorable characters both ways. */
static int32_t s_lower_sigma(const int32_t *text, size_t len, size_t i) {
    size_t j = i;
    while (j > 0 && s_in(text[j - 1], dq_toktab_case_ignorable, dq_toktab_case_ignorable_count))
        j--;
    if (j == 0 || !s_in(text[j - 1], dq_toktab_cased, dq_toktab_cased_count)) return 0x3c3;
    for (j = i + 1; j < len; j++)
        if (!s_in(text[j], dq_toktab_case_ignorable, dq_toktab_case_ignorable_count))
            return s_in(text[j], dq_toktab_cased, dq_toktab_cased_count) ? 0x3c3 : 0x3c2;
    return 0x3c2;
}

/* basic_clean's strip, whitespace_clean (regex \s+ -> " ", strip) and str.lower. */
static void s_clip_tail(const dq_tokcps_t *in, dq_tokcps_t *out) {
    size_t first = 0, end = in->len;
    while (first < end && s_py_isspace(in->cp[first]))
        first++;
    while (end > first && s_py_isspace(in->cp[end - 1]))
        end--;
    dq_tokcps_t collapsed = {0};
    for (size_t i = first; i < end; i++) {
        if (!dq_toktext_is_space(in->cp[i])) {
            dq_tokcps_push(&collapsed, in->cp[i]);
        } else if (i == first || !dq_toktext_is_space(in->cp[i - 1])) {
            dq_tokcps_push(&collapsed, ' ');
        }
    }
    first = 0;
    end = collapsed.len;
    while (first < end && s_py_isspace(collapsed.cp[first]))
        first++;
    while (end > first && s_py_isspace(collapsed.cp[end - 1]))
        end--;
    for (size_t i = first; i < end; i++) {
        int32_t cp = collapsed.cp[i];
        if (cp == 0x130) {
            dq_tokcps_push(out, 0x69);
            dq_tokcps_push(out, 0x307);
        } else if (cp == 0x3a3) {
            dq_tokcps_push(out, s_lower_sigma(collapsed.cp + first, end - first, i - first));
        } else {
            dq_tokcps_push(out, utf8proc_tolower(cp));
        }
    }
    if (collapsed.oom) out->oom = true;
    dq_tokcps_free(&collapsed);
}

char *dq_toktext_clean_clip(const char *text, size_t len, size_t *out_len, char *err,
                            size_t errlen) {
    if (dq_toktext_validate(text, len, err, errlen) != 0) return NULL;
    dq_tokcps_t a = {0}, b = {0};
    dq_tokcps_push_utf8(&a, text, len);
    dq_tokftfy_fix_text(a.cp, a.len, &b);
    a.len = 0;
    dq_tokhtml_unescape(b.cp, b.len, &a);
    b.len = 0;
    dq_tokhtml_unescape(a.cp, a.len, &b);
    a.len = 0;
    s_clip_tail(&b, &a);
    char *out = a.oom || b.oom ? NULL : dq_tokcps_to_utf8(&a, out_len);
    dq_tokcps_free(&a);
    dq_tokcps_free(&b);
    if (!out) snprintf(err, errlen, "out of memory cleaning %zu bytes of text", len);
    return out;
}
