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
# shellcheck source=recipe.sh
source scripts/mm/recipe.sh
mkdir -p "$RUN"
$W mm train "${COMMON[@]}" --text-pool mean --out "$RUN/transformer"
$W mm train "${COMMON[@]}" --text-tower bow --out "$RUN/bow"
for t in transformer bow; do
  $W plot "$RUN/$t/metrics.jsonl" -o "$RUN/$t/curves.png"
  $W mm eval --model "$RUN/$t/checkpoint.h5" --data "$D/pairs.tsv" --split test | tee "$RUN/$t/test.txt"
done
$W ckpt weights "$RUN/transformer/checkpoint.h5" "$RUN/model.h5" --dtype bf16
echo "model: $RUN/model.h5 (copy it to data/models/wensu-mm/model.h5 to bundle it)"
