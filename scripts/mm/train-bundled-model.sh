#!/usr/bin/env bash
# Trains the bundled image-text model data/models/wensu-mm/model.h5 and its bag-of-words
# baseline on the offline pairs (scripts/data/make-mm-data.sh: colour emoji and Adwaita icons
# with their names), then evaluates both on the held-out test pairs. The text tower starts from
# the bundled text model (data/models/wensu-text/model.h5: its tokenizer and weights; the
# baseline takes its token embeddings). Recipe chosen on the valid split; test is read once, here.
#
#   scripts/mm/train-bundled-model.sh [RUN_DIR]        (default: wensu-mm-run)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:-wensu-mm-run}
D=${WENSU_DATA:-$HOME/.cache/wensu}/mm
W=build/wensu
[[ -x $W ]] || { echo "build wensu first: bash scripts/setup.sh" >&2; exit 1; }
scripts/data/make-mm-data.sh "$D"
mkdir -p "$RUN"
# The bundled weights came from these flags with --threads 1 (two runs shared the 2 cores);
# other thread counts change the sums' rounding, not the recipe.
COMMON=(--config data/configs/mm_small.json --text-init data/models/wensu-text/model.h5
        --data "$D/pairs.tsv" --val-split valid --steps 600 --batch 128 --lr 5e-4 --warmup 50
        --shift 3 --dropout 0.1 --val-every 100 --threads "${THREADS:-2}" --quiet)
$W mm train "${COMMON[@]}" --text-pool mean --out "$RUN/transformer"
$W mm train "${COMMON[@]}" --text-tower bow --out "$RUN/bow"
for t in transformer bow; do
  $W plot "$RUN/$t/metrics.jsonl" -o "$RUN/$t/curves.png"
  $W mm eval --model "$RUN/$t/checkpoint.h5" --data "$D/pairs.tsv" --split test | tee "$RUN/$t/test.txt"
done
$W ckpt weights "$RUN/transformer/checkpoint.h5" "$RUN/model.h5" --dtype bf16
echo "model: $RUN/model.h5 (copy it to data/models/wensu-mm/model.h5 to bundle it)"
