/* kernels/tokenizer_vocab.c: loading CLIP's vocabulary and merges: a Hugging Face tokenizer/
 * folder (vocab.json, merges.txt, tokenizer_config.json) or OpenAI's gzip'd merges file. */
#include "kernels/tokenizer_vocab.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <zlib.h>

#include "kernels/tokenizer_bpe.h"

#define S_BOS "<|startoftext|>"
#define S_EOS "<|endoftext|>"
/* Largest vocabulary or merges file accepted (CLIP's are 1.5 MB and 0.5 MB; 1.7 MB unpacked). */
#define S_MAX_FILE_BYTES (64u << 20)

const char *const dq_tokvocab_special_names[DQ_TOKVOCAB_SPECIAL_COUNT] = {"bos", "eos", "unk",
                                                                          "pad"};

void dq_tokvocab_destroy(dq_tokvocab_t **self_p) {
    if (!self_p || !*self_p) return;
    dq_tokvocab_t *self = *self_p;
    dq_tokmap_destroy(&self->vocab);
    dq_tokmap_destroy(&self->merges);
    for (int i = 0; i < DQ_TOKVOCAB_SPECIAL_COUNT; i++)
        free(self->special[i].text);
    for (size_t i = 0; i < self->added_count; i++)
        free(self->added[i].text);
    free(self->added);
    free(self);
    *self_p = NULL;
}

/* A vocabulary with CLIP's special-token names, none normalized, and empty tables. */
static dq_tokvocab_t *s_new(char *err, size_t errlen) {
    static const char *const texts[DQ_TOKVOCAB_SPECIAL_COUNT] = {S_BOS, S_EOS, S_EOS, S_EOS};
    dq_tokvocab_t *self = calloc(1, sizeof *self);
    bool ok = self != NULL;
    if (ok) {
        self->vocab = dq_tokmap_new(DQ_TOKVOCAB_CLIP_SIZE);
        self->merges = dq_tokmap_new(DQ_TOKVOCAB_CLIP_MERGES);
        ok = self->vocab && self->merges;
        for (int i = 0; i < DQ_TOKVOCAB_SPECIAL_COUNT; i++)
            ok = (self->special[i].text = strdup(texts[i])) != NULL && ok;
    }
    if (!ok) {
        dq_tokvocab_destroy(&self);
        snprintf(err, errlen, "out of memory loading the tokenizer");
    }
    return self;
}

/* Reads a whole file (gzip'd or not: zlib reads plain files as they are) into a NUL-terminated
 * buffer. Returns it (caller frees) with its length, or NULL with a message in err. */
static char *s_read_file(const char *path, size_t *len_out, char *err, size_t errlen) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            if (cap >= S_MAX_FILE_BYTES) {
                snprintf(err, errlen, "%s: larger than %u bytes", path, S_MAX_FILE_BYTES);
                goto fail;
            }
            char *bigger = realloc(buf, cap * 2 + 1);
            if (!bigger) break;
            buf = bigger;
            cap *= 2;
        }
        int n = gzread(gz, buf + len, (unsigned)(cap - len));
        if (n < 0) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            snprintf(err, errlen, "%s: cannot read: %s", path,
                     zerr == Z_ERRNO ? strerror(errno) : msg);
            goto fail;
        }
        if (n == 0) {
            gzclose(gz);
            buf[len] = '\0';
            *len_out = len;
            return buf;
        }
        len += (size_t)n;
    }
    snprintf(err, errlen, "%s: out of memory reading it", path);
fail:
    free(buf);
    gzclose(gz);
    return NULL;
}

/* Cuts the next line off *text (ending at '\n', or at the end); strips one trailing '\r'.
 * Returns false when nothing is left. */
static bool s_next_line(char **text, char *end, char **line, size_t *len) {
    if (*text >= end) return false;
    char *nl = memchr(*text, '\n', (size_t)(end - *text));
    char *stop = nl ? nl : end;
    *line = *text;
    *len = (size_t)(stop - *text);
    if (*len && (*line)[*len - 1] == '\r') (*len)--;
    *text = nl ? nl + 1 : end;
    return true;
}

