/* tests/unit/test_tokenizer.c: CLIP tokenizer ids equal transformers' (fixtures from
 * tests/reference/gen_tokenizer.py), padding and truncation, folder loading, clean errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "kernels/tokenizer.h"
#include "kernels/tokenizer_bpe.h"
#include "kernels/tokenizer_text.h"

static char s_top[2048]; /* the source tree */
static char s_err[1024];
static dq_tokenizer_t *s_clip; /* the built-in vocabulary, loaded once */

static void s_path(char *out, size_t len, const char *rel) {
    snprintf(out, len, "%s/%s", s_top, rel);
}

static int s_group_setup(void **state) {
    (void)state;
    const char *top = getenv("top_srcdir");
    snprintf(s_top, sizeof s_top, "%s", top && *top ? top : ".");
    char data[2100];
    s_path(data, sizeof data, "data");
    setenv(DQ_TOKENIZER_DATA_ENV, data, 1);
    s_clip = dq_tokenizer_load(NULL, s_err, sizeof s_err);
    if (!s_clip) fprintf(stderr, "# built-in vocabulary: %s\n", s_err);
    return s_clip ? 0 : -1;
}

static int s_group_teardown(void **state) {
    (void)state;
    dq_tokenizer_destroy(&s_clip);
    dq_tokenizer_destroy(&s_clip); /* idempotent */
    return 0;
}

/* Checks every {"text", "ids"[, "truncated"]} line of a fixture against tok under rules: the
 * transformers5 rules want "ids", the clip rules "openai_ids", else "ids". Returns the count. */
static int s_check_cases(dq_tokenizer_t *tok, const char *rel, dq_tokenizer_rules_t rules) {
    dq_tokenizer_set_rules(tok, rules);
    char path[2100];
    s_path(path, sizeof path, rel);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    int count = 0, failed = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        json_t *row = json_loads(line, 0, &jerr);
        assert_non_null(row);
        const char *text = json_string_value(json_object_get(row, "text"));
        json_t *want = json_object_get(row, "ids");
        json_t *openai = json_object_get(row, "openai_ids");
        if (rules == DQ_TOKENIZER_RULES_CLIP && openai) want = openai;
        assert_non_null(text);
        assert_true(json_is_array(want));
        int32_t ids[DQ_TOKENIZER_CONTEXT];
        bool truncated = false;
        int n = dq_tokenizer_encode(tok, text, ids, DQ_TOKENIZER_CONTEXT, &truncated, s_err,
                                    sizeof s_err);
        bool same = n == (int)json_array_size(want);
        for (int i = 0; same && i < n; i++)
            same = ids[i] == json_integer_value(json_array_get(want, (size_t)i));
        json_t *want_trunc = json_object_get(row, "truncated");
        if (want_trunc && json_boolean_value(want_trunc) != truncated) same = false;
        if (!same) {
            failed++;
            fprintf(stderr, "# %s:%d (%s rules): text %s: got %d ids:", rel, count + 1,
                    dq_tokenizer_rules_names[rules], text, n);
            for (int i = 0; i < n; i++)
                fprintf(stderr, " %d", (int)ids[i]);
            char *w = json_dumps(want, JSON_COMPACT);
            fprintf(stderr, "\n#   want %s (truncated %d, got %d)\n", w,
                    want_trunc ? (int)json_boolean_value(want_trunc) : -1, (int)truncated);
            free(w);
        }
        count++;
        json_decref(row);
    }
    free(line);
    fclose(f);
    assert_int_equal(failed, 0);
    return count;
}

static void test_builtin_matches_transformers(void **state) {
    (void)state;
    assert_int_equal(dq_tokenizer_vocab_size(s_clip), 49408);
    assert_int_equal(dq_tokenizer_bos(s_clip), 49406);
    assert_int_equal(dq_tokenizer_eos(s_clip), 49407);
    assert_int_equal(dq_tokenizer_pad_id(s_clip), 49407);
    assert_int_equal(dq_tokenizer_get_rules(s_clip), DQ_TOKENIZER_RULES_TRANSFORMERS5 - 1);
    assert_true(s_check_cases(s_clip, "tests/fixtures/tokenizer/cases.jsonl",
                              DQ_TOKENIZER_RULES_TRANSFORMERS5) >= 250);
    dq_tokenizer_set_rules(s_clip, DQ_TOKENIZER_RULES_CLIP);
}

