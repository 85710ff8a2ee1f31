/* kernels/tokenizer_tables.h: data tables of the CLIP tokenizer's OpenAI/ftfy cleanup
 * (tokenizer_tables.c, generated from Python 3.11 and ftfy 6.3.1 by
 * tests/reference/gen_tokenizer_tables.py). */
#ifndef DQ_TOKENIZER_TABLES_H
#define DQ_TOKENIZER_TABLES_H

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

#endif
