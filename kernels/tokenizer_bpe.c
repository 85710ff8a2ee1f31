/* kernels/tokenizer_bpe.c: CLIP's byte-level BPE of one word: OpenAI CLIP simple_tokenizer.py's
 * bytes_to_unicode(), and merging as tokenizers' BPE model does it (a heap of candidate merges
 * ordered by rank, then position: O(n log n), where simple_tokenizer's bpe() rescans the word
 * after each merge; both give the same tokens for a trained merges list). */
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
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6)); /* every code point here is below U+0800 */
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

#define S_NONE SIZE_MAX

typedef struct {
    size_t start;      /* byte offset in the encoded word */
    size_t len;        /* bytes; 0 once merged into the symbol before it */
    size_t prev, next; /* neighbours in the word, S_NONE at the ends */
} symbol_t;

/* A candidate merge of the symbol at pos with the one after it. Lengths identify the pair
 * exactly (symbols only grow and the right one starts where the left ends), so an entry whose
 * lengths no longer match is stale. */
typedef struct {
    int32_t rank;
    size_t pos, left_len, right_len;
} pair_t;

typedef struct {
    pair_t *items; /* owned; a binary min-heap on (rank, pos) */
    size_t count;
} heap_t;

static bool s_before(const pair_t *x, const pair_t *y) {
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static void s_heap_push(heap_t *h, pair_t p) {
    size_t i = h->count++;
    while (i > 0 && s_before(&p, &h->items[(i - 1) / 2])) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = p;
}

static pair_t s_heap_pop(heap_t *h) {
    pair_t top = h->items[0], last = h->items[--h->count];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->count) break;
        if (c + 1 < h->count && s_before(&h->items[c + 1], &h->items[c])) c++;
        if (!s_before(&h->items[c], &last)) break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->count) h->items[i] = last;
    return top;
}

/* Pushes the merge of symbol i with its successor when merges ranks that pair ("A B");
 * key is scratch space for the pair's text. */
static void s_push_pair(heap_t *h, const dq_tokmap_t *merges, const char *buf, const symbol_t *sym,
                        size_t i, char *key) {
    size_t j = sym[i].next;
    if (j == S_NONE) return;
    memcpy(key, buf + sym[i].start, sym[i].len);
    key[sym[i].len] = ' ';
    memcpy(key + sym[i].len + 1, buf + sym[j].start, sym[j].len);
    int32_t rank;
    if (dq_tokmap_get(merges, key, sym[i].len + 1 + sym[j].len, &rank))
        s_heap_push(h, (pair_t){rank, i, sym[i].len, sym[j].len});
}

int dq_tokbpe_encode_word(const dq_tokmap_t *vocab, const dq_tokmap_t *merges, int32_t unk,
                          const char *word, size_t len, dq_tokbpe_emit_fn emit, void *ctx) {
    if (len == 0) return 0; /* no word, no symbols */
    size_t eow = strlen(DQ_TOKBPE_EOW);
    size_t cap = len * 2 + eow;
    char *buf = malloc(cap);
    char *key = malloc(cap + 1);
    symbol_t *sym = malloc(len * sizeof *sym);
    /* n - 1 first pairs, then at most two new ones per merge, and at most n - 1 merges */
    heap_t heap = {malloc(3 * len * sizeof(pair_t)), 0};
    int rc = -1;
    if (!buf || !key || !sym || !heap.items) goto done;
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        sym[i].start = used;
        sym[i].len = dq_tokbpe_byte_utf8((uint8_t)word[i], buf + used);
        sym[i].prev = i ? i - 1 : S_NONE;
        sym[i].next = i + 1 < len ? i + 1 : S_NONE;
        used += sym[i].len;
    }
    memcpy(buf + used, DQ_TOKBPE_EOW, eow);
    sym[len - 1].len += eow;

    for (size_t i = 0; i + 1 < len; i++)
        s_push_pair(&heap, merges, buf, sym, i, key);
    while (heap.count) {
        pair_t p = s_heap_pop(&heap);
        size_t a = p.pos, b = sym[a].next;
        if (sym[a].len != p.left_len || b == S_NONE || sym[b].len != p.right_len) continue;
        sym[a].len += sym[b].len;
        sym[a].next = sym[b].next;
        if (sym[b].next != S_NONE) sym[sym[b].next].prev = a;
        sym[b].len = 0;
        if (sym[a].prev != S_NONE) s_push_pair(&heap, merges, buf, sym, sym[a].prev, key);
        s_push_pair(&heap, merges, buf, sym, a, key);
    }

    rc = 0;
    for (size_t i = 0; i != S_NONE && rc == 0; i = sym[i].next) {
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
    free(heap.items);
    return rc;
}
