#!/usr/bin/env python3
"""Peer benchmark for `wensu bench pretrain`: one masked-LM training step of fair-esm's ESM-2
(esm.model.esm2.ESM2, randomly initialised with the given shape; nothing is downloaded) on
the CPU, float32: forward on a [batch, seq] token batch with 15% of the residues masked,
cross-entropy on the masked positions, backward, AdamW step. Prints ONE JSON line.

    python scripts/bench/torch_esm.py --threads 2 --layers 6 --dim 320 --heads 20 --batch 16 --seq 256
"""


import torch
import torch.nn.functional as F
import esm
from esm.model.esm2 import ESM2

import peer  # scripts/bench/peer.py: arguments, threads, the timed loop


def main():
    ap = peer.parser("fair-esm peer for `wensu bench pretrain`", repeats=5, warmup=2)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--dim", type=int, default=320)
    ap.add_argument("--heads", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    args = ap.parse_args()
    peer.setup(ap, args)
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = ESM2(num_layers=args.layers, embed_dim=args.dim, attention_heads=args.heads, alphabet=alphabet,
                 token_dropout=True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    # Random residues with <cls> ... <eos>, 15% of the residues replaced by <mask>.
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(4, 24, (args.batch, args.seq), generator=g)
    tokens[:, 0] = alphabet.cls_idx
    tokens[:, -1] = alphabet.eos_idx
    masked = (torch.rand(args.batch, args.seq, generator=g) < 0.15)
    masked[:, 0] = masked[:, -1] = False
    targets = torch.where(masked, tokens, torch.full_like(tokens, -100))
    inputs = torch.where(masked, torch.full_like(tokens, alphabet.mask_idx), tokens)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(inputs)["logits"]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        loss.backward()
        opt.step()

    peer.time_and_report(step, args, model="fair-esm ESM2", tokens_per_step=args.batch * args.seq)


if __name__ == "__main__":
    main()
