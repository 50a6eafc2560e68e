#!/usr/bin/env bash
# Builds the structure training data of `wensu fold` from ProMod3's StructureDB (Debian package
# promod3-data: 21,119 non-redundant PDB chains with backbone, phi/psi, DSSP and profiles):
# sequences as FASTA, clusters at 30% identity (mmseqs2), a train/valid/test split by cluster,
# and HDF5 training shards.
#
#   scripts/data/make-structure-data.sh [--seed S] [--shard-size N] [--min-len N] [--max-len N]
#                                       [--wensu BIN] [CACHE_DIR]
#     CACHE_DIR     default ${WENSU_DATA:-~/.cache/wensu}
#     --seed        seed of the cluster shuffle that assigns clusters to splits (default 6)
#     --shard-size  chains per train shard, about (default 2000)
#     --min-len, --max-len   chains exported to shards (default 30 and 1000; the split files
#                   list every chain, whatever its length)
#     --wensu       the wensu binary (default: $WENSU, else build/wensu of this repository)
#
# Writes
#   CACHE_DIR/promod3/     promod3-data_*.deb (kept) and structure_db.dat (unpacked from it)
#   CACHE_DIR/fold/        all.fasta, clusters.tsv (mmseqs: representative TAB member),
#                          lists/*.ids, train-000.h5 ... train-NNN.h5, valid.h5, test.h5, README
#   data/fold/split/       train.txt, valid.txt, test.txt (one PDBID_CHAIN per line, sorted) and
#                          README.md, in this repository: these are committed
# The split is reproducible: mmseqs runs on one thread (its result can depend on the thread
# count), clusters are ordered by representative id and shuffled with Python's
# random.Random(seed); the first 5% of clusters are test, the next 5% valid, the rest train.
# Steps whose output exists are skipped (delete CACHE_DIR/fold/clusters.tsv to recluster).
#
# Needs: apt-get (with package lists: `apt-get update` once), dpkg, /usr/bin/python3 (standard
# library only), mmseqs from Debian's mmseqs2 (installed here when running as root) and a wensu
# build with the structdb command.
set -euo pipefail

