#!/usr/bin/env python3
"""Golden fixture for Wensu's ESM-2 tokenizer (src/wensu/io/esm_alphabet.h), made by fair-esm.

Regenerate (from the repository root, in a Python environment with torch and fair-esm):
    .venv/bin/pip install fair-esm          # once; scripts/setup-python.sh provides torch
    .venv/bin/python scripts/make_esm_alphabet_fixture.py   # writes tests/data/esm_alphabet.json

ESM-2 uses the "ESM-1b" alphabet (esm/pretrained.py, esm/model/esm2.py). The fixture holds:
  fair_esm_version   the fair-esm version that wrote it
  architecture       "ESM-1b"
  all_toks           every token text, index = token id
  cls, pad, eos, unk, mask, prepend_bos, append_eos
  sequences          a few protein sequences (all residue letters, '.' and '-', lengths 1..40)
  batch_tokens       fair-esm's BatchConverter output for them: [N, max_len + 2], right-padded
"""

import argparse
import json
from pathlib import Path

import esm
import torch  # noqa: F401  (BatchConverter builds torch tensors)

SEQUENCES = [
    "M",
    "MKTAYIAKQRQISFVKSHFSRQ",
    "LAGVSERTIDPKQNFYMHWCXBUZO",
    "ACDEFGHIKLMNPQRSTVWY",
    "MX-.GG--KL",
    "MSENQQINQKQQYNLNKLQKRLRRNVGEAIADFNMIEEGD",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default=str(Path(__file__).resolve().parent.parent / "tests/data/esm_alphabet.json"))
    args = ap.parse_args()

    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    _, _, tokens = alphabet.get_batch_converter()([(f"s{i}", s) for i, s in enumerate(SEQUENCES)])
    fixture = {
        "fair_esm_version": esm.__version__,
        "architecture": "ESM-1b",
        "all_toks": alphabet.all_toks,
        "cls": alphabet.cls_idx,
        "pad": alphabet.padding_idx,
        "eos": alphabet.eos_idx,
        "unk": alphabet.unk_idx,
        "mask": alphabet.mask_idx,
        "prepend_bos": alphabet.prepend_bos,
        "append_eos": alphabet.append_eos,
        "sequences": SEQUENCES,
        "batch_tokens": tokens.tolist(),
    }
    text = json.dumps(fixture, indent=1) + "\n"
    Path(args.output).write_text(text)
    print(f"wrote {args.output} ({len(text)} bytes, {len(alphabet.all_toks)} tokens, fair-esm {esm.__version__})")


if __name__ == "__main__":
    main()
