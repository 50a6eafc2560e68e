#!/usr/bin/env python3
"""Unigram baseline perplexity for masked-LM evaluation: predict every residue with the residue
frequencies of the training shards (no context). A protein language model must beat this to
have learnt anything beyond composition. Standard library only.

    python3 scripts/data/unigram_ppl.py --train "$HOME/.cache/wensu/corpus/train-00[0-1].fasta.gz" \\
        --valid "$HOME/.cache/wensu/corpus/valid.fasta.gz"
"""

import argparse
import collections
import glob
import gzip
import json
import math


def residues(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rt") as f:
        for line in f:
            if not line.startswith(">"):
                yield from line.strip().upper()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="glob of training FASTA files")
    ap.add_argument("--valid", required=True, help="held-out FASTA file")
    args = ap.parse_args()
    counts = collections.Counter()
    files = sorted(glob.glob(args.train))
    if not files:
        ap.error(f"--train {args.train} matches no file")
    for path in files:
        counts.update(residues(path))
    total = sum(counts.values())
    nll, n = 0.0, 0
    for r in residues(args.valid):
        nll -= math.log((counts[r] + 1) / (total + len(counts) + 1))  # add-one for unseen letters
        n += 1
    print(json.dumps({"train_residues": total, "valid_residues": n, "unigram_loss": nll / n,
                      "unigram_ppl": math.exp(nll / n)}))


if __name__ == "__main__":
    main()
