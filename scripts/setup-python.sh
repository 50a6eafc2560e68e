#!/usr/bin/env bash
# Creates (idempotently) the Python environment for the reference scripts in scripts/
# (fixture makers, peer benchmarks): torch, numpy and h5py, used on the CPU only.
#   scripts/setup-python.sh            -> $REPO/.venv
#   WENSU_VENV=/path scripts/setup-python.sh
# Debian's /usr/bin/python3 is used on purpose: its venv module is a separate package
# (python3-venv), and pyenv/conda shims on PATH would tie the venv to a user's setup.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WENSU_VENV:-$REPO/.venv}"
PY=/usr/bin/python3

die() { echo "setup-python: $*" >&2; exit 1; }

[[ -x $PY ]] || die "$PY not found; install it with: apt-get install python3 python3-venv"

# ensurepip is what python3-venv adds; without it `python3 -m venv` leaves a venv with no pip.
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -q && apt-get install -y -q python3-venv "python${ver}-venv" \
            || die "apt-get install python3-venv failed"
    else
        die "python3-venv is missing; run: sudo apt-get install python3-venv python${ver}-venv"
    fi
fi

if [[ ! -x $VENV/bin/python ]]; then
    "$PY" -m venv "$VENV" || die "could not create a virtual environment at $VENV"
fi

"$VENV/bin/python" -m pip install -q --upgrade pip || die "pip upgrade failed in $VENV"
"$VENV/bin/python" -m pip install -q torch numpy h5py fair-esm safetensors transformers ||
  die "pip install torch numpy h5py fair-esm safetensors transformers failed in $VENV"
"$VENV/bin/python" -c 'import torch, numpy, h5py' || die "torch/numpy/h5py do not import in $VENV"

echo "Python environment ready: $VENV"
echo "  torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
echo "  use:  $VENV/bin/python scripts/make_fixtures.py"
