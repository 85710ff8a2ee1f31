"""Build CLIP's vocab.json/merges.txt from OpenAI's BPE file, plus an
independent re-implementation of OpenAI's SimpleTokenizer (ftfy + html
unescape) used only to show where it differs from transformers' tokenizer."""

import gzip
import html
import json
import os

import ftfy
import regex

BPE_GZ = "/work/shared/data/clip/bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # OpenAI keeps this many merge lines (after the header)


def byte_unicode_table():
    """OpenAI/GPT-2 byte -> printable unicode char table. Insertion order matters:
    the printable bytes come first (in code order), then the others, which are
    mapped to U+0100.. in byte order; CLIP's base vocabulary follows this order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def read_merges(path=BPE_GZ):
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:N_MERGES + 1]]
    assert len(merges) == N_MERGES and all(len(m) == 2 for m in merges)
    return merges


def build_vocab(merges):
    base = list(byte_unicode_table().values())
    tokens = base + [t + "</w>" for t in base] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens) == 49408
    return vocab


def write_tokenizer_files(folder):
    """vocab.json + merges.txt exactly as the Hugging Face CLIP repos ship them."""
    merges = read_merges()
    vocab = build_vocab(merges)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return vocab, merges


class OpenAIClipTokenizer:
    """OpenAI CLIP tokenization rules (ftfy.fix_text, double html.unescape,
    whitespace collapse, lowercase, regex split, byte-level BPE). This is the
    behaviour of transformers 4.x's slow CLIPTokenizer when ftfy is installed."""

    PAT = regex.compile(
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
        regex.IGNORECASE)

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.rank = {m: i for i, m in enumerate(merges)}
        self.byte_table = byte_unicode_table()
        self.cache = {}

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.rank.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            pair = (parts[best[1]], parts[best[1] + 1])
            merged = []
            i = 0
            while i < len(parts):  # merge every occurrence of the best pair, left to right
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self.cache[word] = parts
        return parts

    def clean(self, text):
        text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
        return regex.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text):
        ids = []
        for piece in self.PAT.findall(self.clean(text)):
            word = "".join(self.byte_table[b] for b in piece.encode("utf-8"))
            ids.extend(self.vocab[t] for t in self._bpe(word))
        return ids
