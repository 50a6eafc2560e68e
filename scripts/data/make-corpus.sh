#!/usr/bin/env bash
# Builds the offline pretraining corpus: protein sequences from Debian's metastudent-data package
# (three BLAST databases of GO-annotated UniProt entries, 2014), deduplicated, shuffled and written
# as gzipped FASTA shards in the shape real users bring (UniRef50/90 shards), so that the same
# reader and loader serve both.
#
#   scripts/data/make-corpus.sh [--shards N] [--seed S] [CACHE_DIR]
#     CACHE_DIR  default ${WENSU_DATA:-~/.cache/wensu}/corpus
#     --shards   number of train shards (default 8)
#     --seed     shuffle seed (default 20140101)
#
# Writes CACHE_DIR/train-000.fasta.gz ... train-NNN.fasta.gz, CACHE_DIR/valid.fasta.gz (1% of the
# sequences, at least 1000) and CACHE_DIR/README (counts, sizes and the command). Idempotent: a
# finished corpus with the same parameters is left alone, and each intermediate step (download,
# unpack, BLAST database dumps) is skipped when its output exists.
#
# Needs: apt-get (with package lists: `apt-get update` once), dpkg, /usr/bin/python3 (standard
# library only) and blastdbcmd from Debian's ncbi-blast+ (installed here when running as root).
#
# Headers look like UniRef's so that one parser reads both:
#   >UniRef50_B0RED7 metastudent GO-annotated UniProt entry GO:0006200,... n=1 Tax=unknown TaxID=0 RepID=B0RED7
# They are NOT UniRef clusters: each record is one UniProt entry (n=1), the organism is unknown
# (the BLAST databases do not carry it), and duplicates were removed by exact sequence identity
# only, not by UniRef's 50% identity clustering. The description says so.
set -euo pipefail

die() { echo "make-corpus: error: $*" >&2; exit 1; }
say() { echo "make-corpus: $*" >&2; }