static int s_put(dq_tokmap_t *map, const char *key, size_t len, int32_t value, char *err,
                 size_t errlen) {
    if (dq_tokmap_put(map, key, len, value) < 0) {
        snprintf(err, errlen, "out of memory loading the tokenizer");
        return -1;
    }
    return 0;
}

/* Checks that a merge line is "A B" with two non-empty parts; returns the offset of the space. */
static size_t s_merge_split(const char *line, size_t len) {
    const char *space = memchr(line, ' ', len);
    if (!space || space == line || space == line + len - 1) return 0;
    if (memchr(space + 1, ' ', (size_t)(line + len - space - 1))) return 0;
    return (size_t)(space - line);
}

dq_tokvocab_t *dq_tokvocab_load_bpe_gz(const char *path, char *err, size_t errlen) {
    size_t size = 0;
    char *text = s_read_file(path, &size, err, errlen);
    if (!text) return NULL;
    dq_tokvocab_t *self = s_new(err, errlen);
    if (!self) goto fail;
    /* SD 1.x's tokenizer_config.json: bos, eos and unk are AddedToken objects with "normalized":
     * true, pad a plain string (which makes <|endoftext|> match in the raw text). */
    self->special[DQ_TOKVOCAB_BOS].normalized = true;
    self->special[DQ_TOKVOCAB_EOS].normalized = true;
    self->special[DQ_TOKVOCAB_UNK].normalized = true;

    /* Ids 0..255: the byte characters in bytes_to_unicode() order (printable bytes, then the
     * rest), which is ascending code point order; 256..511: the same with "</w>". */
    int32_t id = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int printable = 1; printable >= 0; printable--)
            for (unsigned b = 0; b < 256; b++) {
                bool is_printable = dq_tokbpe_byte_codepoint((uint8_t)b) == (int32_t)b;
                if (is_printable != (bool)printable) continue;
                char tok[8];
                size_t n = dq_tokbpe_byte_utf8((uint8_t)b, tok);
                if (pass) {
                    memcpy(tok + n, DQ_TOKBPE_EOW, 4);
                    n += 4;
                }
                if (s_put(self->vocab, tok, n, id++, err, errlen)) goto fail;
            }

    char *at = text, *end = text + size, *line;
    size_t len, lineno = 1;
    if (!s_next_line(&at, end, &line, &len)) { /* the first line is a header */
        snprintf(err, errlen, "%s: empty file", path);
        goto fail;
    }
    int32_t rank = 0;
    while (rank < DQ_TOKVOCAB_CLIP_MERGES && s_next_line(&at, end, &line, &len)) {
        lineno++;
        size_t space = s_merge_split(line, len);
        if (!space) {
            snprintf(err, errlen, "%s:%zu: expected a merge \"A B\"", path, lineno);
            goto fail;
        }
        if (s_put(self->merges, line, len, rank, err, errlen)) goto fail;
        memmove(line + space, line + space + 1, len - space - 1); /* the joined token */
        if (s_put(self->vocab, line, len - 1, id++, err, errlen)) goto fail;
        rank++;
    }
    if (rank < DQ_TOKVOCAB_CLIP_MERGES) {
        snprintf(err, errlen, "%s: has %d merges, CLIP's vocabulary needs %d", path, rank,
                 DQ_TOKVOCAB_CLIP_MERGES);
        goto fail;
    }
    if (s_put(self->vocab, S_BOS, strlen(S_BOS), id++, err, errlen)) goto fail;
    if (s_put(self->vocab, S_EOS, strlen(S_EOS), id++, err, errlen)) goto fail;
    if (dq_tokmap_size(self->vocab) != DQ_TOKVOCAB_CLIP_SIZE) {
        snprintf(err, errlen, "%s: gives %zu distinct tokens, CLIP's vocabulary has %d", path,
                 dq_tokmap_size(self->vocab), DQ_TOKVOCAB_CLIP_SIZE);
        goto fail;
    }
    free(text);
    return self;
fail:
    free(text);
    dq_tokvocab_destroy(&self);
    return NULL;
}

