#!/usr/bin/env python3
"""Peer benchmark for `wensu bench moe`: the usual PyTorch mixture-of-experts layer, float32 CPU.

A linear router, top-k of its logits and a softmax over the k chosen (FastMoE's naive gate),
then a Python loop over experts: each expert finds its tokens with a comparison + nonzero,
gathers them with index selection, runs its FFN (Linear, GELU, Linear) and adds its weighted
output back with index_add_. This is the layer as most PyTorch code writes it (e.g. the
reference MoE blocks in Hugging Face transformers). Prints ONE JSON line on stdout.

    python scripts/bench/torch_moe.py --threads 2 --experts 16 --top-k 2 --d-model 512 \\
        --hidden 2048 --tokens 8192 --mode fwdbwd
"""


import torch
import torch.nn as nn
import torch.nn.functional as F

import peer  # scripts/bench/peer.py: arguments, threads, the timed loop


class LoopMoE(nn.Module):
    def __init__(self, d_model, hidden, experts, top_k):
        super().__init__()
        self.top_k = top_k
        self.router = nn.Linear(d_model, experts, bias=False)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model)) for _ in range(experts))

    def forward(self, x):  # x [T, D]
        vals, idx = torch.topk(self.router(x), self.top_k, dim=-1)  # [T, K]
        w = F.softmax(vals, dim=-1)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            tok, choice = (idx == e).nonzero(as_tuple=True)
            if tok.numel() == 0:
                continue
            y = expert(x.index_select(0, tok)) * w[tok, choice].unsqueeze(1)
            out = out.index_add(0, tok, y)
        return out


def main():
    ap = peer.parser("PyTorch peer for `wensu bench moe`")
    ap.add_argument("--experts", type=int, default=16)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--mode", choices=["fwd", "fwdbwd"], default="fwd")
    args = ap.parse_args()
    peer.setup(ap, args)
    layer = LoopMoE(args.d_model, args.hidden, args.experts, args.top_k)
    backward = args.mode == "fwdbwd"
    x = torch.randn(args.tokens, args.d_model, requires_grad=backward)
    g = torch.randn(args.tokens, args.d_model)

    def step():
        if backward:
            layer.zero_grad(set_to_none=True)
            x.grad = None
            layer(x).backward(g)
        else:
            with torch.inference_mode():
                layer(x)

    peer.time_and_report(step, args, mode=args.mode)


if __name__ == "__main__":
    main()
