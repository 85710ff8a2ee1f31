/* kernels/tokenizer_mojibake.c: ftfy 6.3.1's fix_encoding (ftfy/__init__.py
 * _fix_encoding_one_step_and_explain, ftfy/fixes.py, ftfy/badness.py, ftfy/bad_codecs), on code
 * points as Python does; the regexes and codecs come as tables (tokenizer_mojibake_tables.c). */
#include "kernels/tokenizer_mojibake.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/tokenizer_html.h"
#include "kernels/tokenizer_tables.h"

/* Growable bytes for the re-encoded text. */
typedef struct {
    uint8_t *b; /* owned */
    size_t len, cap;
    bool oom;
} bytes_t;

static void s_put(bytes_t *s, const uint8_t *b, size_t n) {
    if (s->oom) return;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        while (cap < s->len + n)
            cap *= 2;
        uint8_t *nb = realloc(s->b, cap);
        if (!nb) {
            s->oom = true;
            return;
        }
        s->b = nb;
        s->cap = cap;
    }
    memcpy(s->b + s->len, b, n);
    s->len += n;
}

static int s_cmp_range(const void *key, const void *elem) {
    int32_t cp = *(const int32_t *)key;
    const dq_toktab_range_t *r = elem;
    return cp < r->first ? -1 : cp > r->last ? 1 : 0;
}

static bool s_in_set(int set, int32_t cp) {
    const dq_toktab_set_t *s = &dq_toktab_sets[set];
    bool in = s->count && bsearch(&cp, s->ranges, s->count, sizeof *s->ranges, s_cmp_range);
    return in != s->negate;
}

/* Does the rest of alternative seq, from item k, match at t[pos..n)? */
static bool s_match_items(const dq_toktab_seq_t *seq, size_t k, const int32_t *t, size_t n,
                          size_t pos) {
    if (k == seq->count) return true;
    const dq_toktab_item_t *it = &seq->items[k];
    switch (it->kind) {
    case 2: /* ^ */
        return pos == 0 && s_match_items(seq, k + 1, t, n, pos);
    case 1: /* . */
        return pos < n && t[pos] != '\n' && s_match_items(seq, k + 1, t, n, pos + 1);
    default:
        if (pos < n && s_in_set(it->set, t[pos]) && s_match_items(seq, k + 1, t, n, pos + 1))
            return true;
        return it->optional && s_match_items(seq, k + 1, t, n, pos);
    }
}

bool dq_tokmoji_is_bad(const int32_t *in, size_t n) {
    for (size_t pos = 0; pos <= n; pos++)
        for (size_t a = 0; a < dq_toktab_badness_count; a++)
            if (s_match_items(&dq_toktab_badness[a], 0, in, n, pos)) return true;
    return false;
}

/* The byte of codec cm that decodes to cp, or -1 (chardata.possible_encoding says no). */
static int s_encode_char(const dq_toktab_charmap_t *cm, int32_t cp) {
    if (cp < 0x80 && cp != 0x1a) return cp;
    if (cm->dec[0x1a] == cp) return 0x1a;
    for (int b = 0x80; b < 0x100; b++)
        if (cm->dec[b] == cp) return b;
    return -1;
}

/* text.encode(codec) when possible_encoding(text, codec); false when some character is not in
 * the codec. */
static bool s_encode(const dq_toktab_charmap_t *cm, const int32_t *t, size_t n, bytes_t *out) {
    for (size_t i = 0; i < n; i++) {
        int b = s_encode_char(cm, t[i]);
        if (b < 0) return false;
        uint8_t byte = (uint8_t)b;
        s_put(out, &byte, 1);
    }
    return true;
}

/* Which alternative of pats matches at b[at..n) (first in order), or -1. */
static int s_bytepat_at(const dq_toktab_bytepat_t *pats, size_t count, const uint8_t *b, size_t n,
                        size_t at) {
    for (size_t a = 0; a < count; a++) {
        const dq_toktab_bytepat_t *p = &pats[a];
        if (n - at < p->len) continue;
        size_t k = 0;
        while (k < p->len && (p->mask[k][b[at + k] / 32] >> (b[at + k] % 32)) & 1u)
            k++;
        if (k == p->len) return (int)a;
    }
    return -1;
}

/* A_GRAVE_WORD_RE b"\xc3 (?! |quele|quela|quilo|s )" -> b"\xc3\xa0 ", then ALTERED_UTF8_RE's
 * matches with their spaces made 0xA0 (fixes.restore_byte_a0). */
