"""Tokenizer fixtures: ids from the pipeline's CLIPTokenizer for many prompts."""

import torch

from clip_vocab import OpenAIClipTokenizer, read_merges, build_vocab
from ref_common import save_fixture

MAX_LEN = 77
BOS, EOS, PAD = 49406, 49407, 49407

PROMPTS = [
    ("plain", "a photo of an astronaut riding a horse on mars"),
    ("empty", ""),
    ("spaces_only", "   "),
    ("punctuation", "Hello, world! What's this?! (masterpiece:1.2), [best] {quality}... #art @me $5 50% a+b=c; x/y \\ z | ~ ^ _ `q`"),
    ("numbers", "1 12 123 2024 3.14159 1,000,000 1st 2nd 3rd 4k 8K 1080p"),
    ("contractions", "it's don't we're they've I'm you'll he'd IT'S DON'T o'clock rock'n'roll"),
    ("mixed_case", "A PhOtO oF a CAT in NewYork City, HDR, UltraHD, iPhone"),
    ("accents", "café crème brûlée, naïve façade, Ångström, São Paulo, Zürich, résumé"),
    ("decomposed_accents", "cafe\u0301 cre\u0300me"),
    ("cjk", "東京の夜景 中国 서울 风景画"),
    ("emoji", "a cat 🐱 with a hat 🎩 and 👍🏽 flags 🇫🇷 👨‍👩‍👧"),
    ("html_entities", "salt &amp; pepper &lt;b&gt; &quot;quoted&quot; it&#39;s &amp;amp; &nbsp;x"),
    ("curly_quotes", "\u201cquoted\u201d and \u2018single\u2019 it\u2019s \u2014 dash \u2013 \u2026"),
    ("whitespace", "  a  cat\n\non a\tmat \r\n  end  "),
    ("mojibake", "cafÃ© Ã  la mode"),
    ("special_token_text", "a <|endoftext|> b <|startoftext|> c"),
    ("long_word", "supercalifragilisticexpialidocious antidisestablishmentarianism"),
    ("symbols_unicode", "© ® ™ ° ± × ÷ € £ ¥ § ¶ • ½ ² ³ µ ß ﬁ"),
    ("exact_75", " ".join(["cat"] * 75)),
    ("exact_76", " ".join(["cat"] * 76)),
    ("over_long", ", ".join(["a beautiful detailed painting of a castle on a hill at sunset"] * 8)),
]


def generate(tokenizer):
    openai = OpenAIClipTokenizer(build_vocab(read_merges()), read_merges())
    cases = []
    padded = []
    for name, prompt in PROMPTS:
        full = tokenizer(prompt).input_ids
        trunc = tokenizer(prompt, truncation=True, max_length=MAX_LEN).input_ids
        pipe = tokenizer(prompt, padding="max_length", max_length=MAX_LEN, truncation=True).input_ids
        assert full[0] == BOS and full[-1] == EOS
        assert pipe == trunc + [PAD] * (MAX_LEN - len(trunc))
        if len(full) > MAX_LEN:
            assert trunc == full[:MAX_LEN - 1] + [EOS]
        oa = [BOS] + openai.encode(prompt) + [EOS]
        oa_trunc = oa if len(oa) <= MAX_LEN else oa[:MAX_LEN - 1] + [EOS]
        cases.append({
            "name": name, "prompt": prompt,
            "ids": trunc, "untruncated_len": len(full), "ids_untruncated": full,
            "tokens": tokenizer.convert_ids_to_tokens(trunc),
            "ids_openai_clip": oa_trunc,
            "openai_clip_differs": oa_trunc != trunc,
        })
        padded.append(pipe)
    save_fixture("tokenizer_cases", {"input_ids": torch.tensor(padded, dtype=torch.int64)}, {
        "what": "CLIPTokenizer ids as StableDiffusionPipeline.encode_prompt gets them",
        "tokenizer": "tiny-sd/tokenizer (transformers CLIPTokenizer, tokenizers backend)",
        "call": "tokenizer(prompt, padding='max_length', max_length=77, truncation=True)",
        "bos": BOS, "eos": EOS, "pad": PAD, "max_length": MAX_LEN,
        "padding_rule": "ids = BOS + tokens[:75] + EOS, then right-padded to 77 with 49407",
        "input_ids_rows": "input_ids[i] is cases[i] padded to 77",
        "cases": cases,
    })
    return cases
