#!/usr/bin/env bash
# Builds the offline image-caption pairs for Wensu's two-tower (image-text) models from Debian
# packages, downloaded (not installed) with apt-get download and unpacked with dpkg -x:
#   fonts-noto-color-emoji  Noto Color Emoji: its colour bitmaps are PNG files, one per emoji
#   unicode-data            emoji-test.txt: every fully-qualified emoji and its CLDR short name
#   python3-fonttools       fontTools, to read the font (put on PYTHONPATH, not installed)
#   adwaita-icon-theme      full-colour icons named by what they show ("user-trash")
#   hicolor-icon-theme      the fallback theme (no PNG in Debian 12; searched in case)
#
#   scripts/data/make-mm-data.sh [OUT_DIR]
#     OUT_DIR  default ${WENSU_DATA:-~/.cache/wensu}/mm
#
# Writes to OUT_DIR:
#   images/emoji/CODEPOINTS.png   an emoji's bitmap from the font, e.g. 1f1ef-1f1f5.png (136 x 128)
#   images/icon/NAME.png          an icon (48 x 48 where the theme has it), e.g. user-trash.png
#   pairs.tsv                     "split<TAB>image<TAB>caption<TAB>source" then one pair a line:
#                                 train/valid/test, the image relative to OUT_DIR, the caption ("flag
#                                 japan", "user trash"), emoji/icon
#   README                        the counts per split and source, the package versions
# Captions: emoji names lower-cased without ':' and ','; icon names with '-' and '_' as spaces.
# Emoji with a skin-tone modifier are skipped (colour variants of one item), so are symbolic
# (monochrome) icons. Every caption and every image occurs once (later duplicates are dropped).
# A pair is in test when sha1(caption) mod 100 < 10, in valid when it is 10-14, else in train:
# the split is by item and depends only on the caption. Details: scripts/data/mm_pairs.py.
#
# Idempotent: finished data of the same format is left alone (delete OUT_DIR/.done to rebuild);
# the downloads are kept in OUT_DIR/src.
#
# Needs: apt-get (with package lists: `apt-get update` once), dpkg, /usr/bin/python3.
set -euo pipefail

die() { echo "make-mm-data: error: $*" >&2; exit 1; }
say() { echo "make-mm-data: $*" >&2; }
# shellcheck source=debs.sh
source "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

OUT=""
while (($#)); do
    case $1 in
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z $OUT ]] || die "only one OUT_DIR may be given (got '$OUT' and '$1')"; OUT=$1; shift ;;
    esac
done
OUT="${OUT:-${WENSU_DATA:-$HOME/.cache/wensu}/mm}"
PACKAGES=(fonts-noto-color-emoji unicode-data python3-fonttools adwaita-icon-theme hicolor-icon-theme)
PY=/usr/bin/python3
HELPER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mm_pairs.py"
PARAMS="packages=${PACKAGES[*]} test=sha1%100<10 valid=sha1%100<15 format=1"

[[ -f $HELPER ]] || die "$HELPER is missing; run this script from a Wensu checkout"
mkdir -p "$OUT" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"
SRC="$OUT/src"
mkdir -p "$SRC"

if [[ -f $OUT/.done && "$(cat "$OUT/.done")" == "$PARAMS" ]]; then
    say "image-caption pairs already built in $OUT ($PARAMS); delete $OUT/.done to rebuild"
    cat "$OUT/README" >&2
    exit 0
fi
start=$SECONDS
[[ -x $PY ]] || die "$PY not found; install it with: apt-get install python3"
# 1. The packages, downloaded and unpacked (not installed) into $SRC/root.
fetch_debs "$SRC" "${PACKAGES[@]}"
FONTTOOLS="$SRC/root/usr/lib/python3/dist-packages"
[[ -d $FONTTOOLS/fontTools ]] || die "$FONTTOOLS/fontTools is missing: the python3-fonttools layout changed"

# 2. Images, pairs.tsv and the counts.
rm -f "$OUT/.done"
counts="$(PYTHONPATH="$FONTTOOLS${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$HELPER" --root "$SRC/root" --out "$OUT" 2>&1)" \
    || { echo "$counts" >&2; die "mm_pairs.py failed (its message is above)"; }
{
    echo "Wensu offline image-caption pairs (scripts/data/make-mm-data.sh)"
    echo
    echo "$counts" | sed 's/^mm_pairs: //'
    echo
    echo "Command: scripts/data/make-mm-data.sh $OUT"
    echo "Packages:"
    for pkg in "${PACKAGES[@]}"; do
        deb="$(ls "$SRC/${pkg}"_*.deb | head -n1)"
        echo "  $pkg $(dpkg-deb -f "$deb" Version)"
    done
    echo "Licences: Noto Color Emoji: SIL OFL 1.1 and Apache-2.0; Adwaita icons: mostly CC-BY-SA-3.0"
    echo "  or LGPL-3. The packages' usr/share/doc/*/copyright files (in src/*.deb) have the details."
    echo "Built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
} >"$OUT/README"
cat "$OUT/README" >&2

rm -rf "$SRC/root"  # cheap to remake from the kept .deb files
echo "$PARAMS" >"$OUT/.done"
say "done in $((SECONDS - start)) s: $OUT/pairs.tsv (see $OUT/README)"