/* The default rules: OpenAI CLIP's ids (ftfy, html.unescape, str.lower, its pattern). */
static void test_builtin_matches_openai_clip(void **state) {
    (void)state;
    assert_true(s_check_cases(s_clip, "tests/fixtures/tokenizer/cases.jsonl",
                              DQ_TOKENIZER_RULES_CLIP) >= 250);
}

static void test_rules_names(void **state) {
    (void)state;
    dq_tokenizer_rules_t r = DQ_TOKENIZER_RULES_COUNT;
    assert_int_equal(dq_tokenizer_rules_parse("clip", &r), 0);
    assert_int_equal(r, DQ_TOKENIZER_RULES_CLIP);
    assert_int_equal(dq_tokenizer_rules_parse("transformers5", &r), 0);
    assert_int_equal(r, DQ_TOKENIZER_RULES_TRANSFORMERS5);
    assert_int_equal(dq_tokenizer_rules_parse("CLIP", &r), -1);
    assert_int_equal(dq_tokenizer_rules_parse("", &r), -1);
    assert_int_equal(r, DQ_TOKENIZER_RULES_TRANSFORMERS5); /* untouched on failure */
}

static void test_folder_matches_transformers(void **state) {
    (void)state;
    char dir[2100];
    s_path(dir, sizeof dir, "tests/fixtures/tokenizer/tiny");
    dq_tokenizer_t *tok = dq_tokenizer_load(dir, s_err, sizeof s_err);
    if (!tok) fail_msg("%s", s_err);
    /* The tiny vocabulary numbers its 814 tokens in reverse: BOS 1, EOS 0, and it pads with "!". */
    assert_int_equal(dq_tokenizer_vocab_size(tok), 814);
    assert_int_equal(dq_tokenizer_bos(tok), 1);
    assert_int_equal(dq_tokenizer_eos(tok), 0);
    assert_int_equal(dq_tokenizer_pad_id(tok), 813);
    assert_true(s_check_cases(tok, "tests/fixtures/tokenizer/tiny_cases.jsonl",
                              DQ_TOKENIZER_RULES_TRANSFORMERS5) >= 5);
    int32_t ids[DQ_TOKENIZER_CONTEXT];
    int n = dq_tokenizer_encode(tok, "a", ids, DQ_TOKENIZER_CONTEXT, NULL, s_err, sizeof s_err);
    assert_int_equal(dq_tokenizer_pad(tok, ids, n, DQ_TOKENIZER_CONTEXT), DQ_TOKENIZER_CONTEXT);
    assert_int_equal(ids[n], 813);
    assert_int_equal(ids[DQ_TOKENIZER_CONTEXT - 1], 813);
    dq_tokenizer_destroy(&tok);
    assert_null(tok);
}

static void test_added_tokens_decoder_is_honoured(void **state) {
    (void)state;
    char dir[2100];
    s_path(dir, sizeof dir, "tests/fixtures/tokenizer/tiny_added");
    dq_tokenizer_t *tok = dq_tokenizer_load(dir, s_err, sizeof s_err);
    if (!tok) fail_msg("%s", s_err);
    assert_int_equal(dq_tokenizer_vocab_size(tok), 816); /* two added words */
    assert_int_equal(dq_tokenizer_pad_id(tok), 0);
    assert_true(s_check_cases(tok, "tests/fixtures/tokenizer/tiny_added_cases.jsonl",
                              DQ_TOKENIZER_RULES_TRANSFORMERS5) >= 8);
    dq_tokenizer_destroy(&tok);
}

static void test_model_folder_uses_tokenizer_subfolder(void **state) {
    (void)state;
    char model[] = "/tmp/dq-test-model-XXXXXX";
    assert_non_null(mkdtemp(model));
    char rel[2100], link[64];
    s_path(rel, sizeof rel, "tests/fixtures/tokenizer/tiny");
    char *target = realpath(rel, NULL); /* the link must not depend on the working folder */
    assert_non_null(target);
    snprintf(link, sizeof link, "%s/tokenizer", model);
    assert_int_equal(symlink(target, link), 0);
    free(target);
    dq_tokenizer_t *tok = dq_tokenizer_load(model, s_err, sizeof s_err);
    if (!tok) fail_msg("%s", s_err);
    assert_int_equal(dq_tokenizer_pad_id(tok), 813);
    dq_tokenizer_destroy(&tok);
    unlink(link);
    rmdir(model);
}

