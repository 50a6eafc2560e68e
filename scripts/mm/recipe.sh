# The bundled image-text recipe, sourced by scripts/mm/train-bundled-model.sh and
# scripts/mm/compare-text-towers.sh (run from the repository root): checks for build/wensu,
# builds the offline pairs if needed (scripts/data/make-mm-data.sh), and sets
#   W       the wensu binary
#   D       the pairs' folder (${WENSU_DATA:-~/.cache/wensu}/mm)
#   COMMON  the training flags both text towers share; add --text-pool mean (transformer) or
#           --text-tower bow, and --out.
# The bundled weights came from these flags with --threads 1 (two runs shared the 2 cores);
# other thread counts change the sums' rounding, not the recipe.
D=${WENSU_DATA:-$HOME/.cache/wensu}/mm
W=build/wensu
[[ -x $W ]] || { echo "build wensu first: bash scripts/setup.sh" >&2; exit 1; }
scripts/data/make-mm-data.sh "$D"
COMMON=(--config data/configs/mm_small.json --text-init data/models/wensu-text/model.h5
        --data "$D/pairs.tsv" --val-split valid --steps 600 --batch 128 --lr 5e-4 --warmup 50
        --shift 3 --dropout 0.1 --val-every 100 --threads "${THREADS:-2}" --quiet)
