/* kernels/tokenizer_ftfy.c: ftfy 6.3.1's fix_text with its default settings (ftfy/__init__.py
 * fix_text and fix_and_explain, ftfy/fixes.py, ftfy/chardata.py), on code points as Python
 * does. The tables ftfy builds from Python's data are in tokenizer_tables.c. */
#include "kernels/tokenizer_ftfy.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "kernels/tokenizer_html.h"
#include "kernels/tokenizer_mojibake.h"
#include "kernels/tokenizer_tables.h"

/* ftfy's max_decode_length: a line longer than this many code points is fixed in pieces. */
#define FTFY_MAX_DECODE_LENGTH 1000000

/* The longest name ftfy's HTML_ENTITY_RE "&#?[0-9A-Za-z]{1,24};" accepts. */
#define FTFY_ENTITY_MAX 24

static bool s_ascii_alnum(int32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* fixes.unescape_html: entities of HTML_ENTITY_RE that are in ftfy's table (HTML5 names ending
 * in ";" and the all-caps ones), and numeric references that html.unescape decodes whole. */
static void s_unescape_html(const dq_tokcps_t *in, dq_tokcps_t *out) {
    for (size_t at = 0; at < in->len;) {
        const int32_t *s = in->cp + at;
        size_t rest = in->len - at, j = 1, run = 0;
        if (s[0] == '&') {
            if (j < rest && s[j] == '#') j++;
            while (j + run < rest && s_ascii_alnum(s[j + run]))
                run++;
        }
        if (s[0] != '&' || run < 1 || run > FTFY_ENTITY_MAX || j + run >= rest ||
            s[j + run] != ';') {
            dq_tokcps_push(out, s[0]);
            at++;
            continue;
        }
        size_t len = j + run + 1; /* "&", "#"?, the name, ";" */
        char key[FTFY_ENTITY_MAX + 3];
        for (size_t i = 1; i < len; i++)
            key[i - 1] = (char)s[i];
        key[len - 1] = '\0';
        const dq_toktab_entity_t *e = dq_tokhtml_find(dq_toktab_html5, dq_toktab_html5_count, key);
        if (!e) e = dq_tokhtml_find(dq_toktab_ftfy_caps, dq_toktab_ftfy_caps_count, key);
        if (e) {
            dq_tokcps_push_utf8(out, e->text, strlen(e->text));
        } else if (j == 2) {
            /* "&#...;": html.unescape's result, unless it left a ";" (it decoded only part). */
            dq_tokcps_t dec = {0};
            dq_tokhtml_unescape(s, len, &dec);
            bool partial = dec.oom;
            for (size_t i = 0; i < dec.len && !partial; i++)
                partial = dec.cp[i] == ';';
            if (partial)
                dq_tokcps_push_n(out, s, len);
            else
                dq_tokcps_push_n(out, dec.cp, dec.len);
            if (dec.oom) out->oom = true;
            dq_tokcps_free(&dec);
        } else {
            dq_tokcps_push_n(out, s, len);
        }
        at += len;
    }
}

/* fixes.fix_c1_controls: U+0080..U+009F read as sloppy Windows-1252. */
static int32_t s_fix_c1(int32_t c) {
    return dq_tokhtml_cp1252(c);
}

/* chardata.LIGATURES, used by fixes.fix_latin_ligatures. */
static const struct {
    int32_t cp;
    int32_t to[3];
} s_ligatures[] = {
    {0x0132, {'I', 'J'}},    {0x0133, {'i', 'j'}},      {0x0149, {0x02bc, 'n'}},
    {0x01c4, {'D', 0x017d}}, {0x01c5, {'D', 0x017e}},   {0x01c6, {'d', 0x017e}},
    {0x01c7, {'L', 'J'}},    {0x01c8, {'L', 'j'}},      {0x01c9, {'l', 'j'}},
    {0x01ca, {'N', 'J'}},    {0x01cb, {'N', 'j'}},      {0x01cc, {'n', 'j'}},
    {0x01f1, {'D', 'Z'}},    {0x01f2, {'D', 'z'}},      {0x01f3, {'d', 'z'}},
    {0xfb00, {'f', 'f'}},    {0xfb01, {'f', 'i'}},      {0xfb02, {'f', 'l'}},
    {0xfb03, {'f', 'f', 'i'}}, {0xfb04, {'f', 'f', 'l'}}, {0xfb05, {0x017f, 't'}},
    {0xfb06, {'s', 't'}},
};

static bool s_put_ligature(int32_t c, dq_tokcps_t *out) {
    for (size_t i = 0; i < sizeof s_ligatures / sizeof *s_ligatures; i++) {
        if (s_ligatures[i].cp != c) continue;
        for (int k = 0; k < 3 && s_ligatures[i].to[k]; k++)
            dq_tokcps_push(out, s_ligatures[i].to[k]);
        return true;
    }
    return false;
}

static int s_cmp_width(const void *key, const void *elem) {
    int32_t a = *(const int32_t *)key, b = ((const dq_toktab_width_t *)elem)->cp;
    return (a > b) - (a < b);
}

/* fixes.fix_character_width (chardata.WIDTH_MAP). */
static bool s_put_width(int32_t c, dq_tokcps_t *out) {
    if (c != 0x3000 && (c < 0xff01 || c > 0xffef)) return false;
    const dq_toktab_width_t *w = bsearch(&c, dq_toktab_width, dq_toktab_width_count,
                                         sizeof *dq_toktab_width, s_cmp_width);
    if (!w) return false;
    dq_tokcps_push_utf8(out, w->text, strlen(w->text));
    return true;
}

