#!/usr/bin/env python3
"""tests/reference/gen_tokenizer.py: writes the CLIP tokenizer fixtures in tests/fixtures/tokenizer/.

Run from the top of the tree with the reference environment (transformers + ftfy):
    /work/refenv/bin/python tests/reference/gen_tokenizer.py

cases.jsonl      {"text", "ids", "truncated"[, "openai_ids"]} per prompt. "ids" come from
                 transformers' CLIPTokenizer built from Stable Diffusion 1.5's tokenizer/ folder
                 (vocab.json and merges.txt made from data/clip/bpe_simple_vocab_16e6.txt.gz the
                 way OpenAI's SimpleTokenizer builds its vocabulary, and SD 1.5's
                 tokenizer_config.json), called as diffusers does: truncation to 77, no padding.
                 "openai_ids" is present only where OpenAI CLIP's own tokenizer (ftfy + html
                 unescaping, re-implemented below from simple_tokenizer.py) gives other ids.
                 diffq's default (clip) rules must give openai_ids, else ids.
tiny/            a small tokenizer folder (all byte tokens, 300 merges, ids in reverse order,
                 pad token "!") for the folder-loading path, and tiny_cases.jsonl its ids.
tiny_added/      the same vocabulary with an "added_tokens_decoder" table (as transformers 4.34+
                 saves it) that flips which special token is matched before normalization and
                 adds two words, and tiny_added_cases.jsonl its ids.
"""
import gzip
import html
import json
import os
import sys
import tempfile

import ftfy
import regex
import transformers
from transformers import CLIPTokenizer

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPE_GZ = os.path.join(TOP, "data", "clip", "bpe_simple_vocab_16e6.txt.gz")
OUT = os.path.join(TOP, "tests", "fixtures", "tokenizer")
N_MERGES = 49152 - 256 - 2  # what simple_tokenizer.py keeps: 48894 merges

SD15_CONFIG = {  # runwayml/stable-diffusion-v1-5 tokenizer/tokenizer_config.json
    "errors": "replace",
    "unk_token": {"content": "<|endoftext|>", "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": True, "__type": "AddedToken"},
    "bos_token": {"content": "<|startoftext|>", "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": True, "__type": "AddedToken"},
    "eos_token": {"content": "<|endoftext|>", "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": True, "__type": "AddedToken"},
    "pad_token": "<|endoftext|>", "add_prefix_space": False, "do_lower_case": True,
    "model_max_length": 77, "name_or_path": "runwayml/stable-diffusion-v1-5",
    "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
}


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab():
    lines = gzip.open(BPE_GZ).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:N_MERGES + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    return vocab, merges


def write_folder(path, vocab_ids, merges, config):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab_ids, f, ensure_ascii=False)
    with open(os.path.join(path, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)


class OpenAIClip:
    """OpenAI CLIP's simple_tokenizer.SimpleTokenizer, re-implemented to cross-check."""

    def __init__(self, vocab, merges):
        self.byte_encoder = bytes_to_unicode()
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    def bpe(self, token):
        if token in ("<|startoftext|>", "<|endoftext|>"):
            return [token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text, fix_encoding=True):
        text = ftfy.fix_text(text, fix_encoding=fix_encoding)
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for tok in regex.findall(self.pat, text):
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(tok))
        ids = ids[:75]
        return [49406] + ids + [49407]


