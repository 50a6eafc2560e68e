"""The command line of the PyTorch fixture scripts (make_fixtures.py, mm/make_clip_loss_fixture.py).

    write_fixture(doc, default_out, generator, cases, make_case)

parses --out (default `default_out`), turns on PyTorch's deterministic algorithms, and writes one
HDF5 file: the attributes `generator` (the script, relative to the repository) and
`torch_version`, then make_case(f, *case) for each case. Needs torch and h5py (the venv of
scripts/setup-python.sh).
"""

import argparse
from pathlib import Path

import h5py
import torch


def write_fixture(doc, default_out, generator, cases, make_case):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(args.out, "w") as f:
        f.attrs["generator"] = generator
        f.attrs["torch_version"] = str(torch.__version__)
        for case in cases:
            make_case(f, *case)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