/* fixes.uncurl_quotes: SINGLE_QUOTE_RE [\u02bc\u2018-\u201b], DOUBLE_QUOTE_RE [\u201c-\u201f]. */
static int32_t s_uncurl(int32_t c) {
    if (c == 0x02bc || (c >= 0x2018 && c <= 0x201b)) return '\'';
    if (c >= 0x201c && c <= 0x201f) return '"';
    return c;
}

/* chardata.CONTROL_CHARS, removed by fixes.remove_control_chars. */
static bool s_control(int32_t c) {
    return (c >= 0x00 && c <= 0x08) || c == 0x0b || (c >= 0x0e && c <= 0x1f) || c == 0x7f ||
           (c >= 0x206a && c <= 0x206f) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffc);
}

/* Python's \d on a str pattern: Unicode decimal digits (category Nd). */
static bool s_digit(int32_t c) {
    return utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
}

static bool s_ascii_letter(int32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One pass of the per-character fixers, in fix_and_explain's order (each one over the whole
 * text, as ftfy does, because a fixer's output can feed the next one). */
static void s_fix_chars(dq_tokcps_t *text, dq_tokcps_t *tmp) {
    /* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes */
    tmp->len = 0;
    for (size_t i = 0; i < text->len; i++) {
        int32_t c = s_fix_c1(text->cp[i]);
        if (!s_put_ligature(c, tmp)) dq_tokcps_push(tmp, c);
    }
    dq_tokcps_swap(text, tmp);
    tmp->len = 0;
    for (size_t i = 0; i < text->len; i++)
        if (!s_put_width(text->cp[i], tmp)) dq_tokcps_push(tmp, text->cp[i]);
    dq_tokcps_swap(text, tmp);
    /* uncurl_quotes and fix_line_breaks ("\r\n", then "\r", U+2028, U+2029, U+0085 -> "\n") */
    tmp->len = 0;
    for (size_t i = 0; i < text->len; i++) {
        int32_t c = s_uncurl(text->cp[i]);
        if (c == '\r' && i + 1 < text->len && text->cp[i + 1] == '\n') continue;
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        dq_tokcps_push(tmp, c);
    }
    dq_tokcps_swap(text, tmp);
    /* remove_terminal_escapes: ANSI_RE "\033\[((?:\d|;)*)([a-zA-Z])", then remove_control_chars */
    tmp->len = 0;
    for (size_t i = 0; i < text->len; i++) {
        if (text->cp[i] == 0x1b && i + 1 < text->len && text->cp[i + 1] == '[') {
            size_t j = i + 2;
            while (j < text->len && (s_digit(text->cp[j]) || text->cp[j] == ';'))
                j++;
            if (j < text->len && s_ascii_letter(text->cp[j])) {
                i = j;
                continue;
            }
        }
        if (!s_control(text->cp[i])) dq_tokcps_push(tmp, text->cp[i]);
    }
    dq_tokcps_swap(text, tmp);
}

/* unicodedata.normalize("NFC", text), through utf8proc. */
static void s_nfc(dq_tokcps_t *text, dq_tokcps_t *tmp) {
    size_t len = 0;
    char *utf8 = dq_tokcps_to_utf8(text, &len);
    if (!utf8) {
        text->oom = true;
        return;
    }
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)utf8, (utf8proc_ssize_t)len, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    free(utf8);
    if (n < 0) { /* only out of memory: the text is valid Unicode without surrogates */
        text->oom = true;
        return;
    }
    tmp->len = 0;
    dq_tokcps_push_utf8(tmp, (const char *)nfc, (size_t)n);
    free(nfc);
    dq_tokcps_swap(text, tmp);
}

static bool s_same(const dq_tokcps_t *a, const dq_tokcps_t *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->cp, b->cp, a->len * sizeof *a->cp) == 0);
}

/* fix_and_explain on one segment: the fixers again and again until the text stops changing. */
static void s_fix_segment(const int32_t *in, size_t n, bool unescape, dq_tokcps_t *out) {
    dq_tokcps_t text = {0}, prev = {0}, tmp = {0};
    dq_tokcps_push_n(&text, in, n);
    for (;;) {
        prev.len = 0;
        dq_tokcps_push_n(&prev, text.cp, text.len);
        if (unescape) {
            tmp.len = 0;
            s_unescape_html(&text, &tmp);
            dq_tokcps_swap(&text, &tmp);
        }
        tmp.len = 0;
        dq_tokmoji_fix_encoding(text.cp, text.len, &tmp);
        dq_tokcps_swap(&text, &tmp);
        s_fix_chars(&text, &tmp);
        s_nfc(&text, &tmp);
        if (text.oom || prev.oom || tmp.oom || s_same(&text, &prev)) break;
    }
    if (text.oom || prev.oom || tmp.oom) out->oom = true;
    dq_tokcps_push_n(out, text.cp, text.len);
    dq_tokcps_free(&text);
    dq_tokcps_free(&prev);
    dq_tokcps_free(&tmp);
}

void dq_tokftfy_fix_text(const int32_t *in, size_t n, dq_tokcps_t *out) {
    /* fix_text's unescape_html="auto" is switched off for good by the first segment with "<". */
    bool unescape = true;
    for (size_t pos = 0; pos < n && !out->oom;) {
        size_t end = pos;
        while (end < n && in[end] != '\n')
            end++;
        end = end < n ? end + 1 : n;
        if (end - pos > FTFY_MAX_DECODE_LENGTH) end = pos + FTFY_MAX_DECODE_LENGTH;
        for (size_t i = pos; i < end && unescape; i++)
            if (in[i] == '<') unescape = false;
        s_fix_segment(in + pos, end - pos, unescape, out);
        pos = end;
    }
}
