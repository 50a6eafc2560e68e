#!/usr/bin/env bash
# `wensu score` against the TMscore program on ~100 same-sequence pairs (natives from Debian's
# tm-align and mustang-testdata packages, decoys made from them: noise, hinge moves, shifted
# registers, mirror, reversed chain, ideal helix, random walk, NMR models), and (re)writes the
# fixtures of tests/unit/test_structure_score.cpp in tests/data/score/.
#
#   scripts/fold/check-score.sh build/wensu [--keep DIR] [--no-fixtures] [--tolerance 0.01]
#
# Prints a table and max |dTM|, max |dGDT-TS| and the count within the tolerance; exits 1 when
# a TM-score differs by more than the tolerance. Needs (as root: apt-get install tm-align
# mustang-testdata) and python3; nothing else.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit $(( $# < 1 ? 2 : 0 ))
fi
wensu="$1"
shift
[[ -x "$wensu" ]] || { echo "check-score: '$wensu' is not an executable (build it: ninja -C build wensu)" >&2; exit 2; }

fixtures=(--fixtures "$root/tests/data/score")
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-fixtures) fixtures=(); shift ;;
    --keep|--tolerance) args+=("$1" "$2"); shift 2 ;;
    *) echo "check-score: unknown option '$1'" >&2; exit 2 ;;
  esac
done

command -v TMscore >/dev/null || { echo "check-score: TMscore not found (apt-get install tm-align)" >&2; exit 2; }
for f in /usr/share/doc/tm-align/examples/5eep.pdb.gz /usr/share/doc/tm-align/examples/1ni7.pdb.gz \
         /usr/share/doc/mustang-testdata/examples/pdbs/1zaa1.pdb; do
  [[ -f "$f" ]] || { echo "check-score: $f missing (apt-get install tm-align mustang-testdata)" >&2; exit 2; }
done
if ! "$wensu" score --help >/dev/null 2>&1; then
  echo "check-score: '$wensu score --help' failed: is the score command registered in this binary?" >&2
  exit 2
fi

exec python3 "$here/check_score.py" "$wensu" "${fixtures[@]}" "${args[@]}"
