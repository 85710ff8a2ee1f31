/* kernels/tokenizer.c: the CLIP BPE tokenizer: special tokens, then cleanup (tokenizer_text),
 * words (tokenizer_split) and byte-level BPE (tokenizer_bpe) over a vocabulary (tokenizer_vocab).
 * Follows OpenAI CLIP's simple_tokenizer.py (the default rules) or transformers 5.24
 * CLIPTokenizer as built from SD 1.5's tokenizer/ folder. */
#include "kernels/tokenizer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/log.h"
#include "kernels/tokenizer_bpe.h"
#include "kernels/tokenizer_split.h"
#include "kernels/tokenizer_text.h"
#include "kernels/tokenizer_vocab.h"

#if !defined(DQ_CLIP_DATADIR) || !defined(DQ_CLIP_SOURCE_DIR)
#error "DQ_CLIP_DATADIR and DQ_CLIP_SOURCE_DIR (installed and source folders of the merge file) must be defined"
#endif

/* A token transformers matches whole in the text before any other splitting: a special token
 * or an entry of added_tokens_decoder. */
typedef struct {
    const char *text; /* borrowed from vocab (special[] or added[]) */
    size_t len;
    int32_t id;
    bool normalized; /* matched after normalization, else in the raw text */
} added_t;

struct dq_tokenizer_t {
    dq_tokvocab_t *vocab;                   /* owned; tables and special-token names */
    int32_t ids[DQ_TOKVOCAB_SPECIAL_COUNT]; /* bos, eos, unk, pad */
    added_t *added;                         /* owned array; distinct texts */
    int added_count;
    dq_tokenizer_rules_t rules;
    /* The ids of "<|startoftext|>" and "<|endoftext|>" in the vocabulary (-1: absent), which
     * CLIP's pattern matches itself under the clip rules. */
    int32_t clip_special[2];
};

const char *const dq_tokenizer_rules_names[DQ_TOKENIZER_RULES_COUNT] = {"clip", "transformers5"};

int dq_tokenizer_rules_parse(const char *name, dq_tokenizer_rules_t *rules) {
    for (int i = 0; i < DQ_TOKENIZER_RULES_COUNT; i++) {
        if (strcmp(name, dq_tokenizer_rules_names[i]) == 0) {
            *rules = (dq_tokenizer_rules_t)i;
            return 0;
        }
    }
    return -1;
}

void dq_tokenizer_set_rules(dq_tokenizer_t *self, dq_tokenizer_rules_t rules) {
    assert(rules >= 0 && rules < DQ_TOKENIZER_RULES_COUNT);
    self->rules = rules;
}

dq_tokenizer_rules_t dq_tokenizer_get_rules(const dq_tokenizer_t *self) {
    return self->rules;
}

static const char *const s_clip_special_text[2] = {"<|startoftext|>", "<|endoftext|>"};

/* Sets how text is matched, replacing an earlier entry with the same text. */
static void s_set_added(dq_tokenizer_t *self, const char *text, int32_t id, bool normalized) {
    int k = 0;
    while (k < self->added_count && strcmp(self->added[k].text, text) != 0)
        k++;
    if (k == self->added_count) self->added_count++;
    self->added[k] = (added_t){text, strlen(text), id, normalized};
}

static int s_lookup(const dq_tokvocab_t *v, const char *role, const char *name, int32_t *id,
                    char *err, size_t errlen) {
    if (dq_tokmap_get(v->vocab, name, strlen(name), id)) return 0;
    snprintf(err, errlen, "the %s token \"%.64s\" is not in the vocabulary", role, name);
    return -1;
}

static bool s_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Loads a folder: dir itself when it holds vocab.json, else dir/tokenizer. */
static dq_tokvocab_t *s_load_dir(const char *dir, char *err, size_t errlen) {
    size_t n = strlen(dir) + sizeof "/tokenizer/vocab.json";
    char *path = malloc(n);
    if (!path) {
        snprintf(err, errlen, "out of memory loading the tokenizer");
        return NULL;
    }
    dq_tokvocab_t *v = NULL;
    snprintf(path, n, "%s/vocab.json", dir);
    if (s_is_file(path)) {
        v = dq_tokvocab_load_dir(dir, err, errlen);
    } else {
        snprintf(path, n, "%s/tokenizer/vocab.json", dir);
        if (s_is_file(path)) {
            path[strlen(path) - strlen("/vocab.json")] = '\0';
            v = dq_tokvocab_load_dir(path, err, errlen);
        } else {
            snprintf(err, errlen, "%s: no vocab.json in it or in its tokenizer/ folder", dir);
        }
    }
    free(path);
    return v;
}

