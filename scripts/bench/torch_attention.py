#!/usr/bin/env python3
"""Peer benchmark for `wensu bench attention`: PyTorch's dense scaled_dot_product_attention on
the CPU, float32, [B, H, L, D], forward or forward+backward. This is what a PyTorch user runs
for long sequences (its fused CPU kernel never materialises L x L scores). Prints ONE JSON line
on stdout; anything else goes to stderr.

    python scripts/bench/torch_attention.py --threads 2 --seq 16384 --mode fwdbwd --repeats 1
"""

import resource

import torch
import torch.nn.functional as F

import peer  # scripts/bench/peer.py: arguments, threads, the timed loop


def main():
    ap = peer.parser("PyTorch peer for `wensu bench attention`")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--mode", choices=["fwd", "fwdbwd"], default="fwd")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    args = ap.parse_args()
    peer.setup(ap, args)
    shape = (args.batch, args.heads, args.seq, args.head_dim)  # [B, H, L, D]
    backward = args.mode == "fwdbwd"
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    make = lambda: torch.randn(shape, device=args.device, dtype=dtype)
    q, k, v = (make().requires_grad_(backward) for _ in range(3))
    g = make()
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    def step():
        if backward:
            for t in (q, k, v):
                t.grad = None
            F.scaled_dot_product_attention(q, k, v, is_causal=args.causal).backward(g)
        else:
            with torch.inference_mode():
                F.scaled_dot_product_attention(q, k, v, is_causal=args.causal)
        sync()

    peer.time_and_report(step, args, mode=args.mode, seq=args.seq,
                         max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


if __name__ == "__main__":
    main()
