#!/usr/bin/env bash
# Trains the bundled text model data/models/wensu-text/model.h5 from scratch: the offline corpus
# (scripts/data/make-text-data.sh), a SentencePiece tokenizer of 8,000 pieces, and the 6-layer GPT
# of data/configs/gpt_small.json for 1,800 steps of 16 x 256 tokens (poetry counted three times,
# since writing poems is the model's show-piece). About 40 minutes on 2 cores.
#
#   scripts/text/train-bundled-model.sh [RUN_DIR]        (default: wensu-text-run)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:-wensu-text-run}
D=${WENSU_DATA:-$HOME/.cache/wensu}/text
W=build/wensu
[[ -x $W ]] || { echo "build wensu first: bash scripts/setup.sh" >&2; exit 1; }
scripts/data/make-text-data.sh "$D"
mkdir -p "$RUN"
$W text tokenizer-train --data "$D/train.txt" --out "$RUN/tok8k" --vocab-size 8000
$W text train --config data/configs/gpt_small.json --tokenizer "$RUN/tok8k.model" \
    --data "$D/train.txt,$D/poetry-train.txt,$D/poetry-train.txt" --val-data "$D/valid.txt" \
    --out "$RUN/run" --steps 1800 --batch 16 --seq-len 256 --lr 1e-3 --warmup 100 \
    --val-every 300 --val-windows 64 --ckpt-every 100 --threads 2
$W ckpt weights "$RUN/run/checkpoint.h5" "$RUN/model.h5" --dtype bf16
echo "model: $RUN/model.h5 (copy it to data/models/wensu-text/model.h5 to bundle it)"
