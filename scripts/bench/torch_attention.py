#!/usr/bin/env python3
"""Peer benchmark for `wensu bench attention`: PyTorch's dense scaled_dot_product_attention on
the CPU, float32, [B, H, L, D], forward or forward+backward. This is what a PyTorch user runs
for long sequences (its fused CPU kernel never materialises L x L scores). Prints ONE JSON line
on stdout; anything else goes to stderr.

    python scripts/bench/torch_attention.py --threads 2 --seq 16384 --mode fwdbwd --repeats 1
"""

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser(description="PyTorch peer for `wensu bench attention`")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--mode", choices=["fwd", "fwdbwd"], default="fwd")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    args = ap.parse_args()
    if args.repeats < 1 or args.threads < 1:
        ap.error("--repeats and --threads must be at least 1")

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
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

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({
        "peer": "torch", "torch_version": str(torch.__version__), "threads": args.threads,
        "mode": args.mode, "seq": args.seq, "median_ms": statistics.median(times), "min_ms": min(times),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "times_ms": times,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