def cases():
    c = [
        # plain
        "a photo of a cat", "a photograph of an astronaut riding a horse",
        "A beautiful landscape painting", "cat", "a", "hello world", "portrait of a woman",
        "a red car parked on the street at night", "an oil painting of a lighthouse in a storm",
        "cyberpunk city, neon lights, rain, reflections",
        # punctuation
        "hello, world!", "what?!", "wow...", "a--b", "(a) [b] {c}", "!!!", "#hashtag @user",
        "a/b\\c", "50% off", "x+y=z", "a_b_c", "semi;colon:colon", "tilde~caret^", "`code`",
        "<lora:foo:0.8>", "a | b", "\"quoted\"",
        # numbers
        "123", "3.14159", "1girl, 2boys", "1920x1080", "4k 8k uhd", "year 2024", "0", "v1.5",
        # contractions
        "don't", "it's", "we're", "they've", "I'm", "we'll", "he'd", "DON'T STOP", "''s", "rock'n'roll",
        "o'clock", "'s", "can't won't shouldn't",
        # case
        "HELLO World", "MiXeD CaSe TeXt", "ALL CAPS PROMPT",
        # non-ASCII letters
        "café crème", "naïve résumé", "Straße", "STRASSE", "ẞ", "İstanbul", "ıi", "Ελληνικά",
        "ΟΔΟΣ", "σοφία", "Русский текст", "Ёжик", "Ωmega", "Ǆemal ǅ", "ﬁne ﬂower", "Ǳ",
        "Ångström", "Kelvin \u212a", "עברית", "العربية", "हिन्दी", "ไทย",
        # CJK and others
        "日本語のテキスト", "中文提示词", "한국어", "東京タワー, 夜景", "猫 cat 猫",
        # emoji
        "😀", "a cat 🐱 on a mat", "👨‍👩‍👧", "🇫🇷 flag", "❤️ love", "✨sparkles✨",
        # HTML entities (transformers 5 keeps them; OpenAI CLIP unescapes)
        "fish &amp; chips", "a &lt;b&gt; c", "&quot;quoted&quot;", "it&#39;s", "a&nbsp;b",
        "&amp;amp;", "&copy; 2024", "&", "AT&T",
        # curly quotes and dashes
        "“curly quotes”", "‘single’", "it’s", "em—dash", "en–dash", "ellipsis…", "« guillemets »",
        # ligatures, full width
        "ﬁ", "ＡＢＣ１２３", "ｈｅｌｌｏ　ｗｏｒｌｄ", "ﬃ ﬄ ﬆ",
        # combining accents: NFC vs NFD
        "cafe\u0301", "caf\u00e9", "e\u0301\u0301", "a\u0308", "\u0301start", "n\u0303",
        # white space
        "a  b", "  leading", "trailing  ", "a\nb", "a\tb", "a\r\nb", "a \n\t b", "\n\n",
        "a\u00a0b", "a\u3000b", "a\u2003b", "a\u2028b", "a\u0085b", "a\u200bb", "a\ufeffb",
        # control characters
        "a\x01b", "a\x1cb", "a\x7fb", "bell\x07", "a\u0080b",
        # empty and space only
        "", " ", "   \t\n ",
        # special-token strings
        "<|startoftext|>", "<|endoftext|>", "a<|endoftext|>b", "a <|startoftext|> b",
        "<|STARTOFTEXT|>", "<|EndOfText|>", "<|endoftext|>>", "x<|endoftext|><|startoftext|>y",
        "<|endoftext", "<|",
        # SD prompts with weight syntax
        "(masterpiece:1.2), best quality, ultra-detailed, 1girl, solo",
        "((best quality)), ((masterpiece)), (detailed), [blurry]",
        "a painting of a fox in the style of Studio Ghibli, trending on artstation, 8k",
        "portrait photo of a old warrior chief, tribal panther make up, blue on red, side profile, "
        "looking away, serious eyes, 50mm portrait photography, hard rim lighting photography--beta "
        "--ar 2:3  --beta --upbeta",
        "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, "
        "cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark",
        "{cat|dog} AND (sunset:0.7)",
        "masterpiece, best quality, 1girl, white hair, red eyes, kimono, cherry blossoms, "
        "detailed background, depth of field",
        # long words
        "supercalifragilisticexpialidocious", "antidisestablishmentarianism", "aaaaaaaaaaaaaaaaaaaa",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "qwxzjkvbnm", "pneumonoultramicroscopicsilicovolcanoconiosis",
    ]
    # ftfy's fixes and OpenAI's cleanup, one at a time (all checked against ftfy 6.3.1 and
    # Python's html.unescape by running them; see main()).
    c += [
        # ftfy unescape_html: all-caps names, numeric references and what html.unescape does
        "&EACUTE;cole", "BUNDESSTRA&SZLIG;E", "&ntilde; &Ntilde; &NTILDE; &nTILDE;",
        "&#65;&#x42;&#X43;", "&#0;x", "&#128;", "&#x80;&#x81;&#x9f;", "&#1;x", "&#59;", "&#xD800;",
        "&#1114112;", "&#99999999999999999999;", "&#13;a", "&#x1F600;", "&#128512;", "&#65",
        "&#x41g;", "&#xZZ;", "&#;", "&ampx", "&amp", "&notit;", "&copy2024", "&Jscr;ohn",
        "&checkmark;", "&nGt;", "&NotEqualTilde;", "&bogus;", "a&b", "&amp;amp;amp;amp;",
        "&amp;lt;b&amp;gt;", "&#38;#38;#38;", "e&#x301;", "&aacuteb", "&AMP;", "&LT;3",
        "&abcdefghijklmnopqrstuvwxyz0123456789abcdefg;", "&x" * 3,
        # ftfy turns HTML unescaping off for a line with "<" and for every line after it
        "<b> &amp;amp;amp; &EACUTE;", "&EACUTE;\n<b>\n&EACUTE;", "<\n&EACUTE;", "a\n&EACUTE;<",
        # quotes (before contractions), ligatures, widths
        "don\u2019t", "IT\u2019S", "\u02bcokina", "\u201breversed\u201f", "\u2019s",
        "\u0132ssel \u0133", "\u0149", "\u01c8ubljana", "\ufb05", "\ufb00", "\uff76\uff80\uff76\uff85",
        "\uff35\uff80\uff70\uff9d", "\uffe5100", "\uff9e", "\u3000lead", "\uffe3", "\uffe8",
        # line breaks, terminal escapes, control characters, C1 controls
        "a\rb", "a\u2029b", "\x1b[31mred\x1b[0m", "\x1b[1;31mx", "\x1b[mx", "\x1b[\u0663mx",
        "\x1bx", "\x1b[31", "a\u206ab", "a\ufffcb", "\ufeffbom", "a\x1c\x1d\x1e\x1fb",
        "\x91quoted\x92", "\x93hi\x94", "a\x81b", "\x85", "caf\u00e9\x80", "\x9cuvre",
        # lowercase: final sigma in context, the dotted capital I, long s under IGNORECASE
        "\u03a3\u0391\u03a3 \u03a3\u039f\u03a6\u039f\u03a3", "\u03a3", "\u0391\u03a3.", "\u0391.\u03a3",
        "\u0391\u03a3'\u0391", "\u0391\u03a3\u0301", "\u0391\u0301\u03a3", "\u0130\u0130",
        "<|\u017ftartoftext|>", "it'\u017f", "\u017f",
        # CLIP's pattern finds special tokens only where a word starts
        "x!<|endoftext|>", "'<|startoftext|>", "<|ENDOFTEXT|>y", "a<|endoftext|>b<|STARTOFTEXT|>",
        # mojibake that ftfy's fix_encoding repairs (and text it leaves alone)
        "caf\u00c3\u00a9", "\u00e2\u20ac\u0153quoted\u00e2\u20ac\x9d", "voil\u00c3 le travail",
        "\u00c3\u00a1rbol", "sch\u00c3\u00b6n", "\u00d0\u0178\u00d1\u20ac\u00d0\u00b8",
        "\u00c3\u00a9t\u00c3\u00a9 \u2019", "\u00c3\u00a9",
        "\u00c3 la mode", "fa\u00c3\u00a7ade \u00c3  la", "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd",
        "\u00ed\u00a0\u00bd\u00ed\u00b8\u008d emoji", "\u0420\u045f\u0421\u0402\u0420\u0451\u0420\u0406\u0420\u00b5\u0421\u201a",
        "\u00c9\u00b0", "\u00c3\u00a9 and \u201ccurly\u201d \u00e2\u20ac\u201d mixed", "\u221a\u00a9t\u221a\u00a9",
        "\u00e2\u2022\u0090 box \u2502", "\u00c2\u00a1Hola!", "Ã\xa0", "na\u00efve \u00e0 la caf\u00e9",
        "\u00c3\u0192\u00c2\u00a9", "se\u00c3\u00b1or \u00c3\u00b1", "\u00d0\u00b4\u00d0\u00b0",
        "\u03a0\u00bb\u03a0", "\x80\x81\x8d text", "\u00c3\x9f", "caf\u00e9 \u00c3\u00a9",
    ]
    # truncation: far over, exactly 75, 76 and 74 tokens of "a"
    c += ["a " * 100, ("a " * 75).strip(), ("a " * 76).strip(), ("a " * 74).strip()]
    c += ["1" * 80, "the quick brown fox jumps over the lazy dog " * 10]
    return c


