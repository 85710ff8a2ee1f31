/* kernels/clip_vocab.h: CLIP's BPE vocabulary (vocab.json) and merge list (merges.txt), built from
 * OpenAI's bpe_simple_vocab_16e6.txt.gz exactly as CLIP's SimpleTokenizer builds its encoder. */
#ifndef DQ_CLIP_VOCAB_H
#define DQ_CLIP_VOCAB_H

#include <stddef.h>

/* Merges CLIP uses: 49152 - 256 - 2 lines after the header (vocabulary of 49408). */
#define DQ_CLIP_N_MERGES   48894
#define DQ_CLIP_VOCAB_SIZE 49408

/* Reads the gzipped merge file at bpe_path and writes vocab_path (JSON: token -> id, ids 0..49407
 * in order: 256 byte symbols, the same with "</w>", the merges, <|startoftext|>, <|endoftext|>) and
 * merges_path ("#version: 0.2" then one "a b" line per merge), the files transformers'
 * CLIPTokenizer reads. Returns 0, or -1 with err naming the file (unreadable, too few merges, I/O).
 */
int dq_clip_vocab_write(const char *bpe_path, const char *vocab_path, const char *merges_path,
                        char *err, size_t errlen);

#endif
