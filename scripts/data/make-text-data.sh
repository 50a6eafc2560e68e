#!/usr/bin/env bash
# Builds the offline text corpus for Wensu's text models from three Debian packages, downloaded
# (not installed) with apt-get download and unpacked with dpkg -x:
#   fortunes-zh          Chinese: tang300 (Tang poems), song100 (Song poems) and chinese (a
#                        mixed file: classical poems and ci, the Analects, proverbs, the Chinese
#                        Debian Reference, ...)
#   fortunes             English fortune cookies (every file but ascii-art, which is pictures)
#   debian-reference-en  the English Debian Reference, from its plain-text edition
#                        (debian-reference.en.txt.gz), one document per section, tables
#                        left out, no-break spaces made plain
#
#   scripts/data/make-text-data.sh [OUT_DIR]
#     OUT_DIR  default ${WENSU_DATA:-~/.cache/wensu}/text
#
# Writes to OUT_DIR:
#   train.txt, valid.txt                 every document (UTF-8, documents separated by one blank
#                                        line, no blank line inside a document)
#   poetry-train.txt, poetry-valid.txt   only the Chinese poetry documents (a subset of the above),
#                                        each normalised to  《title》 / 作者：author / the lines
#   README                               the summary (documents, bytes, characters per source)
# A document goes to valid when sha1(document) mod 1000 < 20 (about 2%), so the split depends only
# on the text, never on the order or on the other documents. Exact duplicates are kept once.
#
# Cleaning: fortune files are split at their '%' lines; ANSI colour codes (fortunes-zh), terminal
# overstrikes ("_\bx", "x\bx") and other control characters except tab are removed; trailing
# spaces are removed and blank lines inside a document are dropped. Poems of the chinese file are
# the documents signed "-- AUTHOR《TITLE》" whose text is classical (only Han characters and
# Chinese punctuation, no 的, no private-use or missing-glyph characters); many are excerpts.
#
# Idempotent: a finished corpus of the same format is left alone (delete OUT_DIR/.done to
# rebuild); the downloads are kept in OUT_DIR/src.
#
# Needs: apt-get (with package lists: `apt-get update` once), dpkg, /usr/bin/python3 (standard
# library only).
set -euo pipefail

die() { echo "make-text-data: error: $*" >&2; exit 1; }
say() { echo "make-text-data: $*" >&2; }
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
OUT="${OUT:-${WENSU_DATA:-$HOME/.cache/wensu}/text}"
PACKAGES=(fortunes-zh fortunes debian-reference-en)
PY=/usr/bin/python3
PARAMS="packages=${PACKAGES[*]} valid=sha1%1000<20 format=1"

mkdir -p "$OUT" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"
SRC="$OUT/src"
mkdir -p "$SRC"

if [[ -f $OUT/.done && "$(cat "$OUT/.done")" == "$PARAMS" ]]; then
    say "text corpus already built in $OUT ($PARAMS); delete $OUT/.done to rebuild"
    cat "$OUT/README" >&2
    exit 0
fi
start=$SECONDS
[[ -x $PY ]] || die "$PY not found; install it with: apt-get install python3"
# 1. The packages, downloaded and unpacked (not installed) into $SRC/root.
fetch_debs "$SRC" "${PACKAGES[@]}"
FORTUNES="$SRC/root/usr/share/games/fortunes"
REFERENCE="$SRC/root/usr/share/debian-reference/debian-reference.en.txt.gz"
for f in "$FORTUNES/tang300" "$FORTUNES/song100" "$FORTUNES/chinese" "$FORTUNES/computers" "$REFERENCE"; do
    [[ -f $f ]] || die "$f is missing: the package layout changed; update this script's paths"
done

# 2. Documents, split, outputs and the summary.
rm -f "$OUT/.done"
"$PY" - "$OUT" "$FORTUNES" "$REFERENCE" <<'PY'
import gzip, hashlib, os, re, sys, textwrap

out, fortunes_dir, reference = sys.argv[1:4]

def fail(msg):
    sys.exit(f"make-text-data: error: {msg}")

def read_text(path):
    raw = gzip.open(path, "rb").read() if path.endswith(".gz") else open(path, "rb").read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"{path} is not UTF-8 (byte offset {e.start}); the package changed its encoding")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