/* Joins dir and name into a new string (caller frees), or NULL when out of memory. */
static char *s_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (path) snprintf(path, n, "%s/%s", dir, name);
    return path;
}

static int s_load_vocab_json(dq_tokvocab_t *self, const char *path, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root) || json_object_size(root) == 0) {
        snprintf(err, errlen, "%s: expected a non-empty object of token -> id", path);
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        json_int_t v = json_is_integer(value) ? json_integer_value(value) : -1;
        if (v < 0 || v > INT32_MAX) {
            snprintf(err, errlen, "%s: token \"%.64s\": expected an id from 0 to %d", path, key,
                     INT32_MAX);
            goto done;
        }
        if (s_put(self->vocab, key, strlen(key), (int32_t)v, err, errlen)) goto done;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static bool s_known(const dq_tokvocab_t *self, const char *tok, size_t len) {
    int32_t id;
    return dq_tokmap_get(self->vocab, tok, len, &id);
}

static int s_load_merges_txt(dq_tokvocab_t *self, const char *path, char *err, size_t errlen) {
    size_t size = 0;
    char *text = s_read_file(path, &size, err, errlen);
    if (!text) return -1;
    int rc = -1;
    char *at = text, *end = text + size, *line;
    size_t len, lineno = 0;
    int32_t rank = 0;
    while (s_next_line(&at, end, &line, &len)) {
        lineno++;
        if (lineno == 1 && len >= 8 && memcmp(line, "#version", 8) == 0) continue;
        size_t space = s_merge_split(line, len);
        if (!space) {
            snprintf(err, errlen, "%s:%zu: expected a merge \"A B\" (two tokens, one space)", path,
                     lineno);
            goto done;
        }
        if (!s_known(self, line, space) || !s_known(self, line + space + 1, len - space - 1)) {
            snprintf(err, errlen, "%s:%zu: merge \"%.*s\" has a part not in vocab.json", path,
                     lineno, (int)(len > 64 ? 64 : len), line);
            goto done;
        }
        if (s_put(self->merges, line, len, rank++, err, errlen)) goto done;
        memmove(line + space, line + space + 1, len - space - 1);
        if (!s_known(self, line, len - 1)) {
            snprintf(err, errlen, "%s:%zu: the merged token \"%.*s\" is not in vocab.json", path,
                     lineno, (int)(len > 65 ? 64 : len - 1), line);
            goto done;
        }
    }
    rc = 0;
done:
    free(text);
    return rc;
}

/* Sets *name from root[key] when it is a string or an object with a "content" string (and an
 * optional "normalized" boolean). */
static int s_special_name(json_t *root, const char *key, dq_tokvocab_name_t *name, const char *path,
                          char *err, size_t errlen) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    bool normalized = false;
    if (json_is_object(v)) {
        json_t *n = json_object_get(v, "normalized");
        if (n && !json_is_boolean(n)) {
            snprintf(err, errlen, "%s: \"%s\": \"normalized\" must be true or false", path, key);
            return -1;
        }
        normalized = n && json_is_true(n);
        v = json_object_get(v, "content");
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(err, errlen,
                 "%s: \"%s\": expected a non-empty string or an object with a \"content\" string",
                 path, key);
        return -1;
    }
    char *copy = strdup(json_string_value(v));
    if (!copy) {
        snprintf(err, errlen, "out of memory loading the tokenizer");
        return -1;
    }
    free(name->text);
    name->text = copy;
    name->normalized = normalized;
    return 0;
}

/* Reads a boolean field of an added token; absent gives fallback. */
static int s_added_flag(json_t *entry, const char *field, bool fallback, bool *out,
                        const char *path, const char *id, char *err, size_t errlen) {
    json_t *v = json_object_get(entry, field);
    if (v && !json_is_boolean(v)) {
        snprintf(err, errlen, "%s: added_tokens_decoder \"%s\": \"%s\" must be true or false", path,
                 id, field);
        return -1;
    }
    *out = v ? json_is_true(v) : fallback;
    return 0;
}

/* Reads "added_tokens_decoder": {"49406": {"content": "<|startoftext|>", "normalized": true,
 * "special": true, "lstrip": false, ...}, ...}; enters each token in the vocabulary. */
