/* kernels/tokenizer_split.c: CLIP pre-tokenization (the Split + ByteLevel pre-tokenizers of
 * transformers 5.x CLIPTokenizer), written as a hand-rolled matcher of the regex alternatives. */
#include "kernels/tokenizer_split.h"

#include <stdbool.h>
#include <string.h>

#include <utf8proc.h>

#include "kernels/tokenizer_text.h"

typedef enum { CLASS_SPACE, CLASS_LETTER, CLASS_NUMBER, CLASS_OTHER } char_class_t;

/* Decodes the character at text[at] (valid UTF-8) into *cp; returns its length in bytes. */
static size_t s_next(const char *text, size_t len, size_t at, int32_t *cp) {
    utf8proc_int32_t c = 0;
    utf8proc_ssize_t n =
        utf8proc_iterate((const utf8proc_uint8_t *)text + at, (utf8proc_ssize_t)(len - at), &c);
    if (n <= 0) { /* the caller validated the text; step one byte rather than loop forever */
        *cp = 0xfffd;
        return 1;
    }
    *cp = c;
    return (size_t)n;
}

static char_class_t s_class(int32_t cp) {
    if (dq_toktext_is_space(cp)) return CLASS_SPACE;
    if (dq_toktext_is_letter(cp)) return CLASS_LETTER;
    if (dq_toktext_is_number(cp)) return CLASS_NUMBER;
    return CLASS_OTHER;
}

/* Length of the run of characters of class cls starting at text[at]. */
static size_t s_run(const char *text, size_t len, size_t at, char_class_t cls) {
    size_t end = at;
    while (end < len) {
        int32_t cp;
        size_t n = s_next(text, len, end, &cp);
        if (s_class(cp) != cls) break;
        end += n;
    }
    return end - at;
}

/* Length of the match of lit at text[at], 0 when none. With fold (the regex module's IGNORECASE
 * on lowercased text), "s" also matches U+017F LATIN SMALL LETTER LONG S: the only character
 * that a lowercase string can hold and that IGNORECASE equates with an ASCII letter. */
static size_t s_match(const char *text, size_t len, size_t at, const char *lit, bool fold) {
    size_t t = at;
    for (const char *l = lit; *l; l++) {
        if (t < len && text[t] == *l) {
            t++;
        } else if (fold && *l == 's' && len - t >= 2 && (unsigned char)text[t] == 0xc5 &&
                   (unsigned char)text[t + 1] == 0xbf) {
            t += 2;
        } else {
            return 0;
        }
    }
    return t - at;
}

/* The special-token strings, as the first two alternatives of the pattern. */
static const char *const s_specials[] = {"<|startoftext|>", "<|endoftext|>"};
/* The contractions, in the pattern's order ('s before 't ..., first match wins). */
static const char *const s_contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};

/* The split; special == NULL: transformers 5.x, else OpenAI CLIP (see the header). */
static int s_split(const char *text, size_t len, dq_toksplit_fn fn, dq_toksplit_special_fn special,
                   void *ctx) {
    bool fold = special != NULL;
    size_t at = 0;
    while (at < len) {
        int32_t cp;
        size_t n = s_next(text, len, at, &cp);
        char_class_t cls = s_class(cp);
        if (cls == CLASS_SPACE) {
            at += n;
            continue;
        }
        size_t match = 0;
        for (size_t i = 0; i < 2 && !match; i++) {
            size_t total = s_match(text, len, at, s_specials[i], fold);
            if (!total) continue;
            match = total;
            if (special) {
                /* OpenAI's bpe() knows the exact strings only; one spelled with U+017F is a
                 * single word like any other. */
                int rc = total == strlen(s_specials[i]) ? special(ctx, (int)i)
                                                        : fn(ctx, text + at, total);
                if (rc) return rc;
                continue;
            }
            /* GPT-2's pattern splits "<|name|>" into a symbol run, a letter run, a symbol run. */
            int rc = fn(ctx, text + at, 2);
            if (!rc) rc = fn(ctx, text + at + 2, total - 4);
            if (!rc) rc = fn(ctx, text + at + total - 2, 2);
            if (rc) return rc;
        }
        if (match) {
            at += match;
            continue;
        }
        for (size_t i = 0; i < sizeof s_contractions / sizeof *s_contractions && !match; i++)
            match = s_match(text, len, at, s_contractions[i], fold);
        if (!match) {
            if (cls == CLASS_NUMBER)
                match = n; /* [\p{N}]: one character */
            else
                match = s_run(text, len, at, cls); /* [\p{L}]+ or [^\s\p{L}\p{N}]+ */
        }
        int rc = fn(ctx, text + at, match);
        if (rc) return rc;
        at += match;
    }
    return 0;
}

int dq_toksplit_words(const char *text, size_t len, dq_toksplit_fn fn, void *ctx) {
    return s_split(text, len, fn, NULL, ctx);
}

int dq_toksplit_words_clip(const char *text, size_t len, dq_toksplit_fn fn,
                           dq_toksplit_special_fn special, void *ctx) {
    return s_split(text, len, fn, special, ctx);
}