void dq_tokenizer_builtin_path(char *out, size_t len) {
    const char *data = getenv(DQ_TOKENIZER_DATA_ENV);
    if (data && *data) {
        snprintf(out, len, "%s/clip/%s", data, DQ_TOKVOCAB_BPE_FILE);
        return;
    }
    snprintf(out, len, "%s/%s", DQ_CLIP_SOURCE_DIR, DQ_TOKVOCAB_BPE_FILE);
    if (access(out, R_OK) == 0) {
        /* An installed copy wins over the source tree's. */
        char installed[4096];
        snprintf(installed, sizeof installed, "%s/%s", DQ_CLIP_DATADIR, DQ_TOKVOCAB_BPE_FILE);
        if (access(installed, R_OK) == 0) snprintf(out, len, "%s", installed);
        return;
    }
    snprintf(out, len, "%s/%s", DQ_CLIP_DATADIR, DQ_TOKVOCAB_BPE_FILE);
}

static dq_tokvocab_t *s_load_builtin(char *err, size_t errlen) {
    char path[4096];
    dq_tokenizer_builtin_path(path, sizeof path);
    dq_tokvocab_t *v = dq_tokvocab_load_bpe_gz(path, err, errlen);
    size_t used = strlen(err);
    if (!v && used + 1 < errlen)
        snprintf(err + used, errlen - used,
                 " (install diffq, or set %s to the folder that holds clip/%s)",
                 DQ_TOKENIZER_DATA_ENV, DQ_TOKVOCAB_BPE_FILE);
    return v;
}

dq_tokenizer_t *dq_tokenizer_load(const char *dir, char *err, size_t errlen) {
    dq_tokenizer_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory loading the tokenizer");
        return NULL;
    }
    self->vocab = dir ? s_load_dir(dir, err, errlen) : s_load_builtin(err, errlen);
    if (!self->vocab) goto fail;
    const dq_tokvocab_t *v = self->vocab;
    self->added = calloc(DQ_TOKVOCAB_SPECIAL_COUNT + v->added_count, sizeof *self->added);
    if (!self->added) {
        snprintf(err, errlen, "out of memory loading the tokenizer");
        goto fail;
    }
    for (int i = 0; i < DQ_TOKVOCAB_SPECIAL_COUNT; i++) {
        const dq_tokvocab_name_t *name = &v->special[i];
        if (s_lookup(v, dq_tokvocab_special_names[i], name->text, &self->ids[i], err, errlen))
            goto fail;
        /* A later role with the same text decides how it is matched, as transformers adds
         * bos, eos, unk, then pad, each replacing the one before. */
        s_set_added(self, name->text, self->ids[i], name->normalized);
    }
    /* added_tokens_decoder comes last: its flags win (as transformers 5.24 does). */
    for (size_t i = 0; i < v->added_count; i++)
        s_set_added(self, v->added[i].text, v->added[i].id, v->added[i].normalized);
    self->rules = DQ_TOKENIZER_RULES_CLIP;
    for (int i = 0; i < 2; i++)
        if (!dq_tokmap_get(v->vocab, s_clip_special_text[i], strlen(s_clip_special_text[i]),
                           &self->clip_special[i]))
            self->clip_special[i] = -1;
    dq_debug("tokenizer loaded source=%s vocab=%zu merges=%zu", dir ? dir : "built-in",
             dq_tokmap_size(v->vocab), dq_tokmap_size(v->merges));
    return self;
fail:
    dq_tokenizer_destroy(&self);
    return NULL;
}

void dq_tokenizer_destroy(dq_tokenizer_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_tokvocab_destroy(&(*self_p)->vocab);
    free((*self_p)->added);
    free(*self_p);
    *self_p = NULL;
}

/* Where the ids of one encoding go. */
typedef struct {
    const dq_tokenizer_t *tok; /* borrowed */
    int32_t *ids;              /* borrowed; the text's tokens, after BOS */
    int room;                  /* how many text tokens fit */
    int count;                 /* text tokens stored */
    bool full;                 /* a token came that did not fit: the text is truncated */
} sink_t;

/* Stores one id; returns 1 (stop: nothing after it can be kept) when there is no room. */
static int s_emit(void *ctx, int32_t id) {
    sink_t *s = ctx;
    if (s->count == s->room) {
        s->full = true;
        return 1;
    }
    s->ids[s->count++] = id;
    return 0;
}

static int s_emit_word(void *ctx, const char *word, size_t len) {
    sink_t *s = ctx;
    const dq_tokvocab_t *v = s->tok->vocab;
    return dq_tokbpe_encode_word(v->vocab, v->merges, s->tok->ids[DQ_TOKVOCAB_UNK], word, len,
                                 s_emit, ctx);
}

/* True for an added token that CLIP's pattern matches itself under the clip rules. */
static bool s_is_clip_special(const dq_tokenizer_t *self, const added_t *a) {
    for (int i = 0; i < 2; i++)
        if (self->clip_special[i] >= 0 && strcmp(a->text, s_clip_special_text[i]) == 0)
            return true;
    return false;
}

/* Emits the id of CLIP's special token which (clip rules); absent from the vocabulary, it is
 * encoded as the text it is. */
