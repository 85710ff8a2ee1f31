/* kernels/clip_vocab.c: writes CLIP's vocab.json and merges.txt from the BPE merge file (follows
 * openai/CLIP simple_tokenizer.py: bytes_to_unicode and SimpleTokenizer.__init__). */
#include "config.h"

#include "kernels/clip_vocab.h"
#include "kernels/tokenizer_bpe.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Writes the 256 byte symbols into vocab in bytes_to_unicode() order (printable bytes first, then
 * the rest: ascending code point order), each followed by suffix ("" or "</w>"), from id *id on. */
static void s_byte_symbols(json_t *vocab, const char *suffix, int *id) {
    for (int printable = 1; printable >= 0; printable--)
        for (unsigned b = 0; b < 256; b++) {
            if ((dq_tokbpe_byte_codepoint((uint8_t) b) == (int32_t) b) != (printable == 1)) continue;
            char sym[16];
            size_t n = dq_tokbpe_byte_utf8((uint8_t) b, sym);
            snprintf(sym + n, sizeof sym - n, "%s", suffix);
            json_object_set_new(vocab, sym, json_integer((*id)++));
        }
}

int dq_clip_vocab_write(const char *bpe_path, const char *vocab_path, const char *merges_path,
                        char *err, size_t errlen) {
    gzFile gz = gzopen(bpe_path, "rb");
    if (!gz) {
        snprintf(err, errlen, "%s: cannot open: %s", bpe_path, strerror(errno ? errno : ENOENT));
        return -1;
    }
    int rc = -1;
    json_t *vocab = json_object();
    FILE *mf = fopen(merges_path, "w");
    if (!mf) {
        snprintf(err, errlen, "%s: cannot create: %s", merges_path, strerror(errno));
        goto done;
    }
    fputs("#version: 0.2\n", mf);
    int id = 0;
    s_byte_symbols(vocab, "", &id);
    s_byte_symbols(vocab, DQ_TOKBPE_EOW, &id);
    char line[1024];
    if (!gzgets(gz, line, sizeof line)) { /* the header line */
        snprintf(err, errlen, "%s: empty or not gzip", bpe_path);
        goto done;
    }
    for (int m = 0; m < DQ_CLIP_N_MERGES; m++) {
        if (!gzgets(gz, line, sizeof line)) {
            snprintf(err, errlen, "%s: only %d merges (CLIP needs %d)", bpe_path, m,
                     DQ_CLIP_N_MERGES);
            goto done;
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *space = strchr(line, ' ');
        if (!space || space == line || !space[1] || strchr(space + 1, ' ')) {
            snprintf(err, errlen, "%s: line %d: expected two symbols separated by a space",
                     bpe_path, m + 2);
            goto done;
        }
        fprintf(mf, "%s\n", line);
        memmove(space, space + 1, strlen(space)); /* the merged token: both symbols joined */
        json_object_set_new(vocab, line, json_integer(id++));
    }
    json_object_set_new(vocab, "<|startoftext|>", json_integer(id++));
    json_object_set_new(vocab, "<|endoftext|>", json_integer(id++));
    if (json_object_size(vocab) != DQ_CLIP_VOCAB_SIZE) {
        snprintf(err, errlen, "%s: merges repeat a token (%zu distinct of %d)", bpe_path,
                 json_object_size(vocab), DQ_CLIP_VOCAB_SIZE);
        goto done;
    }
    if (fflush(mf) != 0 || ferror(mf)) {
        snprintf(err, errlen, "%s: write failed: %s", merges_path, strerror(errno));
        goto done;
    }
    if (json_dump_file(vocab, vocab_path, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0) {
        snprintf(err, errlen, "%s: cannot write", vocab_path);
        goto done;
    }
    rc = 0;
done:
    if (mf && fclose(mf) != 0 && rc == 0) {
        snprintf(err, errlen, "%s: close failed: %s", merges_path, strerror(errno));
        rc = -1;
    }
    json_decref(vocab);
    gzclose(gz);
    return rc;
}