SHARDS=8
SEED=20140101
CACHE=""
while (($#)); do
    case $1 in
        --shards) [[ $# -ge 2 ]] || die "--shards needs a number"; SHARDS=$2; shift 2 ;;
        --seed) [[ $# -ge 2 ]] || die "--seed needs a number"; SEED=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z $CACHE ]] || die "only one CACHE_DIR may be given (got '$CACHE' and '$1')"; CACHE=$1; shift ;;
    esac
done
[[ $SHARDS =~ ^[1-9][0-9]*$ ]] || die "--shards must be a positive integer, got '$SHARDS'"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer, got '$SEED'"
CACHE="${CACHE:-${WENSU_DATA:-$HOME/.cache/wensu}/corpus}"
PKG=metastudent-data
PY=/usr/bin/python3
SETS=(BPO CCO MFO)  # order matters: on duplicate sequences the first set's entry is kept
PARAMS="package=$PKG shards=$SHARDS seed=$SEED valid=1%,min1000 format=1"

mkdir -p "$CACHE" || die "cannot create $CACHE"
CACHE="$(cd "$CACHE" && pwd)"
SRC="$CACHE/src"
mkdir -p "$SRC"

if [[ -f $CACHE/.done && "$(cat "$CACHE/.done")" == "$PARAMS" ]]; then
    say "corpus already built in $CACHE ($PARAMS); delete $CACHE/.done to rebuild"
    exit 0
fi
start=$SECONDS
[[ -x $PY ]] || die "$PY not found; install it with: apt-get install python3"

# 1. The package, downloaded (not installed). apt-get download writes into the current directory.
deb="$(ls "$SRC"/${PKG}_*.deb 2>/dev/null | head -n1 || true)"
if [[ -z $deb ]]; then
    say "downloading $PKG (225 MB) into $SRC"
    (cd "$SRC" && apt-get download "$PKG") \
        || die "apt-get download $PKG failed; refresh the package lists (sudo apt-get update) and check that Debian's main archive is reachable"
    deb="$(ls "$SRC"/${PKG}_*.deb | head -n1)"
fi

# 2. Unpack (dpkg -x: no install, no root).
if [[ ! -f $SRC/root/.unpacked ]]; then
    say "unpacking $(basename "$deb")"
    rm -rf "$SRC/root"
    dpkg -x "$deb" "$SRC/root" || die "dpkg -x $deb failed; the download may be damaged: delete it and rerun"
    touch "$SRC/root/.unpacked"
fi
DB="$SRC/root/usr/share/$PKG/dataset_201401"
for s in "${SETS[@]}"; do
    [[ -f $DB/$s/goasp.fasta.psq ]] || die "$DB/$s/goasp.fasta.psq is missing: the package layout changed (expected dataset_201401/{BPO,CCO,MFO})"
done

# 3. blastdbcmd reads the BLAST v4 databases.
if ! command -v blastdbcmd >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        say "installing ncbi-blast+ for blastdbcmd"
        apt-get install -y -q -o DPkg::Lock::Timeout=300 ncbi-blast+ >&2 \
            || die "apt-get install ncbi-blast+ failed"
    else
        die "blastdbcmd (Debian package ncbi-blast+) is needed to read the BLAST databases; run: sudo apt-get install ncbi-blast+ (or run this script as root once)"
    fi
fi

# 4. One line per entry, "TITLE SEQUENCE" (title is "ACC|GO:...,GO:...").
for s in "${SETS[@]}"; do
    out="$SRC/$s.tsv"
    if [[ ! -s $out ]]; then
        say "dumping $s with blastdbcmd"
        blastdbcmd -db "$DB/$s/goasp.fasta" -entry all -outfmt '%t %s' >"$out.tmp" \
            || die "blastdbcmd failed on $DB/$s/goasp.fasta"
        mv "$out.tmp" "$out"
    fi
done

# 5. Deduplicate, shuffle, write shards and the README.
say "deduplicating, shuffling (seed $SEED) and writing $SHARDS train shards + valid"
rm -f "$CACHE"/train-*.fasta.gz "$CACHE"/valid.fasta.gz "$CACHE/.done"
"$PY" - "$CACHE" "$SHARDS" "$SEED" "${SETS[@]}" <<'PY'
import gzip, os, random, sys

cache, shards, seed, sets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
src = os.path.join(cache, "src")

index = {}      # sequence -> position in entries
entries = []    # [accession, GO terms (ordered, unique), sequence]
read = {}
for s in sets:
    n = 0
    with open(os.path.join(src, s + ".tsv")) as f:
        for lineno, line in enumerate(f, 1):
            title, _, seq = line.rstrip("\n").rpartition(" ")
            if not title or not seq:
                sys.exit(f"make-corpus: error: {s}.tsv line {lineno}: expected 'TITLE SEQUENCE'")
            acc, _, go = title.partition("|")
            terms = [t for t in go.split(",") if t]
            n += 1
            seq = seq.upper()
            i = index.get(seq)
            if i is None:
                index[seq] = len(entries)
                entries.append([acc, list(dict.fromkeys(terms)), seq])
            elif entries[i][0] == acc:
                # The same entry in another ontology: keep the union of its GO terms.
                have = entries[i][1]
                have.extend(t for t in dict.fromkeys(terms) if t not in have)
    read[s] = n
del index

order = list(range(len(entries)))
random.Random(seed).shuffle(order)
n_valid = min(max(1000, len(order) // 100), len(order) // 2)
valid, train = order[:n_valid], order[n_valid:]

def write(path, idx):
    residues = 0
    tmp = path + ".tmp"
    # mtime=0 and no stored name: the same input gives the same bytes.
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for i in idx:
            acc, terms, seq = entries[i]
            desc = "metastudent GO-annotated UniProt entry" + (" " + ",".join(terms) if terms else "")
            lines = [f">UniRef50_{acc} {desc} n=1 Tax=unknown TaxID=0 RepID={acc}"]
            lines += [seq[k:k + 60] for k in range(0, len(seq), 60)]
            gz.write(("\n".join(lines) + "\n").encode("ascii"))
            residues += len(seq)
    os.replace(tmp, path)
    return len(idx), residues, os.path.getsize(path)

rows = [("valid.fasta.gz",) + write(os.path.join(cache, "valid.fasta.gz"), valid)]
for k in range(shards):
    name = f"train-{k:03d}.fasta.gz"
    rows.append((name,) + write(os.path.join(cache, name), train[k::shards]))

total = sum(read.values())
lens = sorted(len(e[2]) for e in entries)
with open(os.path.join(cache, "README"), "w") as f:
    f.write("Wensu offline pretraining corpus (scripts/data/make-corpus.sh)\n\n")
    f.write("Source: Debian package metastudent-data, dataset_201401/{BPO,CCO,MFO}/goasp.fasta\n"
            "(BLAST databases of GO-annotated UniProt entries), read with blastdbcmd.\n")
    f.write("Not UniRef: headers only imitate UniRef's shape. Each record is one UniProt entry\n"
            "(n=1, Tax=unknown TaxID=0); duplicates were removed by exact sequence identity,\n"
            "keeping the first accession in the order " + ", ".join(sets) + ".\n\n")
    f.write("Entries read: " + ", ".join(f"{s} {read[s]:,}" for s in sets) + f" (total {total:,})\n")
    f.write(f"Unique sequences: {len(entries):,} ({total - len(entries):,} duplicates removed)\n")
    f.write(f"Residues: {sum(lens):,}; length min {lens[0]:,}, median {lens[len(lens) // 2]:,}, max {lens[-1]:,}\n")
    f.write(f"Shuffle: Python random.Random({seed}).shuffle; valid = the first {n_valid:,} "
            f"(1%, at least 1000); train shard k holds every {shards}th of the rest from k\n\n")
    f.write(f"{'file':<20} {'sequences':>12} {'residues':>14} {'bytes':>14}\n")
    for name, n, r, b in rows:
        f.write(f"{name:<20} {n:>12,} {r:>14,} {b:>14,}\n")
print(open(os.path.join(cache, "README")).read(), file=sys.stderr, end="")
PY
{
    echo
    echo "Command: scripts/data/make-corpus.sh --shards $SHARDS --seed $SEED $CACHE"
    echo "Built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
} >>"$CACHE/README"

# The dumps are large (about 500 MB) and cheap to remake from the .deb, which is kept.
rm -rf "$SRC/root" "$SRC"/*.tsv
echo "$PARAMS" >"$CACHE/.done"
say "done in $((SECONDS - start)) s: $CACHE (see $CACHE/README)"