static void test_padding(void **state) {
    (void)state;
    int32_t ids[DQ_TOKENIZER_CONTEXT];
    int n = dq_tokenizer_encode(s_clip, "a photo of a cat", ids, DQ_TOKENIZER_CONTEXT, NULL, s_err,
                                sizeof s_err);
    assert_int_equal(n, 7);
    ids[n] = -5; /* a sentinel the padding must overwrite */
    assert_int_equal(dq_tokenizer_pad(s_clip, ids, n, DQ_TOKENIZER_CONTEXT), DQ_TOKENIZER_CONTEXT);
    for (int i = n; i < DQ_TOKENIZER_CONTEXT; i++)
        assert_int_equal(ids[i], 49407);
    assert_int_equal(ids[5], 2368); /* "cat</w>" untouched */
    assert_int_equal(dq_tokenizer_pad(s_clip, ids, 10, 9), -1);
    assert_int_equal(dq_tokenizer_pad(s_clip, ids, -1, 9), -1);
    assert_int_equal(dq_tokenizer_pad(s_clip, ids, 9, 9), 9);
}

static void test_truncation(void **state) {
    (void)state;
    char text[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(text, "a ");
    int32_t ids[DQ_TOKENIZER_CONTEXT + 1];
    ids[DQ_TOKENIZER_CONTEXT] = -7; /* must stay: encode writes at most max_ids */
    bool truncated = false;
    int n = dq_tokenizer_encode(s_clip, text, ids, DQ_TOKENIZER_CONTEXT, &truncated, s_err,
                                sizeof s_err);
    assert_int_equal(n, DQ_TOKENIZER_CONTEXT);
    assert_true(truncated);
    assert_int_equal(ids[0], 49406);
    assert_int_equal(ids[75], 320);
    assert_int_equal(ids[76], 49407);
    assert_int_equal(ids[DQ_TOKENIZER_CONTEXT], -7);

    text[75 * 2 - 1] = '\0'; /* exactly 75 "a": fits */
    n = dq_tokenizer_encode(s_clip, text, ids, DQ_TOKENIZER_CONTEXT, &truncated, s_err,
                            sizeof s_err);
    assert_int_equal(n, DQ_TOKENIZER_CONTEXT);
    assert_false(truncated);

    n = dq_tokenizer_encode(s_clip, "a photo of a cat", ids, 4, &truncated, s_err, sizeof s_err);
    assert_int_equal(n, 4);
    assert_true(truncated);
    assert_int_equal(ids[1], 320);
    assert_int_equal(ids[2], 1125);
    assert_int_equal(ids[3], 49407);

    n = dq_tokenizer_encode(s_clip, "cat", ids, 2, NULL, s_err, sizeof s_err);
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 49407);
    assert_int_equal(dq_tokenizer_encode(s_clip, "cat", ids, 1, NULL, s_err, sizeof s_err), -1);
    assert_non_null(strstr(s_err, "at least 2"));
}

static void test_invalid_utf8_is_rejected(void **state) {
    (void)state;
    static const char *const bad[] = {"\xff", "ok \xc3", "a\xed\xa0\x80" /* a surrogate */,
                                      "\xc0\xaf" /* overlong '/' */, "\xf4\x90\x80\x80"};
    static const int at[] = {0, 3, 1, 0, 0};
    int32_t ids[DQ_TOKENIZER_CONTEXT];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_err[0] = '\0';
        assert_int_equal(dq_tokenizer_encode(s_clip, bad[i], ids, DQ_TOKENIZER_CONTEXT, NULL, s_err,
                                             sizeof s_err),
                         -1);
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte %d", at[i]);
        assert_string_equal(s_err, want);
    }
}

static void test_byte_characters(void **state) {
    (void)state;
    /* GPT-2/CLIP bytes_to_unicode(): printable bytes keep their code point, the rest count up
     * from U+0100 in byte order (space -> U+0120 'Ġ', 0xAD -> U+0143). */
    assert_int_equal(dq_tokbpe_byte_codepoint('!'), '!');
    assert_int_equal(dq_tokbpe_byte_codepoint(0xff), 0xff);
    assert_int_equal(dq_tokbpe_byte_codepoint(0), 0x100);
    assert_int_equal(dq_tokbpe_byte_codepoint(' '), 0x120);
    assert_int_equal(dq_tokbpe_byte_codepoint(0x7f), 0x121);
    assert_int_equal(dq_tokbpe_byte_codepoint(0xad), 0x143);
    char buf[2];
    assert_int_equal(dq_tokbpe_byte_utf8(' ', buf), 2);
    assert_memory_equal(buf, "\xc4\xa0", 2);
}