die() { echo "make-structure-data: error: $*" >&2; exit 1; }
say() { echo "make-structure-data: $*" >&2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SEED=6
SHARD_SIZE=2000
MIN_LEN=30
MAX_LEN=1000
WENSU_BIN="${WENSU:-$REPO/build/wensu}"
CACHE=""
while (($#)); do
    case $1 in
        --seed) [[ $# -ge 2 ]] || die "--seed needs a number"; SEED=$2; shift 2 ;;
        --shard-size) [[ $# -ge 2 ]] || die "--shard-size needs a number"; SHARD_SIZE=$2; shift 2 ;;
        --min-len) [[ $# -ge 2 ]] || die "--min-len needs a number"; MIN_LEN=$2; shift 2 ;;
        --max-len) [[ $# -ge 2 ]] || die "--max-len needs a number"; MAX_LEN=$2; shift 2 ;;
        --wensu) [[ $# -ge 2 ]] || die "--wensu needs a path"; WENSU_BIN=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z $CACHE ]] || die "only one CACHE_DIR may be given (got '$CACHE' and '$1')"; CACHE=$1; shift ;;
    esac
done
for v in SEED SHARD_SIZE MIN_LEN MAX_LEN; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') must be a non-negative integer, got '${!v}'"
done
((SHARD_SIZE > 0)) || die "--shard-size must be positive"
((MIN_LEN >= 1 && MIN_LEN <= MAX_LEN)) || die "need 1 <= --min-len ($MIN_LEN) <= --max-len ($MAX_LEN)"
CACHE="${CACHE:-${WENSU_DATA:-$HOME/.cache/wensu}}"
PKG=promod3-data
PY=/usr/bin/python3
SPLIT_DIR="$REPO/data/fold/split"

mkdir -p "$CACHE/promod3" "$CACHE/fold/lists" "$SPLIT_DIR" || die "cannot create folders under $CACHE"
CACHE="$(cd "$CACHE" && pwd)"
P3="$CACHE/promod3"
OUT="$CACHE/fold"
DB="$P3/structure_db.dat"
start=$SECONDS
[[ -x $PY ]] || die "$PY not found; install it with: apt-get install python3"
[[ -x $WENSU_BIN ]] || die "wensu binary $WENSU_BIN not found: build it (cmake -S . -B build && ninja -C build wensu) or pass --wensu BIN"
"$WENSU_BIN" structdb --help >/dev/null 2>&1 \
    || die "$WENSU_BIN has no 'structdb' command: rebuild it from this repository"

# 1. The package, downloaded (not installed); apt-get download writes into the current directory.
deb="$(ls "$P3"/${PKG}_*.deb 2>/dev/null | head -n1 || true)"
if [[ -z $deb ]]; then
    say "downloading $PKG (371 MB) into $P3"
    (cd "$P3" && apt-get download "$PKG") \
        || die "apt-get download $PKG failed; refresh the package lists (sudo apt-get update) and check that Debian's main archive is reachable"
    deb="$(ls "$P3"/${PKG}_*.deb | head -n1)"
fi
PKG_VERSION="$(dpkg-deb -f "$deb" Version)"

# 2. Only structure_db.dat is kept from the unpacked package (the rest is about 400 MB).
if [[ ! -f $DB ]]; then
    say "unpacking structure_db.dat from $(basename "$deb")"
    rm -rf "$P3/root"
    dpkg -x "$deb" "$P3/root" || die "dpkg -x $deb failed; the download may be damaged: delete it and rerun"
    src="$P3/root/usr/share/promod3/loop_data/structure_db.dat"
    [[ -f $src ]] || die "$src is missing: the package layout changed"
    mv "$src" "$DB.tmp" && mv "$DB.tmp" "$DB"
    rm -rf "$P3/root"
fi
"$WENSU_BIN" structdb info "$DB" >"$OUT/db-info.txt" || die "$DB does not read as a StructureDB (see the error above); delete it and rerun"

# 3. Sequences for clustering.
if [[ ! -s $OUT/all.fasta ]]; then
    say "writing $OUT/all.fasta"
    "$WENSU_BIN" structdb fasta "$DB" -o "$OUT/all.fasta" >&2
fi

# 4. mmseqs2 clusters at 30% identity and 80% coverage.
if ! command -v mmseqs >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        say "installing mmseqs2"
        apt-get install -y -q -o DPkg::Lock::Timeout=300 mmseqs2 >&2 || die "apt-get install mmseqs2 failed"
    else
        die "mmseqs (Debian package mmseqs2) is needed to cluster the sequences; run: sudo apt-get install mmseqs2 (or run this script as root once)"
    fi
fi
MMSEQS_VERSION="$(mmseqs version)"
CLUSTER_ARGS="--min-seq-id 0.3 -c 0.8 --threads 1"
if [[ ! -s $OUT/clusters.tsv ]]; then
    say "clustering with mmseqs $MMSEQS_VERSION (easy-cluster $CLUSTER_ARGS; a few minutes)"
    work="$(mktemp -d "$OUT/mmseqs.XXXXXX")"
    # shellcheck disable=SC2086  # CLUSTER_ARGS is a list of options
    mmseqs easy-cluster "$OUT/all.fasta" "$work/clu" "$work/tmp" $CLUSTER_ARGS >"$work/log" 2>&1 \
        || { tail -n 20 "$work/log" >&2; die "mmseqs easy-cluster failed (log above)"; }
    mv "$work/clu_cluster.tsv" "$OUT/clusters.tsv"
    rm -rf "$work"
fi

# 5. Split by cluster, write the split files, the id lists of the shards and the split README.
say "splitting clusters (seed $SEED)"
rm -f "$OUT"/lists/*.ids
"$PY" - "$OUT" "$SPLIT_DIR" "$SEED" "$SHARD_SIZE" "$MIN_LEN" "$MAX_LEN" "$PKG_VERSION" "$MMSEQS_VERSION" \
    "$CLUSTER_ARGS" <<'PY'
import os, random, sys

out, split_dir, seed, shard_size, min_len, max_len, pkg_version, mmseqs_version, cluster_args = sys.argv[1:]
seed, shard_size, min_len, max_len = int(seed), int(shard_size), int(min_len), int(max_len)

def fail(msg):
    sys.exit("make-structure-data: error: " + msg)

length = {}
name = None
with open(os.path.join(out, "all.fasta")) as f:
    for line in f:
        line = line.strip()
        if line.startswith(">"):
            name = line[1:].split()[0]
            if name in length:
                fail(f"all.fasta: {name} appears twice")
            length[name] = 0
        elif line:
            length[name] += len(line)

members = {}  # representative -> members
cluster_of = {}
with open(os.path.join(out, "clusters.tsv")) as f:
    for lineno, line in enumerate(f, 1):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2:
            fail(f"clusters.tsv line {lineno}: expected 'REPRESENTATIVE<TAB>MEMBER'")
        rep, m = parts
        if m in cluster_of:
            fail(f"clusters.tsv line {lineno}: {m} is in two clusters")
        cluster_of[m] = rep
        members.setdefault(rep, []).append(m)
missing = set(length) - set(cluster_of)
extra = set(cluster_of) - set(length)
if missing or extra:
    fail(f"clusters.tsv does not match all.fasta: {len(missing)} chains unclustered, {len(extra)} unknown "
         "(delete clusters.tsv and rerun)")

reps = sorted(members)
random.Random(seed).shuffle(reps)
n_test = n_valid = round(0.05 * len(reps))
splits = {"test": reps[:n_test], "valid": reps[n_test:n_test + n_valid], "train": reps[n_test + n_valid:]}

rows = []
for split in ("train", "valid", "test"):
    chains = sorted(m for rep in splits[split] for m in members[rep])
    path = os.path.join(split_dir, split + ".txt")
    with open(path + ".tmp", "w") as f:
        f.write("".join(c + "\n" for c in chains))
    os.replace(path + ".tmp", path)
    kept = [c for c in chains if min_len <= length[c] <= max_len]
    rows.append((split, len(splits[split]), len(chains), sum(length[c] for c in chains), len(kept),
                 sum(length[c] for c in kept)))
    if split == "train":
        # Train shards mix the clusters: the kept chains in seeded random order, cut into
        # near-equal shards of about shard_size chains.
        random.Random(seed + 1).shuffle(kept)
        n = max(1, round(len(kept) / shard_size))
        lists = {f"train-{k:03d}": kept[k * len(kept) // n:(k + 1) * len(kept) // n] for k in range(n)}
    else:
        lists = {split: kept}
    for lname, ids in lists.items():
        with open(os.path.join(out, "lists", lname + ".ids"), "w") as f:
            f.write("".join(c + "\n" for c in ids))

total = (sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows), sum(r[4] for r in rows),
         sum(r[5] for r in rows))
with open(os.path.join(split_dir, "README.md"), "w") as f:
    f.write(f"""# Structure split (train / valid / test)

`train.txt`, `valid.txt` and `test.txt` list the chains of ProMod3's StructureDB (Debian package
`promod3-data` {pkg_version}, `structure_db.dat`) by id `PDBID_CHAIN`, one per line, sorted. A
chain's id is its PDB code and chain name as the database stores them (`wensu structdb fasta`).

Made by `scripts/data/make-structure-data.sh --seed {seed}`:

1. `wensu structdb fasta structure_db.dat -o all.fasta` (every chain, whatever its length);
2. `mmseqs easy-cluster all.fasta clu tmp {cluster_args}` (Debian `mmseqs2`,
   `mmseqs version` {mmseqs_version}): clusters of at least 30% identity over 80% coverage;
3. the cluster representatives, sorted, shuffled with Python's `random.Random({seed})`: the first
   5% of clusters are test, the next 5% valid, the rest train. Every chain of a cluster goes to
   its cluster's split, so no pair of chains in different splits was clustered together.

Rerunning the script gives the same files: checked by rerunning it with the clustering redone
(mmseqs on two threads gave the same clusters in another line order; the split sorts them).

| split | clusters | chains | residues | chains of {min_len}-{max_len} residues (in the shards) | their residues |
| --- | ---: | ---: | ---: | ---: | ---: |
""")
    for r in rows + [("total",) + total]:
        f.write(f"| {r[0]} | {r[1]:,} | {r[2]:,} | {r[3]:,} | {r[4]:,} | {r[5]:,} |\n")
    f.write(f"""
The shards themselves (HDF5, about 150 bytes per residue) stay in the data cache,
`${{WENSU_DATA:-~/.cache/wensu}}/fold/`: `train-000.h5` ... (about {shard_size} chains each, in seeded
random order), `valid.h5` and `test.h5`. Their layout is in docs/fold.md.
""")
print(open(os.path.join(split_dir, "README.md")).read(), file=sys.stderr, end="")
PY

# 6. Shards.
rm -f "$OUT"/*.h5
for list in "$OUT"/lists/*.ids; do
    name="$(basename "$list" .ids)"
    split="${name%%-*}"
    say "exporting $name"
    "$WENSU_BIN" structdb export "$DB" --ids "$list" --out "$OUT/$name.h5" --min-len "$MIN_LEN" --max-len "$MAX_LEN" \
        --attr "split=$split" --attr "package=$PKG $PKG_VERSION" >&2
done

{
    echo "Wensu fold training shards (scripts/data/make-structure-data.sh)"
    echo
    echo "Source: $DB (Debian $PKG $PKG_VERSION)"
    echo "Split: $SPLIT_DIR (see its README.md); mmseqs $MMSEQS_VERSION, seed $SEED"
    echo "Shards: chains of $MIN_LEN-$MAX_LEN residues, train in shards of about $SHARD_SIZE chains"
    echo
    for f in "$OUT"/*.h5; do printf '%-16s %8s chains %10s bytes\n' "$(basename "$f")" "$(wc -l <"$OUT/lists/$(basename "$f" .h5).ids")" "$(stat -c %s "$f")"; done
    echo
    echo "Command: scripts/data/make-structure-data.sh --seed $SEED --shard-size $SHARD_SIZE --min-len $MIN_LEN --max-len $MAX_LEN $CACHE"
    echo "Built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
} >"$OUT/README"
cat "$OUT/README" >&2
say "done in $((SECONDS - start)) s"