OVERSTRIKE = re.compile(r"[^\n]\x08")      # "_\bx" underlines x, "x\bx" makes it bold: keep x
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

def clean(text):
    text = OVERSTRIKE.sub("", ANSI.sub("", text.replace("\r\n", "\n")))
    return CONTROL.sub("", text)

def tidy(lines):
    """One document: trailing spaces off, blank lines dropped (they separate documents)."""
    return "\n".join(l.rstrip() for l in lines if l.strip())

def fortune_docs(path):
    text = clean(read_text(path))
    return [d for d in (tidy(c.split("\n")) for c in re.split(r"^%[ \t]*$", text, flags=re.M)) if d]

# --- Chinese poetry, normalised to: 《title》 / 作者：author / lines ----------------------------
def tang300():
    docs = []
    for d in fortune_docs(os.path.join(fortunes_dir, "tang300")):
        lines = d.split("\n")
        if len(lines) < 3 or not lines[0].startswith("《") or not lines[1].startswith("作者："):
            fail(f"tang300: unexpected poem header {lines[:2]!r}; expected 《title》 and 作者：name")
        docs.append(tidy([lines[0].strip(), lines[1].strip()] + [l.strip() for l in lines[2:]]))
    return docs

def song100():
    docs = []
    for d in fortune_docs(os.path.join(fortunes_dir, "song100")):
        lines = d.split("\n")
        m_title = re.match(r"题目[:：]\s*(《.*)$", lines[0].strip())
        m_author = re.match(r"作者[:：]\s*([^（(]+)", lines[1].strip()) if len(lines) > 1 else None
        if not m_title or not m_author or len(lines) < 3:
            fail(f"song100: unexpected poem header {lines[:2]!r}; expected 题目:《title》 and 作者:name（years）")
        # The life years "（９４６－９９９）" are dropped so that all poems share tang300's header.
        docs.append(tidy([m_title.group(1), "作者：" + m_author.group(1).strip()] + [l.strip() for l in lines[2:]]))
    return docs

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
SIGNED = re.compile(r"^\s*--\s*([" + HAN + r"]{1,5})\s*《([^》]+)》\s*$")
CLASSICAL = re.compile(r"^[" + HAN + r"，。？！；：、“”‘’·・\s]+$")

def chinese():
    """(poems, other documents) of the mixed chinese file."""
    poems, other = [], []
    for d in fortune_docs(os.path.join(fortunes_dir, "chinese")):
        lines = d.split("\n")
        m = SIGNED.match(lines[-1]) if len(lines) > 1 else None
        body = [l.strip() for l in lines[:-1]]
        if m and CLASSICAL.match("\n".join(body)) and "的" not in "".join(body):
            poems.append(tidy([f"《{m.group(2).strip()}》", "作者：" + m.group(1)] + body))
        else:
            other.append(d)
    return poems, other

# --- English --------------------------------------------------------------------------------
def english_fortunes():
    docs = []
    names = sorted(f for f in os.listdir(fortunes_dir)
                   if "." not in f and f not in ("chinese", "tang300", "song100", "ascii-art")
                   and not os.path.islink(os.path.join(fortunes_dir, f)))
    if len(names) < 20:
        fail(f"only {len(names)} English fortune files in {fortunes_dir}; the fortunes package changed")
    for name in names:
        docs += fortune_docs(os.path.join(fortunes_dir, name))
    return docs

HEADING = re.compile(r"^(Chapter \d+\. |Appendix [A-Z]\. |Preface$|[0-9A-Z]+(\.\d+)*\. \S)")
TABLE = re.compile(r"^\s*([|+][-+|=]|\||Table \d+\.\d+\. )")  # box lines, and captions