static int s_emit_clip_special(void *ctx, int which) {
    sink_t *s = ctx;
    if (s->tok->clip_special[which] >= 0) return s_emit(s, s->tok->clip_special[which]);
    const char *t = s_clip_special_text[which];
    return s_emit_word(ctx, t, strlen(t));
}

/* Finds the first special token of the given kind (normalized or raw) in text[0..len), the
 * longest one where several start at the same byte. Returns its offset (len when none) and sets
 * *which. */
static size_t s_find_added(const dq_tokenizer_t *self, const char *text, size_t len,
                           bool normalized, const added_t **which) {
    for (size_t i = 0; i < len; i++) {
        const added_t *best = NULL;
        for (int k = 0; k < self->added_count; k++) {
            const added_t *a = &self->added[k];
            if (self->rules == DQ_TOKENIZER_RULES_CLIP && s_is_clip_special(self, a)) continue;
            if (a->normalized == normalized && a->len <= len - i &&
                memcmp(text + i, a->text, a->len) == 0 && (!best || a->len > best->len))
                best = a;
        }
        if (best) {
            *which = best;
            return i;
        }
    }
    return len;
}

/* Encodes a piece of raw text that holds no raw special token: cleans it by the rules, then
 * splits the result at the normalized added tokens (transformers5 rules, SD 1.5:
 * "<|startoftext|>", so "<|STARTOFTEXT|>" is BOS too, while "<|ENDOFTEXT|>" is plain text;
 * clip rules: only a folder's extra added tokens, CLIP's pattern finding its own two) and
 * each piece into words. Returns 0, 1 when the ids are full, or -1 with a message in err. */
static int s_encode_segment(sink_t *s, const char *raw, size_t len, char *err, size_t errlen) {
    size_t norm_len = 0;
    bool clip = s->tok->rules == DQ_TOKENIZER_RULES_CLIP;
    char *norm = clip ? dq_toktext_clean_clip(raw, len, &norm_len, err, errlen)
                      : dq_toktext_normalize(raw, len, &norm_len, err, errlen);
    if (!norm) return -1;
    int rc = 0;
    for (size_t at = 0; rc == 0;) {
        const added_t *special = NULL;
        size_t cut = at + s_find_added(s->tok, norm + at, norm_len - at, true, &special);
        rc = clip ? dq_toksplit_words_clip(norm + at, cut - at, s_emit_word, s_emit_clip_special, s)
                  : dq_toksplit_words(norm + at, cut - at, s_emit_word, s);
        if (cut == norm_len) break;
        if (rc == 0) rc = s_emit(s, special->id);
        at = cut + special->len;
    }
    free(norm);
    if (rc < 0) snprintf(err, errlen, "out of memory encoding text");
    return rc < 0 ? -1 : rc;
}

int dq_tokenizer_encode(const dq_tokenizer_t *self, const char *utf8, int32_t *ids, int max_ids,
                        bool *truncated, char *err, size_t errlen) {
    if (truncated) *truncated = false;
    if (max_ids < 2) {
        snprintf(err, errlen, "room for %d ids; BOS and EOS need at least 2", max_ids);
        return -1;
    }
    size_t len = strlen(utf8);
    if (dq_toktext_validate(utf8, len, err, errlen) != 0) return -1;
    sink_t s = {.tok = self, .ids = ids + 1, .room = max_ids - 2};
    /* transformers splits the raw text at the special tokens that are not normalized first. */
    for (size_t at = 0;;) {
        const added_t *special = NULL;
        size_t cut = at + s_find_added(self, utf8 + at, len - at, false, &special);
        int rc = s_encode_segment(&s, utf8 + at, cut - at, err, errlen);
        if (rc < 0) return -1;
        if (rc > 0 || cut == len || s_emit(&s, special->id) != 0) break;
        at = cut + special->len;
    }
    ids[0] = self->ids[DQ_TOKVOCAB_BOS];
    ids[s.count + 1] = self->ids[DQ_TOKVOCAB_EOS];
    if (s.full) {
        if (truncated) *truncated = true;
        dq_warn("prompt truncated to %d tokens (the text encoder takes %d with BOS and EOS)",
                s.count, max_ids);
    }
    return s.count + 2;
}

int dq_tokenizer_pad(const dq_tokenizer_t *self, int32_t *ids, int count, int length) {
    if (count < 0 || count > length) return -1;
    for (int i = count; i < length; i++)
        ids[i] = self->ids[DQ_TOKVOCAB_PAD];
    return length;
}

int32_t dq_tokenizer_bos(const dq_tokenizer_t *self) {
    return self->ids[DQ_TOKVOCAB_BOS];
}
int32_t dq_tokenizer_eos(const dq_tokenizer_t *self) {
    return self->ids[DQ_TOKVOCAB_EOS];
}
int32_t dq_tokenizer_pad_id(const dq_tokenizer_t *self) {
    return self->ids[DQ_TOKVOCAB_PAD];
}
size_t dq_tokenizer_vocab_size(const dq_tokenizer_t *self) {
    return dq_tokmap_size(self->vocab->vocab);
}
