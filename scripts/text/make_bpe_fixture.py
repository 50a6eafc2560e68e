#!/usr/bin/env python3
"""Golden fixture for Wensu's GPT-2 byte-level BPE (src/wensu/text/bpe.h), made by Hugging Face.

Regenerate (from the repository root):
    bash scripts/data/make-text-data.sh                      # the corpus, once (Debian packages)
    /work/venv/bin/pip install tokenizers transformers regex  # once, if missing
    /work/venv/bin/python scripts/text/make_bpe_fixture.py [--corpus DIR]

--corpus defaults to ${WENSU_DATA:-~/.cache/wensu}/text (what make-text-data.sh writes). Writes
tests/data/text/:
  bpe/vocab.json, bpe/merges.txt  a byte-level BPE trained by tokenizers' ByteLevelBPETokenizer on
                                  the corpus's train.txt (vocab_size 3000, min_frequency 2,
                                  special token <|endoftext|> = id 0)
  bpe_sample.txt                  one sample per line: every non-blank line of valid.txt (mixed
                                  English and Chinese, never seen in training), every k-th line
                                  of train.txt up to 2,400 lines in all, then hand-written
                                  edge cases (emoji, combining accents, tabs, runs of spaces,
                                  trailing spaces, digits, contractions, <|endoftext|> inside a
                                  line, Unicode spaces, an empty line, a long unbroken Han run)
  bpe_sample_ids.txt              line i: the ids transformers.GPT2TokenizerFast gives sample
                                  line i, space-separated (empty for the empty line)
  bpe_multiline.json              [{"text", "ids"}]: a few whole multi-line documents of valid.txt
                                  and a text of blank lines and indentation (line breaks cannot be
                                  tested through the one-line-per-sample file)
Every reference is checked against a second implementation before it is written: the classic
GPT-2 rank-merge loop, written here in plain Python over the `regex` module (transformers 5 no
longer ships a separate slow GPT2Tokenizer). GPT2TokenizerFast.decode must also give each text
back exactly. The files are deterministic: the same corpus and tokenizers version give the same
bytes.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import regex
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2TokenizerFast

ROOT = Path(__file__).resolve().parent.parent.parent
VOCAB_SIZE = 3000
TARGET_LINES = 2400
EOT = "<|endoftext|>"

EDGE_CASES = [
    "",
    "Emoji: 😀🎉 👍🏽 a family 👨‍👩‍👧‍👦 and flags 🇨🇳🇬🇧!",
    "Combining accents: Cafe\u0301 vs Café, a\u0308 and n\u0303, naïve résumé",
    "tab\tseparated\t\tcolumns\t",
    "two  spaces,   three,    four     and five",
    "trailing spaces   ",
    "   leading spaces",
    "Digits: 3.14159, 1,000,000, 2024-06-01, 007 and ０１２３ and 一二三",
    "It's John's; they're, we've, I'm, you'll, he'd. IT'S Don’t (curly)",
    "end of one document<|endoftext|>start of the next",
    EOT,
    f" {EOT} spaced {EOT}{EOT}twice",
    "<|endoftext| is not complete, nor is <|endoftext",
    "GPT模型写诗：床前明月光，疑是地上霜。Hello, 世界!",
    "（９４６－９９９）《春居杂兴》二首・其一",
    "no-break\u00a0space, ideographic\u3000space, thin\u2009space",
    "Привет, мир! Ελληνικά. हिन्दी. 日本語のテキスト. 한국어.",
    "$%^&*()_+-=[]{};:'\",.<>/?\\|`~ ... --- !!!",
    " " * 40 + "after forty spaces",
    "床前明月光疑是地上霜举头望明月低头思故乡" * 6,
]


def corpus_dir(arg):
    if arg:
        return Path(arg)
    return Path(os.environ.get("WENSU_DATA", Path.home() / ".cache/wensu")) / "text"


# --- the second implementation: GPT-2's classic algorithm ---------------------------------------
PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_stand_ins():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


class ClassicBpe:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.rank = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
        self.stand_in = byte_stand_ins()
        self.specials = sorted((t for t in vocab if t.startswith("<|") and t.endswith("|>")), key=len, reverse=True)

    def word(self, symbols):
        while len(symbols) > 1:
            pairs = {(a, b) for a, b in zip(symbols, symbols[1:])}
            best = min(pairs, key=lambda p: self.rank.get(p, float("inf")))
            if best not in self.rank:
                break
            merged, i = [], 0
            while i < len(symbols):  # every occurrence, left to right
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return [self.vocab[s] for s in symbols]

    def encode(self, text):
        ids = []
        if self.specials:
            parts = regex.split("(" + "|".join(regex.escape(s) for s in self.specials) + ")", text)
        else:
            parts = [text]
        for part in parts:
            if part in self.vocab and part in self.specials:
                ids.append(self.vocab[part])
                continue
            for piece in PATTERN.findall(part):
                ids += self.word([self.stand_in[b] for b in piece.encode("utf-8")])
        return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="make-text-data.sh's output directory")
    ap.add_argument("-o", "--output", default=str(ROOT / "tests/data/text"))
    args = ap.parse_args()

    corpus = corpus_dir(args.corpus)
    train, valid = corpus / "train.txt", corpus / "valid.txt"
    if not train.is_file() or not valid.is_file():
        sys.exit(f"make_bpe_fixture: {train} or {valid} is missing; run scripts/data/make-text-data.sh first")
    out = Path(args.output)
    (out / "bpe").mkdir(parents=True, exist_ok=True)

    trainer = ByteLevelBPETokenizer(add_prefix_space=False)
    trainer.train([str(train)], vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=[EOT], show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        trainer.save_model(tmp)
        for name in ("vocab.json", "merges.txt"):
            data = (Path(tmp) / name).read_bytes()
            (out / "bpe" / name).write_bytes(data)

    hf = GPT2TokenizerFast.from_pretrained(str(out / "bpe"))
    vocab = json.loads((out / "bpe/vocab.json").read_text(encoding="utf-8"))
    merges = [l for l in (out / "bpe/merges.txt").read_text(encoding="utf-8").split("\n")[1:] if l]
    classic = ClassicBpe(vocab, merges)
    assert vocab[EOT] == hf.eos_token_id == 0, "expected <|endoftext|> to be id 0"

    def reference(text):
        ids = hf.encode(text, add_special_tokens=False)
        other = classic.encode(text)
        if ids != other:
            sys.exit(f"make_bpe_fixture: GPT2TokenizerFast and the classic algorithm disagree on {text!r}:\n{ids}\n{other}")
        back = hf.decode(ids, clean_up_tokenization_spaces=False)
        if back != text:
            sys.exit(f"make_bpe_fixture: GPT2TokenizerFast.decode does not give back {text!r}: {back!r}")
        return ids

    lines = [l for l in valid.read_text(encoding="utf-8").split("\n") if l.strip()]
    # Topped up with every k-th line of train.txt, so that about 2,400 lines are checked.
    seen = [l for l in train.read_text(encoding="utf-8").split("\n") if l.strip()]
    extra = max(0, TARGET_LINES - len(lines) - len(EDGE_CASES))
    lines += seen[:: max(1, len(seen) // extra)][:extra] if extra else []
    samples = lines + EDGE_CASES
    for s in samples:
        assert "\n" not in s and "\r" not in s, s
    ids = [reference(s) for s in samples]
    (out / "bpe_sample.txt").write_text("\n".join(samples) + "\n", encoding="utf-8", newline="\n")
    (out / "bpe_sample_ids.txt").write_text("\n".join(" ".join(map(str, i)) for i in ids) + "\n", encoding="utf-8")

    docs = [d for d in valid.read_text(encoding="utf-8").split("\n\n") if d.count("\n") >= 3]
    chosen = docs[:: max(1, len(docs) // 8)][:8]
    chosen.append("\n\nafter two line breaks\n    indented\n\t\ttabbed\n \n  \ntrailing line break\n")
    chosen.append(f"one\n{EOT}\ntwo\n\n{EOT}")
    multiline = [{"text": d, "ids": reference(d)} for d in chosen]
    (out / "bpe_multiline.json").write_text(json.dumps(multiline, ensure_ascii=False) + "\n", encoding="utf-8")

    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"make_bpe_fixture: {len(samples)} sample lines ({sum(map(len, ids))} tokens), {len(multiline)} multi-line "
          f"texts, vocab {len(vocab)}, {len(merges)} merges; {out} holds {total:,} bytes")


if __name__ == "__main__":
    main()