def debian_reference():
    """One document per section of the plain-text edition (its heading, then its body without
    the body's indentation); tables (ASCII boxes, with their captions) and the tables of
    contents are left out."""
    # The HTML-to-text conversion left no-break spaces in headings ("1.\u00a0Disclaimer") and
    # indentation: plain spaces there.
    lines = clean(read_text(reference)).replace("\u00a0", " ").split("\n")
    # The front matter (title page, the book's table of contents and list of tables) ends at
    # the second "Preface" line, where the text starts.
    starts = [i for i, l in enumerate(lines) if l == "Preface"]
    if len(starts) < 2:
        fail(f"{reference}: no second 'Preface' line; the plain-text layout changed")
    docs, cur, toc = [], [], None  # toc: None, "head" (after its title), "list" (in its entries)
    def close():
        text = tidy(cur[:1] + textwrap.dedent("\n".join(cur[1:])).split("\n"))
        if "\n" in text:  # a heading alone (a chapter's title before its first section) is no document
            docs.append(text)
    for line in lines[starts[1]:]:
        if toc == "head":  # blank lines, then the entries, then a blank line
            toc = "list" if line.strip() else "head"
            continue
        if toc == "list":
            toc = "list" if line.strip() else None
            continue
        if line.strip() == "Table of Contents":
            toc = "head"
            continue
        if TABLE.match(line):
            continue
        if HEADING.match(line):
            close()
            cur = []
        cur.append(line)
    close()
    return docs

# --- split and write ------------------------------------------------------------------------
def is_valid(doc):
    return int(hashlib.sha1(doc.encode("utf-8")).hexdigest(), 16) % 1000 < 20

zh_poems, zh_other = chinese()
sources = [  # (name, documents, is poetry)
    ("fortunes-zh/tang300", tang300(), True),
    ("fortunes-zh/song100", song100(), True),
    ("fortunes-zh/chinese poems", zh_poems, True),
    ("fortunes-zh/chinese other", zh_other, False),
    ("fortunes (English)", english_fortunes(), False),
    ("debian-reference-en", debian_reference(), False),
]
seen = set()
files = {k: [] for k in ("train.txt", "valid.txt", "poetry-train.txt", "poetry-valid.txt")}
rows = []
for name, docs, poetry in sources:
    n = nbytes = nchars = dup = nvalid = 0
    for d in docs:
        if d in seen:
            dup += 1
            continue
        seen.add(d)
        split = "valid" if is_valid(d) else "train"
        files[f"{split}.txt"].append(d)
        if poetry:
            files[f"poetry-{split}.txt"].append(d)
        n += 1; nvalid += split == "valid"; nbytes += len(d.encode("utf-8")); nchars += len(d)
    if n == 0:
        fail(f"{name} gave no documents; the package layout changed")
    rows.append((name, n, nvalid, nbytes, nchars, dup))

for name, docs in files.items():
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join(docs) + "\n")
    os.replace(tmp, os.path.join(out, name))

with open(os.path.join(out, "README"), "w", encoding="utf-8") as f:
    f.write("Wensu offline text corpus (scripts/data/make-text-data.sh)\n\n")
    f.write("Sources: Debian packages fortunes-zh, fortunes and debian-reference-en (see the script's header).\n")
    f.write("Split: a document is in valid when sha1(document) mod 1000 < 20; exact duplicates kept once.\n\n")
    f.write(f"{'source':<28} {'documents':>10} {'(valid)':>8} {'bytes':>12} {'characters':>12} {'duplicates':>11}\n")
    for name, n, nvalid, nbytes, nchars, dup in rows:
        f.write(f"{name:<28} {n:>10,} {nvalid:>8,} {nbytes:>12,} {nchars:>12,} {dup:>11,}\n")
    f.write(f"\n{'file':<28} {'documents':>10} {'':>8} {'bytes':>12} {'characters':>12}\n")
    for name, docs in files.items():
        text = "\n\n".join(docs) + "\n"
        f.write(f"{name:<28} {len(docs):>10,} {'':>8} {len(text.encode('utf-8')):>12,} {len(text):>12,}\n")
print(open(os.path.join(out, "README"), encoding="utf-8").read(), file=sys.stderr, end="")
PY
{
    echo
    echo "Command: scripts/data/make-text-data.sh $OUT"
    echo "Packages: $(cd "$SRC" && ls -- *.deb | tr '\n' ' ')"
    echo "Built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
} >>"$OUT/README"

rm -rf "$SRC/root"  # cheap to remake from the kept .deb files
echo "$PARAMS" >"$OUT/.done"
say "done in $((SECONDS - start)) s: $OUT (see $OUT/README)"