static void test_normalize(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"Cafe\xcc\x81", "caf\xc3\xa9"},             /* NFD -> NFC, then lowercase */
        {"\xc4\xb0x", "i\xcc\x87x"},                 /* U+0130 -> i + U+0307 */
        {"\xce\x9f\xce\xa3", "\xce\xbf\xcf\x83"},    /* no final-sigma rule */
        {" a \t\n\xc2\xa0\xe3\x80\x80 b ", " a b "}, /* white space runs -> one space, kept */
        {"a\xe2\x80\x8b"
         "b",
         "a\xe2\x80\x8b"
         "b"}, /* U+200B is not white space */
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = 0;
        char *out =
            dq_toktext_normalize(cases[i].in, strlen(cases[i].in), &len, s_err, sizeof s_err);
        assert_non_null(out);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(len, strlen(cases[i].out));
        free(out);
    }
    assert_true(dq_toktext_is_space(0x85));
    assert_false(dq_toktext_is_space(0x1c)); /* Python's str.isspace() says yes; tokenizers no */
}

/* The clip rules' cleanup on its own (expected: ftfy 6.3.1, html.unescape, str.lower). */
static void test_clean_clip(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        /* curly quotes, an all-caps entity (ftfy), three levels of &amp;, a ligature, strip */
        {"  \xe2\x80\x9c" "Caf&EACUTE;\xe2\x80\x9d  &amp;amp;amp; \xef\xac\x81\n",
         "\"caf\xc3\xa9\" & fi"},
        /* full width, a terminal escape, a control character, final sigma before "." */
        {"\xef\xbc\xa8\xef\xbd\x89\x1b[31m!\x01 \xce\x9f\xce\x94\xce\x9f\xce\xa3.",
         "hi! \xce\xbf\xce\xb4\xce\xbf\xcf\x82."},
        /* a line with "<": ftfy leaves entities alone, html.unescape does not know EACUTE */
        {"<b>&EACUTE;</b>", "<b>&eacute;</b>"},
        /* numeric references: 0x80 as Windows-1252, 0 and a surrogate as U+FFFD */
        {"&#x80;&#0;&#xD800;", "\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd"},
        /* U+0130 -> i U+0307; a sigma before a letter is not final */
        {"\xc4\xb0\xce\xa3\xce\x91", "i\xcc\x87\xcf\x83\xce\xb1"},
        /* mojibake: UTF-8 read as Windows-1252 (ftfy's fix_encoding) */
        {"caf\xc3\x83\xc2\xa9 \xc3\xa2\xe2\x82\xac\xc5\x93hi\xc3\xa2\xe2\x82\xac\xc2\x9d",
         "caf\xc3\xa9 \"hi\""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = 0;
        char *out =
            dq_toktext_clean_clip(cases[i].in, strlen(cases[i].in), &len, s_err, sizeof s_err);
        assert_non_null(out);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(len, strlen(cases[i].out));
        free(out);
    }
    size_t len = 0;
    assert_null(dq_toktext_clean_clip("a\xff", 2, &len, s_err, sizeof s_err));
    assert_non_null(strstr(s_err, "invalid UTF-8"));
}

/* The clip rules take the special ids from the folder's vocabulary (the tiny one numbers
 * them in reverse: BOS 1, EOS 0) and match them in any case where a word starts. */