static void s_restore_byte_a0(const bytes_t *in, bytes_t *out) {
    static const char *const keep[] = {" ", "quele", "quela", "quilo", "s "};
    bytes_t mid = {0};
    for (size_t i = 0; i < in->len;) {
        if (in->b[i] == 0xc3 && i + 1 < in->len && in->b[i + 1] == ' ') {
            bool kept = false;
            for (size_t k = 0; k < sizeof keep / sizeof *keep && !kept; k++) {
                size_t l = strlen(keep[k]);
                kept = in->len - (i + 2) >= l && memcmp(in->b + i + 2, keep[k], l) == 0;
            }
            if (!kept) {
                s_put(&mid, (const uint8_t *)"\xc3\xa0 ", 3);
                i += 2;
                continue;
            }
        }
        s_put(&mid, in->b + i, 1);
        i++;
    }
    for (size_t i = 0; i < mid.len;) {
        int a =
            s_bytepat_at(dq_toktab_altered_utf8, dq_toktab_altered_utf8_count, mid.b, mid.len, i);
        if (a < 0) {
            s_put(out, mid.b + i, 1);
            i++;
            continue;
        }
        for (size_t k = 0; k < dq_toktab_altered_utf8[a].len; k++) {
            uint8_t c = mid.b[i + k] == ' ' ? 0xa0 : mid.b[i + k];
            s_put(out, &c, 1);
        }
        i += dq_toktab_altered_utf8[a].len;
    }
    if (mid.oom) out->oom = true;
    free(mid.b);
}

/* LOSSY_UTF8_RE's matches -> the UTF-8 of U+FFFD (fixes.replace_lossy_sequences). */
static void s_replace_lossy(const bytes_t *in, bytes_t *out) {
    for (size_t i = 0; i < in->len;) {
        int a = s_bytepat_at(dq_toktab_lossy_utf8, dq_toktab_lossy_utf8_count, in->b, in->len, i);
        if (a < 0) {
            s_put(out, in->b + i, 1);
            i++;
        } else {
            s_put(out, (const uint8_t *)"\xef\xbf\xbd", 3);
            i += dq_toktab_lossy_utf8[a].len;
        }
    }
}

/* Python's strict UTF-8 decoder, or with variants ftfy's "utf-8-variants" (also "C0 80" as
 * U+0000 and CESU-8 surrogate pairs). Returns false when the bytes do not decode. */
