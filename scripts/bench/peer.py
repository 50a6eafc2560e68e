"""What every PyTorch peer script in scripts/bench/ shares: the common arguments, the thread
setup (before any parallel work), and the timed loop that prints the one JSON line `wensu bench`
reads."""

import argparse
import json
import statistics
import time

import torch


def parser(description, repeats=3, warmup=1):
    """An ArgumentParser with --threads (required), --repeats and --warmup."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--warmup", type=int, default=warmup)
    return ap


def setup(ap, args):
    """Checks the common arguments, sets the thread counts and seeds torch."""
    if args.repeats < 1 or args.threads < 1:
        ap.error("--repeats and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)  # must come before any parallel work
    torch.manual_seed(0)


def time_and_report(step, args, **fields):
    """Runs step() warmup + repeats times and prints the JSON line: median/min/max ms of the
    timed runs, every time, torch's version, the thread count and `fields`."""
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    line = {"peer": "torch", "torch_version": str(torch.__version__), "threads": args.threads,
            "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "times_ms": times}
    line.update(fields)
    print(json.dumps(line, separators=(",", ":")))
    return line