static void test_folder_clip_rules(void **state) {
    (void)state;
    char dir[2100];
    s_path(dir, sizeof dir, "tests/fixtures/tokenizer/tiny");
    dq_tokenizer_t *tok = dq_tokenizer_load(dir, s_err, sizeof s_err);
    if (!tok) fail_msg("%s", s_err);
    assert_int_equal(dq_tokenizer_get_rules(tok), DQ_TOKENIZER_RULES_CLIP);
    int32_t ids[DQ_TOKENIZER_CONTEXT], plain[DQ_TOKENIZER_CONTEXT];
    int n = dq_tokenizer_encode(tok, "A <|EndOfText|> <|STARTOFTEXT|>", ids, DQ_TOKENIZER_CONTEXT,
                                NULL, s_err, sizeof s_err);
    int m = dq_tokenizer_encode(tok, "a", plain, DQ_TOKENIZER_CONTEXT, NULL, s_err, sizeof s_err);
    assert_int_equal(m, 3);
    assert_int_equal(n, 5);
    int32_t want[] = {1, plain[1], 0, 1, 0};
    assert_memory_equal(ids, want, sizeof want);
    dq_tokenizer_destroy(&tok);
}

/* Writes vocab.json, merges.txt and tokenizer_config.json (NULL: no such file) into a new
 * temporary folder named in dir (at least 32 bytes). */
static void s_make_folder(char *dir, const char *vocab, const char *merges, const char *config) {
    strcpy(dir, "/tmp/dq-test-tok-XXXXXX");
    assert_non_null(mkdtemp(dir));
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    const char *texts[] = {vocab, merges, config};
    for (int i = 0; i < 3; i++) {
        if (!texts[i]) continue;
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(texts[i], f);
        fclose(f);
    }
}

static void s_remove_folder(const char *dir) {
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                           "clip/bpe_simple_vocab_16e6.txt.gz"};
    char path[128];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/clip", dir);
    rmdir(path);
    rmdir(dir);
}

/* Loading the folder made of these files fails with an error that holds each of want[]. */
static void s_expect_load_error(const char *vocab, const char *merges, const char *config,
                                const char *want1, const char *want2) {
    char dir[64];
    s_make_folder(dir, vocab, merges, config);
    s_err[0] = '\0';
    dq_tokenizer_t *tok = dq_tokenizer_load(dir, s_err, sizeof s_err);
    assert_null(tok);
    if (!strstr(s_err, want1) || (want2 && !strstr(s_err, want2)))
        fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", s_err, want1, want2 ? want2 : "");
    s_remove_folder(dir);
}

#define S_VOCAB                                                                                    \
    "{\"a\": 0, \"b\": 1, \"ab</w>\": 2, \"b</w>\": 3, \"<|startoftext|>\": 4, "                   \
    "\"<|endoftext|>\": 5}"

static void test_small_folder_loads(void **state) {
    (void)state;
    char dir[64];
    s_make_folder(dir, S_VOCAB, "#version: 0.2\na b</w>\n", NULL);
    dq_tokenizer_t *tok = dq_tokenizer_load(dir, s_err, sizeof s_err);
    if (!tok) fail_msg("%s", s_err);
    int32_t ids[8];
    /* "ab" merges into "ab</w>"; "b" "a</w>" has no merge and "a</w>" is not in the vocabulary,
     * nor is "c</w>": those give the unknown token, which is EOS by default. */
    int n = dq_tokenizer_encode(tok, "AB ba c", ids, 8, NULL, s_err, sizeof s_err);
    int32_t want[] = {4, 2, 1, 5, 5, 5};
    assert_int_equal(n, 6);
    assert_memory_equal(ids, want, sizeof want);
    dq_tokenizer_destroy(&tok);
    s_remove_folder(dir);
}