static bool s_decode_utf8(const bytes_t *in, bool variants, dq_tokcps_t *out) {
    const uint8_t *b = in->b;
    size_t n = in->len;
    for (size_t i = 0; i < n;) {
        uint8_t c = b[i];
        if (variants && c == 0xc0 && i + 1 < n && b[i + 1] == 0x80) {
            dq_tokcps_push(out, 0);
            i += 2;
            continue;
        }
        if (variants && c == 0xed && n - i >= 6 && b[i + 1] >= 0xa0 && b[i + 1] <= 0xaf &&
            (b[i + 2] & 0xc0) == 0x80 && b[i + 3] == 0xed && b[i + 4] >= 0xb0 &&
            b[i + 4] <= 0xbf && (b[i + 5] & 0xc0) == 0x80) {
            int32_t cp = ((b[i + 1] & 0x0f) << 16) + ((b[i + 2] & 0x3f) << 10) +
                         ((b[i + 4] & 0x0f) << 6) + (b[i + 5] & 0x3f) + 0x10000;
            dq_tokcps_push(out, cp);
            i += 6;
            continue;
        }
        size_t len;
        int32_t cp, min;
        if (c < 0x80) {
            len = 1, cp = c, min = 0;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((b[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (b[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        dq_tokcps_push(out, cp);
        i += len;
    }
    return true;
}

static bool s_same(const dq_tokcps_t *a, const int32_t *b, size_t n) {
    return a->len == n && (n == 0 || memcmp(a->cp, b, n * sizeof *b) == 0);
}

static void s_fix_encoding(const int32_t *in, size_t n, dq_tokcps_t *out);

/* fixes.decode_inconsistent_utf8: runs UTF8_DETECTOR_RE finds (not after a strict continuation
 * character; one or more of first-of-2 + 1, first-of-3 + 2, first-of-4 + 3 continuation
 * characters) that are shorter than the text and bad are fixed on their own. */
static void s_decode_inconsistent(const int32_t *t, size_t n, dq_tokcps_t *out) {
    for (size_t i = 0; i < n;) {
        size_t j = i;
        if (i == 0 || !s_in_set(dq_toktab_utf8_continuation_strict, t[i - 1])) {
            for (;;) {
                static const int *const firsts[3] = {&dq_toktab_utf8_first_of_2,
                                                     &dq_toktab_utf8_first_of_3,
                                                     &dq_toktab_utf8_first_of_4};
                size_t step = 0;
                for (int k = 0; k < 3 && !step; k++) {
                    size_t len = (size_t)k + 2;
                    if (n - j < len || !s_in_set(*firsts[k], t[j])) continue;
                    size_t c = 1;
                    while (c < len && s_in_set(dq_toktab_utf8_continuation, t[j + c]))
                        c++;
                    if (c == len) step = len;
                }
                if (!step) break;
                j += step;
            }
        }
        if (j == i) {
            dq_tokcps_push(out, t[i]);
            i++;
            continue;
        }
        if (j - i < n && dq_tokmoji_is_bad(t + i, j - i))
            s_fix_encoding(t + i, j - i, out);
        else
            dq_tokcps_push_n(out, t + i, j - i);
        i = j;
    }
}

/* One step of fix_encoding (_fix_encoding_one_step_and_explain); appends the result. */
static void s_one_step(const int32_t *t, size_t n, dq_tokcps_t *out) {
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = t[i] < 0x80;
    if (n == 0 || ascii || !dq_tokmoji_is_bad(t, n)) {
        dq_tokcps_push_n(out, t, n);
        return;
    }
    bool latin1 = false;
    for (size_t e = 0; e < dq_toktab_charmaps_count; e++) {
        const dq_toktab_charmap_t *cm = &dq_toktab_charmaps[e];
        bytes_t enc = {0}, tmp = {0};
        if (!s_encode(cm, t, n, &enc)) {
            free(enc.b);
            continue;
        }
        if (e == 0) latin1 = true; /* CHARMAP_ENCODINGS[0] is latin-1 */
        bool altered = false;
        if (strcmp(cm->name, "macroman") != 0)
            for (size_t i = 0; i < enc.len && !altered; i++)
                altered = s_bytepat_at(dq_toktab_altered_utf8, dq_toktab_altered_utf8_count, enc.b,
                                       enc.len, i) >= 0;
        /* (restore_byte_a0 and replace_lossy_sequences write into tmp, then trade places) */
        if (altered) {
            s_restore_byte_a0(&enc, &tmp);
            bytes_t t2 = enc;
            enc = tmp;
            tmp = t2;
            tmp.len = 0;
        }
        if (strncmp(cm->name, "sloppy", 6) == 0) {
            s_replace_lossy(&enc, &tmp);
            bytes_t t2 = enc;
            enc = tmp;
            tmp = t2;
            tmp.len = 0;
        }
        bool variants =
            enc.len && (memchr(enc.b, 0xed, enc.len) || memchr(enc.b, 0xc0, enc.len));
        dq_tokcps_t dec = {0};
        bool ok = !enc.oom && !tmp.oom && s_decode_utf8(&enc, variants, &dec);
        if (enc.oom || tmp.oom) out->oom = true;
        free(enc.b);
        free(tmp.b);
        if (ok) {
            dq_tokcps_push_n(out, dec.cp, dec.len);
            if (dec.oom) out->oom = true;
            dq_tokcps_free(&dec);
            return;
        }
        dq_tokcps_free(&dec);
    }
    /* decode_inconsistent_utf8, when UTF8_DETECTOR_RE finds something and it changes the text */
    dq_tokcps_t fixed = {0};
    s_decode_inconsistent(t, n, &fixed);
    if (fixed.oom) out->oom = true;
    if (!s_same(&fixed, t, n)) {
        dq_tokcps_push_n(out, fixed.cp, fixed.len);
        dq_tokcps_free(&fixed);
        return;
    }
    dq_tokcps_free(&fixed);
    /* Latin-1 read as (strict) Windows-1252, when every byte is defined there */
    if (latin1) {
        bool ok = true, changed = false;
        for (size_t i = 0; i < n && ok; i++) {
            int32_t c = t[i];
            ok = !(c == 0x81 || c == 0x8d || c == 0x8f || c == 0x90 || c == 0x9d);
            changed = changed || (c >= 0x80 && c <= 0x9f);
        }
        if (ok && changed) {
            for (size_t i = 0; i < n; i++)
                dq_tokcps_push(out, dq_tokhtml_cp1252(t[i]));
            return;
        }
    }
    /* fix_c1_controls: U+0080..U+009F as sloppy Windows-1252 */
    for (size_t i = 0; i < n; i++)
        dq_tokcps_push(out, dq_tokhtml_cp1252(t[i]));
}

/* fix_encoding_and_explain's loop: steps until the text stops changing. */
static void s_fix_encoding(const int32_t *in, size_t n, dq_tokcps_t *out) {
    dq_tokcps_t cur = {0}, next = {0};
    dq_tokcps_push_n(&cur, in, n);
    while (!cur.oom && !next.oom) {
        next.len = 0;
        s_one_step(cur.cp, cur.len, &next);
        if (next.oom || s_same(&next, cur.cp, cur.len)) break;
        dq_tokcps_swap(&cur, &next);
    }
    if (cur.oom || next.oom) out->oom = true;
    dq_tokcps_push_n(out, cur.cp, cur.len);
    dq_tokcps_free(&cur);
    dq_tokcps_free(&next);
}

void dq_tokmoji_fix_encoding(const int32_t *in, size_t n, dq_tokcps_t *out) {
    s_fix_encoding(in, n, out);
}