def main():
    print(f"transformers {transformers.__version__}, ftfy {ftfy.__version__}", file=sys.stderr)
    vocab, merges = clip_vocab()
    oa = OpenAIClip(vocab, merges)
    differ = gaps = 0
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(tmp, {v: i for i, v in enumerate(vocab)}, merges, SD15_CONFIG)
        tok = CLIPTokenizer.from_pretrained(tmp)
        assert tok.pad_token_id == 49407
        with open(os.path.join(OUT, "cases.jsonl"), "w", encoding="utf-8") as f:
            for text in cases():
                ids = tok(text, truncation=True, max_length=77).input_ids
                full = tok(text).input_ids
                row = {"text": text, "ids": ids, "truncated": len(full) > 77}
                oa_ids = oa.encode(text)
                if oa_ids != ids:
                    row["openai_ids"] = oa_ids
                    differ += 1
                if oa.encode(text, fix_encoding=False) != oa_ids:
                    gaps += 1
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(cases())} cases, {differ} where OpenAI CLIP differs, "
          f"{gaps} where ftfy's fix_encoding changes the ids",
          file=sys.stderr)

    # The tiny folder: 512 byte tokens and the first 300 merges, ids in reverse order so a wrong
    # id source shows; "!" pads as in SD 2.x's tokenizer_config.json.
    tiny_merges = merges[:300]
    tiny_vocab = vocab[:512] + ["".join(m) for m in tiny_merges] + ["<|startoftext|>", "<|endoftext|>"]
    tiny_ids = {v: len(tiny_vocab) - 1 - i for i, v in enumerate(tiny_vocab)}
    tiny_dir = os.path.join(OUT, "tiny")
    config = dict(SD15_CONFIG, pad_token="!", name_or_path="diffq tiny test tokenizer")
    write_folder(tiny_dir, tiny_ids, tiny_merges, config)
    tok = CLIPTokenizer.from_pretrained(tiny_dir)
    assert tok.pad_token_id == tiny_ids["!"]
    with open(os.path.join(OUT, "tiny_cases.jsonl"), "w", encoding="utf-8") as f:
        for text in ["a photo of a cat", "the quick brown fox", "hello, world!", "don't stop",
                     "<|endoftext|>", "", "Ελληνικά 123",
                     # "!" is the pad token, so transformers matches it as a special token
                     "a!b", "a !! b", "wow!", "A<|ENDOFTEXT|>", "<|STARTOFTEXT|>x"]:
            ids = tok(text, truncation=True, max_length=77).input_ids
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=False) + "\n")

    def added(content, normalized, special):
        return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False,
                "single_word": False, "special": special}
    n = len(tiny_vocab)
    config = dict(SD15_CONFIG, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                  unk_token="<|endoftext|>", pad_token="<|endoftext|>",
                  name_or_path="diffq tiny test tokenizer with added tokens")
    config["added_tokens_decoder"] = {
        str(tiny_ids["<|startoftext|>"]): added("<|startoftext|>", False, True),
        str(tiny_ids["<|endoftext|>"]): added("<|endoftext|>", True, True),
        str(n): added("<cat-toy>", True, False),
        str(n + 1): added("Sks", False, False),
    }
    added_dir = os.path.join(OUT, "tiny_added")
    write_folder(added_dir, tiny_ids, tiny_merges, config)
    tok = CLIPTokenizer.from_pretrained(added_dir)
    assert tok.convert_tokens_to_ids("<cat-toy>") == n
    with open(os.path.join(OUT, "tiny_added_cases.jsonl"), "w", encoding="utf-8") as f:
        for text in ["a <cat-toy> b", "a <CAT-TOY>b", "Sks sks SKS", "x<|ENDOFTEXT|>",
                     "<|STARTOFTEXT|>", "<|startoftext|>", "a photo of a cat", "wow!"]:
            ids = tok(text, truncation=True, max_length=77).input_ids
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
