#!/usr/bin/env bash
# Trains the bundled image-text recipe with a transformer text tower and with the bag-of-words
# baseline, for several seeds each, evaluates every run on the held-out test pairs and prints the
# mean and standard deviation of recall@1/5/10 both ways (the seed table of docs/mm.md).
# Six runs of about 20 minutes each on one core.
#
#   scripts/mm/compare-text-towers.sh [RUN_DIR] [SEEDS...]     (defaults: wensu-mm-towers, 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:-wensu-mm-towers}
if (($#)); then shift; fi
SEEDS=("$@")
((${#SEEDS[@]})) || SEEDS=(0 1 2)
# shellcheck source=recipe.sh
source scripts/mm/recipe.sh
mkdir -p "$RUN"
for seed in "${SEEDS[@]}"; do
  for tower in transformer bow; do
    out="$RUN/$tower-seed$seed"
    if [[ ! -f $out/test.json ]]; then
      if [[ $tower == transformer ]]; then extra=(--text-pool mean); else extra=(--text-tower bow); fi
      $W mm train "${COMMON[@]}" "${extra[@]}" --seed "$seed" --out "$out"
      $W mm eval --model "$out/checkpoint.h5" --data "$D/pairs.tsv" --split test --json | tail -n 1 >"$out/test.json.tmp"
      mv "$out/test.json.tmp" "$out/test.json"
    fi
  done
done
/usr/bin/python3 - "$RUN" "${SEEDS[@]}" <<'PY'
import json, statistics, sys
run, seeds = sys.argv[1], sys.argv[2:]
keys = ["i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"]
print(f"test recall (%), mean +- sd over seeds {' '.join(seeds)}")
print(f"{'text tower':<12}" + "".join(f"{k:>14}" for k in keys))
for tower in ("transformer", "bow"):
    js = [json.load(open(f"{run}/{tower}-seed{s}/test.json")) for s in seeds]
    cells = []
    for k in keys:
        v = [100 * j[k] for j in js]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        cells.append(f"{statistics.mean(v):8.1f} +-{sd:4.1f}")
    print(f"{tower:<12}" + "".join(f"{c:>14}" for c in cells))
PY
