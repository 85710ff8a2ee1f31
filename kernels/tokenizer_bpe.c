/* kernels/tokenizer_bpe.c: CLIP's byte-level BPE of one word (OpenAI CLIP simple_tokenizer.py
 * bytes_to_unicode() and bpe(); transformers 5.x gets the same result from tokenizers' BPE model
 * with end_of_word_suffix "</w>"). */
#include "kernels/tokenizer_bpe.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool s_printable(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
}

int32_t dq_tokbpe_byte_codepoint(uint8_t b) {
    if (s_printable(b)) return b;
    int32_t n = 0; /* how many non-printable bytes come before b */
    for (unsigned i = 0; i < b; i++)
        if (!s_printable(i)) n++;
    return 256 + n;
}

size_t dq_tokbpe_byte_utf8(uint8_t b, char *out) {
    int32_t cp = dq_tokbpe_byte_codepoint(b);
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    out[0] = (char) (0xc0 | (cp >> 6)); /* every code point here is below U+0800 */
    out[1] = (char) (0x80 | (cp & 0x3f));
    return 2;
}

typedef struct {
    size_t start; /* byte offset in the encoded word */
    size_t len;   /* bytes; a merged symbol covers its parts, which are adjacent */
} symbol_t;

/* Looks the pair (a, b) up as "A B" in merges; key is scratch space for it. */
static bool s_rank(const dq_tokmap_t *merges, const char *buf, symbol_t a, symbol_t b, char *key,
                   int32_t *rank) {
    memcpy(key, buf + a.start, a.len);
    key[a.len] = ' ';
    memcpy(key + a.len + 1, buf + b.start, b.len);
    return dq_tokmap_get(merges, key, a.len + 1 + b.len, rank);
}

static bool s_same(const char *buf, symbol_t x, symbol_t y) {
    return x.len == y.len && memcmp(buf + x.start, buf + y.start, x.len) == 0;
}

int dq_tokbpe_encode_word(const dq_tokmap_t *vocab, const dq_tokmap_t *merges, int32_t unk,
                          const char *word, size_t len, dq_tokbpe_emit_fn emit, void *ctx) {
    size_t eow = strlen(DQ_TOKBPE_EOW);
    size_t cap = len * 2 + eow;
    char *buf = malloc(cap);
    char *key = malloc(cap + 1);
    symbol_t *sym = malloc(len * sizeof *sym);
    int rc = -1;
    if (!buf || !key || !sym) goto done;
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        sym[i].start = used;
        sym[i].len = dq_tokbpe_byte_utf8((uint8_t) word[i], buf + used);
        used += sym[i].len;
    }
    memcpy(buf + used, DQ_TOKBPE_EOW, eow);
    sym[len - 1].len += eow;
    size_t count = len;

    while (count > 1) {
        int32_t best = INT32_MAX;
        size_t best_at = 0;
        for (size_t i = 0; i + 1 < count; i++) {
            int32_t rank;
            if (s_rank(merges, buf, sym[i], sym[i + 1], key, &rank) && rank < best) {
                best = rank;
                best_at = i;
            }
        }
        if (best == INT32_MAX) break;
        symbol_t first = sym[best_at], second = sym[best_at + 1];
        size_t out = 0;
        for (size_t i = 0; i < count;) {
            if (i + 1 < count && s_same(buf, sym[i], first) && s_same(buf, sym[i + 1], second)) {
                sym[out].start = sym[i].start;
                sym[out].len = sym[i].len + sym[i + 1].len;
                i += 2;
            } else {
                sym[out] = sym[i];
                i += 1;
            }
            out++;
        }
        count = out;
    }

    rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        int32_t id;
        if (dq_tokmap_get(vocab, buf + sym[i].start, sym[i].len, &id))
            rc = emit(ctx, id);
        else if (unk >= 0)
            rc = emit(ctx, unk);
    }
done:
    free(buf);
    free(key);
    free(sym);
    return rc;
}