static void test_bad_folders_give_clean_errors(void **state) {
    (void)state;
    const char *merges = "#version: 0.2\na b</w>\n";
    s_expect_load_error(NULL, merges, NULL, "no vocab.json", NULL);
    s_expect_load_error(S_VOCAB, NULL, NULL, "merges.txt: cannot open", NULL);
    s_expect_load_error("{\"a\": 0,\n \"b\" 1}", merges, NULL, "vocab.json:2:", NULL);
    s_expect_load_error("[1, 2]", merges, NULL, "vocab.json: expected a non-empty object", NULL);
    s_expect_load_error("{\"a\": \"x\"}", merges, NULL, "token \"a\": expected an id", NULL);
    s_expect_load_error("{\"a\": -3}", merges, NULL, "token \"a\": expected an id", NULL);
    s_expect_load_error(S_VOCAB, "#version: 0.2\na b c\n", NULL, "merges.txt:2: expected a merge",
                        NULL);
    s_expect_load_error(S_VOCAB, "a b</w>\n\nb b\n", NULL, "merges.txt:2: expected a merge", NULL);
    s_expect_load_error(S_VOCAB, "a x\n", NULL, "merges.txt:1: merge \"a x\" has a part not in",
                        NULL);
    s_expect_load_error(S_VOCAB, "b a\n", NULL, "merges.txt:1: the merged token \"ba\"", NULL);
    s_expect_load_error(S_VOCAB, merges, "{\"pad_token\": \"!\"}", "pad token \"!\" is not in",
                        NULL);
    s_expect_load_error(S_VOCAB, merges, "{\"pad_token\": 7}", "tokenizer_config.json",
                        "\"pad_token\": expected a non-empty string");
    s_expect_load_error(S_VOCAB, merges, "{\"eos_token\": {\"content\": \"b\", \"normalized\": 1}}",
                        "\"eos_token\": \"normalized\" must be true or false", NULL);
    s_expect_load_error(S_VOCAB, merges, "{\"pad_token\": ", "tokenizer_config.json:1:", NULL);
    s_expect_load_error("{\"a\": 0}", "", NULL, "bos token \"<|startoftext|>\" is not in", NULL);
    s_expect_load_error(S_VOCAB, merges, "{\"added_tokens_decoder\": []}",
                        "\"added_tokens_decoder\": expected an object", NULL);
    s_expect_load_error(S_VOCAB, merges,
                        "{\"added_tokens_decoder\": {\"x\": {\"content\": \"y\"}}}",
                        "added_tokens_decoder \"x\": expected an id", NULL);
    s_expect_load_error(
        S_VOCAB, merges,
        "{\"added_tokens_decoder\": {\"6\": {\"content\": \"y\", \"lstrip\": true}}}",
        "added_tokens_decoder \"6\": lstrip, rstrip and single_word are not", NULL);
    s_expect_load_error(S_VOCAB, merges,
                        "{\"added_tokens_decoder\": {\"6\": {\"content\": \"y\", \"special\": 2}}}",
                        "\"special\" must be true or false", NULL);
}

static void test_bad_builtin_data_gives_clean_errors(void **state) {
    (void)state;
    char saved[2100];
    snprintf(saved, sizeof saved, "%s", getenv(DQ_TOKENIZER_DATA_ENV));
    char dir[64];
    s_make_folder(dir, NULL, NULL, NULL);
    setenv(DQ_TOKENIZER_DATA_ENV, dir, 1);
    dq_tokenizer_t *tok = dq_tokenizer_load(NULL, s_err, sizeof s_err);
    assert_null(tok);
    assert_non_null(strstr(s_err, "bpe_simple_vocab_16e6.txt.gz: cannot open"));
    assert_non_null(strstr(s_err, DQ_TOKENIZER_DATA_ENV));

    char path[128];
    snprintf(path, sizeof path, "%s/clip", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/clip/bpe_simple_vocab_16e6.txt.gz", dir);
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    gzputs(gz, "header\ni n\nt h\n");
    gzclose(gz);
    tok = dq_tokenizer_load(NULL, s_err, sizeof s_err);
    assert_null(tok);
    assert_non_null(strstr(s_err, "has 2 merges, CLIP's vocabulary needs 48894"));

    gz = gzopen(path, "wb");
    gzputs(gz, "header\ni n\nthree part line\n");
    gzclose(gz);
    tok = dq_tokenizer_load(NULL, s_err, sizeof s_err);
    assert_null(tok);
    assert_non_null(strstr(s_err, "bpe_simple_vocab_16e6.txt.gz:3: expected a merge"));
    s_remove_folder(dir);
    setenv(DQ_TOKENIZER_DATA_ENV, saved, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_matches_transformers),
        cmocka_unit_test(test_builtin_matches_openai_clip),
        cmocka_unit_test(test_rules_names),
        cmocka_unit_test(test_folder_matches_transformers),
        cmocka_unit_test(test_added_tokens_decoder_is_honoured),
        cmocka_unit_test(test_model_folder_uses_tokenizer_subfolder),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_invalid_utf8_is_rejected),
        cmocka_unit_test(test_byte_characters),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_clean_clip),
        cmocka_unit_test(test_folder_clip_rules),
        cmocka_unit_test(test_small_folder_loads),
        cmocka_unit_test(test_bad_folders_give_clean_errors),
        cmocka_unit_test(test_bad_builtin_data_gives_clean_errors),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, s_group_setup, s_group_teardown);
}