static int s_load_added(dq_tokvocab_t *self, json_t *table, const char *path, char *err,
                        size_t errlen) {
    if (!json_is_object(table)) {
        snprintf(err, errlen, "%s: \"added_tokens_decoder\": expected an object", path);
        return -1;
    }
    size_t n = json_object_size(table);
    dq_tokvocab_added_t *added = realloc(self->added, (self->added_count + n + 1) * sizeof *added);
    if (!added) {
        snprintf(err, errlen, "out of memory loading the tokenizer");
        return -1;
    }
    self->added = added;
    const char *key;
    json_t *entry;
    json_object_foreach(table, key, entry) {
        char *end = NULL;
        long id = strtol(key, &end, 10);
        json_t *content = json_object_get(entry, "content");
        if (!*key || *end || id < 0 || id > INT32_MAX || !json_is_object(entry) ||
            !json_is_string(content) || json_string_length(content) == 0) {
            snprintf(
                err, errlen,
                "%s: added_tokens_decoder \"%.32s\": expected an id mapped to an object with a "
                "non-empty \"content\" string",
                path, key);
            return -1;
        }
        bool special, normalized, lstrip, rstrip, single_word;
        if (s_added_flag(entry, "special", false, &special, path, key, err, errlen) ||
            s_added_flag(entry, "normalized", !special, &normalized, path, key, err, errlen) ||
            s_added_flag(entry, "lstrip", false, &lstrip, path, key, err, errlen) ||
            s_added_flag(entry, "rstrip", false, &rstrip, path, key, err, errlen) ||
            s_added_flag(entry, "single_word", false, &single_word, path, key, err, errlen))
            return -1;
        if (lstrip || rstrip || single_word) {
            snprintf(err, errlen,
                     "%s: added_tokens_decoder \"%s\": lstrip, rstrip and single_word are not "
                     "supported",
                     path, key);
            return -1;
        }
        const char *text = json_string_value(content);
        char *copy = strdup(text);
        if (!copy) {
            snprintf(err, errlen, "out of memory loading the tokenizer");
            return -1;
        }
        self->added[self->added_count++] = (dq_tokvocab_added_t){copy, (int32_t)id, normalized};
        if (s_put(self->vocab, text, strlen(text), (int32_t)id, err, errlen)) return -1;
    }
    return 0;
}

/* Reads the special-token names from one JSON file when it exists. */
static int s_load_specials(dq_tokvocab_t *self, const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) return 0; /* optional */
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: expected a JSON object", path);
        goto done;
    }
    for (int i = 0; i < DQ_TOKVOCAB_SPECIAL_COUNT; i++) {
        char key[16];
        snprintf(key, sizeof key, "%s_token", dq_tokvocab_special_names[i]);
        if (s_special_name(root, key, &self->special[i], path, err, errlen)) goto done;
    }
    json_t *added = json_object_get(root, "added_tokens_decoder");
    if (added && s_load_added(self, added, path, err, errlen)) goto done;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

dq_tokvocab_t *dq_tokvocab_load_dir(const char *dir, char *err, size_t errlen) {
    static const char *const names[] = {"vocab.json", "merges.txt", "special_tokens_map.json",
                                        "tokenizer_config.json"};
    char *paths[4] = {NULL};
    dq_tokvocab_t *self = s_new(err, errlen);
    if (!self) return NULL;
    for (int i = 0; i < 4; i++)
        if (!(paths[i] = s_join(dir, names[i]))) {
            snprintf(err, errlen, "out of memory loading the tokenizer");
            goto fail;
        }
    /* tokenizer_config.json is read last so that its names win. */
    if (s_load_vocab_json(self, paths[0], err, errlen) ||
        s_load_merges_txt(self, paths[1], err, errlen) ||
        s_load_specials(self, paths[2], err, errlen) ||
        s_load_specials(self, paths[3], err, errlen))
        goto fail;
    for (int i = 0; i < 4; i++)
        free(paths[i]);
    return self;
fail:
    for (int i = 0; i < 4; i++)
        free(paths[i]);
    dq_tokvocab_destroy(&self);
    return NULL;
}
