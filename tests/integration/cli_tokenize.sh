#!/bin/sh
# tests/integration/cli_tokenize.sh: "diffq tokenize" prints one JSON array of CLIP ids per text.
. "$top_srcdir/tests/integration/lib.sh"
DIFFQ_DATA_DIR="$top_srcdir/data"; export DIFFQ_DATA_DIR
TINY="$top_srcdir/tests/fixtures/tokenizer/tiny"
plan 11
ok "one text gives BOS..EOS ids" sh -c \
    "test \"\$('$DQ' tokenize 'a photo of a cat')\" = '[49406, 320, 1125, 539, 320, 2368, 49407]'"
ok "each text gets its own line" sh -c \
    "'$DQ' tokenize 'cat' '' > '$DQ_SCRATCH/two' && test \"\$(cat '$DQ_SCRATCH/two')\" = \"\$(printf '[49406, 2368, 49407]\n[49406, 49407]')\""
ok "--model reads a tokenizer folder" sh -c \
    "test \"\$('$DQ' tokenize --model '$TINY' 'a photo of a cat')\" = '[1, 493, 734, 207, 282, 274, 493, 747, 277, 0]'"
ok "a long text is cut to 77 ids" sh -c \
    "'$DQ' tokenize \"\$(printf 'a %.0s' \$(seq 100))\" 2>/dev/null | tr ',' '\n' | wc -l | grep -qx 77"
fails "a model folder without vocab.json fails" 1 "$DQ" tokenize --model "$DQ_SCRATCH" cat
fails "no text is a usage error" 2 "$DQ" tokenize
fails "invalid UTF-8 is bad input" 2 sh -c "exec '$DQ' tokenize \"\$(printf 'a\\377')\""
ok "a missing data folder is explained" sh -c \
    "DIFFQ_DATA_DIR=/nonexistent '$DQ' tokenize cat 2>&1 | grep -q 'set DIFFQ_DATA_DIR'"
ok "the clip rules (default) decode HTML entities" sh -c \
    "test \"\$('$DQ' tokenize 'Fish &amp; chips')\" = '[49406, 2759, 261, 8855, 49407]'"
ok "--rules transformers5 keeps them" sh -c \
    "test \"\$('$DQ' tokenize --rules transformers5 'Fish &amp; chips')\" = '[49406, 2759, 261, 6259, 282, 8855, 49407]'"
fails "an unknown --rules value is a usage error" 2 "$DQ" tokenize --rules bogus cat
done_testing
