/* kernels/tokenizer_html.c: Python's html.unescape (Lib/html/__init__.py, Python 3.11), as OpenAI
 * CLIP's tokenizer applies it (twice) after ftfy. Works on code points, as Python does. */
#include "kernels/tokenizer_html.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

/* Bytes 0x80..0x9F in Windows-1252; 0x81, 0x8D, 0x8F, 0x90 and 0x9D are undefined there and
 * stay themselves (html's _invalid_charrefs and ftfy's sloppy codec agree on this). */
static const uint16_t s_cp1252[32] = {
    0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008d, 0x017d, 0x008f, 0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178};

int32_t dq_tokhtml_cp1252(int32_t cp) {
    return cp >= 0x80 && cp <= 0x9f ? s_cp1252[cp - 0x80] : cp;
}

static int s_cmp_entity(const void *key, const void *elem) {
    return strcmp(key, ((const dq_toktab_entity_t *)elem)->name);
}

const dq_toktab_entity_t *dq_tokhtml_find(const dq_toktab_entity_t *table, size_t count,
                                          const char *name) {
    return bsearch(name, table, count, sizeof *table, s_cmp_entity);
}

/* Python's _invalid_codepoints: references to these decode to nothing. */
static bool s_invalid_codepoint(uint32_t n) {
    return (n >= 0x1 && n <= 0x8) || n == 0xb || (n >= 0xe && n <= 0x1f) ||
           (n >= 0x7f && n <= 0x9f) || (n >= 0xfdd0 && n <= 0xfdef) ||
           ((n & 0xfffe) == 0xfffe && n <= 0x10ffff);
}

/* _replace_charref for a numeric reference; num is saturated at 0x110000. */
static void s_numeric(uint32_t num, dq_tokcps_t *out) {
    if (num == 0) {
        dq_tokcps_push(out, 0xfffd);
    } else if (num == 0x0d) {
        dq_tokcps_push(out, 0x0d);
    } else if (num >= 0x80 && num <= 0x9f) {
        dq_tokcps_push(out, dq_tokhtml_cp1252((int32_t)num));
    } else if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) {
        dq_tokcps_push(out, 0xfffd);
    } else if (!s_invalid_codepoint(num)) {
        dq_tokcps_push(out, (int32_t)num);
    }
}

static int s_hex(int32_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Tries "#[0-9]+;?" or "#[xX][0-9a-fA-F]+;?" at in[0..n) (just after "&"); returns the length
 * it consumed (0: no match) after appending what it decodes to. */
static size_t s_try_numeric(const int32_t *in, size_t n, dq_tokcps_t *out) {
    if (n < 2 || in[0] != '#') return 0;
    size_t at = 1;
    int base = 10;
    if (in[1] < '0' || in[1] > '9') {
        if ((in[1] != 'x' && in[1] != 'X') || n < 3 || s_hex(in[2]) < 0) return 0;
        base = 16;
        at = 2;
    }
    uint32_t num = 0;
    for (; at < n; at++) {
        int d = base == 16 ? s_hex(in[at]) : (in[at] >= '0' && in[at] <= '9' ? in[at] - '0' : -1);
        if (d < 0) break;
        num = num > 0x10ffff ? 0x110000 : num * (uint32_t)base + (uint32_t)d;
    }
    if (at < n && in[at] == ';') at++;
    s_numeric(num > 0x10ffff ? 0x110000 : num, out);
    return at;
}

/* Characters the named-reference pattern [^\t\n\f <&#;] excludes. */
static bool s_name_stop(int32_t c) {
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
           c == ';';
}

/* The longest name the pattern takes (32 characters and an optional ";"). */
#define NAME_MAX_CHARS 32

/* Tries "[^\t\n\f <&#;]{1,32};?" at in[0..n) (just after "&"); returns the length consumed (0:
 * no match) after appending the replacement. */
static size_t s_try_named(const int32_t *in, size_t n, dq_tokcps_t *out) {
    size_t len = 0;
    while (len < n && len < NAME_MAX_CHARS && !s_name_stop(in[len]))
        len++;
    if (len == 0) return 0;
    if (len < n && in[len] == ';') len++;
    /* Names are ASCII letters and digits: any other character (NUL included) cannot match, so
     * it becomes byte 1 in the key. */
    char key[NAME_MAX_CHARS + 2];
    for (size_t i = 0; i < len; i++)
        key[i] = in[i] > 0 && in[i] < 0x80 ? (char)in[i] : '\1';
    /* The whole name, then its longest known prefix of 2 or more characters. */
    for (size_t x = len;; x--) {
        key[x] = '\0';
        const dq_toktab_entity_t *e = dq_tokhtml_find(dq_toktab_html5, dq_toktab_html5_count, key);
        if (e) {
            dq_tokcps_push_utf8(out, e->text, strlen(e->text));
            dq_tokcps_push_n(out, in + x, len - x);
            return len;
        }
        if (x <= 2) break;
    }
    dq_tokcps_push(out, '&');
    dq_tokcps_push_n(out, in, len);
    return len;
}

void dq_tokhtml_unescape(const int32_t *in, size_t n, dq_tokcps_t *out) {
    for (size_t at = 0; at < n;) {
        if (in[at] != '&') {
            dq_tokcps_push(out, in[at++]);
            continue;
        }
        size_t used = s_try_numeric(in + at + 1, n - at - 1, out);
        if (!used) used = s_try_named(in + at + 1, n - at - 1, out);
        if (used) {
            at += 1 + used;
        } else {
            dq_tokcps_push(out, '&');
            at++;
        }
    }
}
