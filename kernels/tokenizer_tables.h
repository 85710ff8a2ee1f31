/* kernels/tokenizer_tables.h: data tables of the CLIP tokenizer's OpenAI/ftfy cleanup
 * (tokenizer_tables.c, generated from Python 3.11 and ftfy 6.3.1 by
 * tests/reference/gen_tokenizer_tables.py). */
#ifndef DQ_TOKENIZER_TABLES_H
#define DQ_TOKENIZER_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An HTML character reference name (without "&") and the UTF-8 text it stands for. */
typedef struct {
    const char *name;
    const char *text;
} dq_toktab_entity_t;

/* A code point and the UTF-8 text ftfy's fix_character_width puts in its place. */
typedef struct {
    int32_t cp;
    const char *text;
} dq_toktab_width_t;

/* An inclusive range of code points. */
typedef struct {
    int32_t first, last;
} dq_toktab_range_t;

/* Python's html.entities.html5 (names with and without ";"), sorted by name (strcmp). */
extern const dq_toktab_entity_t dq_toktab_html5[];
extern const size_t dq_toktab_html5_count;
/* The all-caps names ftfy.fixes.unescape_html adds ("EACUTE;" -> U+00C9), sorted by name. */
extern const dq_toktab_entity_t dq_toktab_ftfy_caps[];
extern const size_t dq_toktab_ftfy_caps_count;
/* ftfy's WIDTH_MAP: U+3000 and U+FF01..U+FFEF to their NFKC forms, sorted by code point. */
extern const dq_toktab_width_t dq_toktab_width[];
extern const size_t dq_toktab_width_count;
/* What Python's str.lower treats as Case_Ignorable and as Cased (final-sigma rule), sorted. */
extern const dq_toktab_range_t dq_toktab_case_ignorable[];
extern const size_t dq_toktab_case_ignorable_count;
extern const dq_toktab_range_t dq_toktab_cased[];
extern const size_t dq_toktab_cased_count;

/* ---- ftfy's fix_encoding (tokenizer_mojibake_tables.c, from ftfy's badness.py and
 * chardata.py by the same script). */

/* A class of code points: sorted ranges, matched or (negate) not matched. */
typedef struct {
    const dq_toktab_range_t *ranges;
    size_t count;
    bool negate;
} dq_toktab_set_t;

/* One step of a BADNESS_RE alternative: kind 0 is a class (set indexes dq_toktab_sets), 1 is
 * "." (anything but "\n"), 2 is "^" (the start of the text); optional: the class may be absent. */
typedef struct {
    uint8_t kind;
    uint8_t set;
    uint8_t optional;
} dq_toktab_item_t;

typedef struct {
    const dq_toktab_item_t *items;
    size_t count;
} dq_toktab_seq_t;

/* A byte-regex alternative: len byte classes, each a 256-bit mask (bit b of word b / 32). */
typedef struct {
    uint8_t len;
    uint32_t mask[6][8];
} dq_toktab_bytepat_t;

/* A single-byte codec of ftfy's CHARMAP_ENCODINGS: what each byte decodes to (bytes below 0x80
 * other than 0x1A are ASCII in all of them). */
typedef struct {
    const char *name;
    int32_t dec[256];
} dq_toktab_charmap_t;

extern const dq_toktab_set_t dq_toktab_sets[];
/* badness.BADNESS_RE, one entry per alternative, in its order. */
extern const dq_toktab_seq_t dq_toktab_badness[];
extern const size_t dq_toktab_badness_count;
/* chardata.UTF8_CLUES, as indexes into dq_toktab_sets. */
extern const int dq_toktab_utf8_first_of_2, dq_toktab_utf8_first_of_3, dq_toktab_utf8_first_of_4,
    dq_toktab_utf8_continuation, dq_toktab_utf8_continuation_strict;
/* chardata.ALTERED_UTF8_RE and LOSSY_UTF8_RE, alternatives in order. */
extern const dq_toktab_bytepat_t dq_toktab_altered_utf8[];
extern const size_t dq_toktab_altered_utf8_count;
extern const dq_toktab_bytepat_t dq_toktab_lossy_utf8[];
extern const size_t dq_toktab_lossy_utf8_count;
/* chardata.CHARMAP_ENCODINGS in the order fix_encoding tries them. */
extern const dq_toktab_charmap_t dq_toktab_charmaps[];
extern const size_t dq_toktab_charmaps_count;

#endif
