#!/usr/bin/env python3
"""Peer benchmark for `wensu bench layer`: one pre-LN transformer layer in PyTorch, float32, CPU.

    h = x + attn(LN1(x));   y = h + ffn(LN2(h))

the same layer as scripts/make_fixtures.py, written the way a PyTorch user would make it fast:
nn.Linear, F.layer_norm, F.scaled_dot_product_attention (PyTorch's fused CPU attention), exact
GELU, no dropout, no mask. Prints ONE JSON line on stdout; anything else goes to stderr.

    python scripts/bench/torch_layer.py --threads 2 --mode fwdbwd --repeats 3
"""


import torch
import torch.nn.functional as F
from torch import nn

import peer  # scripts/bench/peer.py: arguments, threads, the timed loop


class PreLNLayer(nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, f), nn.Linear(f, d)

    def forward(self, x):
        B, L, D = x.shape
        z = F.layer_norm(x, (D,), self.ln1.weight, self.ln1.bias, 1e-5)  # [B, L, D]

        def heads(t):  # [B, L, D] -> [B, H, L, Dh]
            return t.view(B, L, self.h, D // self.h).transpose(1, 2)

        q, k, v = heads(self.q_proj(z)), heads(self.k_proj(z)), heads(self.v_proj(z))
        o = F.scaled_dot_product_attention(q, k, v)  # [B, H, L, Dh]
        h = x + self.out_proj(o.transpose(1, 2).reshape(B, L, D))  # [B, L, D]
        z = F.layer_norm(h, (D,), self.ln2.weight, self.ln2.bias, 1e-5)  # [B, L, D]
        return h + self.fc2(F.gelu(self.fc1(z)))  # [B, L, D]


def main():
    ap = peer.parser("PyTorch peer for `wensu bench layer`", repeats=10, warmup=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--d-ff", type=int, default=2048)
    ap.add_argument("--mode", choices=["fwd", "fwdbwd"], default="fwd")
    args = ap.parse_args()
    if args.d_model % args.heads:
        ap.error("--d-model must be a multiple of --heads")
    peer.setup(ap, args)

    layer = PreLNLayer(args.d_model, args.heads, args.d_ff)
    x = torch.randn(args.batch, args.seq, args.d_model)  # [B, L, D]
    backward = args.mode == "fwdbwd"

    def step():
        if backward:
            layer.zero_grad(set_to_none=True)
            layer(x).sum().backward()
        else:
            with torch.inference_mode():
                layer(x)

    # `wensu bench layer` reads stdout as exactly one JSON line (Python warnings go to stderr).
    peer.time_and_report(step, args, mode=args.mode)


if __name__ == "__main__":
    main()
