#!/usr/bin/env python3
"""`wensu score` against the TMscore program (Debian package tm-align) on same-sequence pairs.

Run through scripts/fold/check-score.sh, which checks the prerequisites. Plain Python 3, no
third-party modules.

Pairs (residue i of the decoy is residue i of the native, same residue numbers, so TMscore pairs
them exactly as `wensu score` does):
  natives  small real structures shipped by Debian: 5eep (tm-align's example, 140 residues), the
           first model of the NMR ensemble 1ni7 (149), and three zinc fingers of
           mustang-testdata (29-34 residues; TM-score's d0 is small there, a hard case)
  decoys   per native: Gaussian noise of several sizes, rigid hinge moves of the C-terminal
           part, a hinge move with noise, shifted registers, the mirror image, the chain
           reversed, an ideal alpha-helix and a random walk of the same length; plus the other 19
           NMR models of 1ni7 against its first model
Files are CA-only PDB (first chain, first model, ATOM records, first alternative location),
which is all either program reads.

For every pair it runs `TMscore PRED REF` and `WENSU score PRED REF`, prints a table and the
largest differences; with --fixtures DIR it also (re)writes the small fixture set the unit tests
read (tests/data/score/: a few pairs and TMscore's numbers for them). Exit status 1 when a
TM-score differs by more than --tolerance.
"""
import argparse
import gzip
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

MUSTANG = "/usr/share/doc/mustang-testdata/examples/pdbs"
TMALIGN_EXAMPLES = "/usr/share/doc/tm-align/examples"

# The fixture pairs: (decoy name, native name); see write_fixtures.
FIXTURE_PAIRS = [
    ("1ni7_m02", "1ni7_m01"),
    ("5eep_noise2.0", "5eep"),
    ("5eep_hinge120", "5eep"),
    ("5eep_helix", "5eep"),
    ("1zaa1_noise1.0", "1zaa1"),
    ("1zaa1_reversed", "1zaa1"),
]


# ---------------------------------------------------------------- PDB in and out

def read_ca(path, model=1):
    """CA atoms of the first chain of MODEL `model` (1-based): [(resname, resseq, icode, [x, y, z])]."""
    opener = gzip.open if path.endswith(".gz") else open
    out, chain, current_model, seen = [], None, 1, set()
    with opener(path, "rt") as f:
        for line in f:
            rec = line[:6]
            if rec.startswith("MODEL"):
                current_model = int(line[10:14])
                continue
            if current_model < model:
                continue
            if current_model > model or (out and rec.startswith(("TER", "ENDMDL", "END"))):
                break
            if not rec.startswith("ATOM") or line[12:16] != " CA ":
                continue
            if line[16] not in " A":
                continue
            ch, resseq, icode = line[21], int(line[22:26]), line[26]
            if chain is None:
                chain = ch
            if ch != chain or (resseq, icode) in seen:
                continue
            seen.add((resseq, icode))
            xyz = [float(line[30:38]), float(line[38:46]), float(line[46:54])]
            out.append((line[17:20], resseq, icode, xyz))
    if not out:
        sys.exit(f"check_score: no CA atoms in {path} (model {model})")
    return out


def write_ca(path, residues, coords):
    with open(path, "w") as f:
        for k, ((resname, resseq, icode, _), (x, y, z)) in enumerate(zip(residues, coords)):
            f.write(f"ATOM  {k + 1:5d}  CA  {resname:3s} A{resseq:4d}{icode:1s}   "
                    f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{0.0:6.2f}          {'C':>2s}\n")
        f.write("TER\nEND\n")


# ---------------------------------------------------------------- decoys (plain 3-vectors)

def add(a, b): return [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
def sub(a, b): return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
def scale(a, s): return [a[0] * s, a[1] * s, a[2] * s]
def norm(a): return math.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2)


def random_unit(rng):
    while True:
        v = [rng.gauss(0, 1) for _ in range(3)]
        n = norm(v)
        if n > 1e-6:
            return scale(v, 1 / n)


def rotate(v, axis, angle):
    """Rodrigues: v rotated by `angle` (radians) about the unit vector `axis`."""
    c, s = math.cos(angle), math.sin(angle)
    dot = sum(a * b for a, b in zip(axis, v))
    cross = [axis[1] * v[2] - axis[2] * v[1], axis[2] * v[0] - axis[0] * v[2], axis[0] * v[1] - axis[1] * v[0]]
    return [v[i] * c + cross[i] * s + axis[i] * dot * (1 - c) for i in range(3)]


def noise(xyz, sigma, rng):
    return [[c + rng.gauss(0, sigma) for c in p] for p in xyz]


def hinge(xyz, degrees, rng):
    """The residues after the middle one rotated rigidly about an axis through it."""
    k = len(xyz) // 2
    axis, pivot = random_unit(rng), xyz[k]
    return xyz[:k + 1] + [add(pivot, rotate(sub(p, pivot), axis, math.radians(degrees))) for p in xyz[k + 1:]]


def shifted(xyz, s):
    """Register shift: residue i sits where residue i + s was; the last s continue the chain's
    final step."""
    L = len(xyz)
    step = sub(xyz[-1], xyz[-2])
    return [xyz[i + s] if i + s < L else add(xyz[-1], scale(step, i + s - L + 1)) for i in range(L)]


def helix(L):
    """Ideal alpha-helix CA trace: radius 2.3 Å, rise 1.5 Å and 100 degrees per residue."""
    return [[2.3 * math.cos(math.radians(100 * i)), 2.3 * math.sin(math.radians(100 * i)), 1.5 * i] for i in range(L)]


def random_walk(L, rng):
    p, out = [0.0, 0.0, 0.0], []
    for _ in range(L):
        out.append(p)
        p = add(p, scale(random_unit(rng), 3.8))
    return out


def decoys(xyz, rng):
    out = {}
    for sigma in (0.25, 0.5, 1.0, 2.0, 3.0, 5.0):
        out[f"noise{sigma}"] = noise(xyz, sigma, rng)
    for deg in (30, 60, 120, 180):
        out[f"hinge{deg}"] = hinge(xyz, deg, rng)
    out["hinge90_noise1.0"] = noise(hinge(xyz, 90, rng), 1.0, rng)
    for s in (1, 3):
        out[f"shift{s}"] = shifted(xyz, s)
    out["mirror"] = [[-p[0], p[1], p[2]] for p in xyz]
    out["reversed"] = xyz[::-1]
    out["helix"] = helix(len(xyz))
    out["random_walk"] = random_walk(len(xyz), rng)
    return out


def make_pairs(work):
    """Writes natives and decoys into `work`; returns [(pred_path, ref_path, native, kind)]."""
    natives = {
        "5eep": (os.path.join(TMALIGN_EXAMPLES, "5eep.pdb.gz"), 1),
        "1ni7_m01": (os.path.join(TMALIGN_EXAMPLES, "1ni7.pdb.gz"), 1),
        "1zaa1": (os.path.join(MUSTANG, "1zaa1.pdb"), 1),
        "2drp1": (os.path.join(MUSTANG, "2drp1.pdb"), 1),
        "1ard": (os.path.join(MUSTANG, "1ard.pdb"), 1),
    }
    pairs = []
    for name, (path, model) in natives.items():
        res = read_ca(path, model)
        ref = os.path.join(work, name + ".pdb")
        write_ca(ref, res, [r[3] for r in res])
        rng = random.Random(f"wensu-score-{name}")  # the same decoys on every run
        for kind, xyz in decoys([r[3] for r in res], rng).items():
            pred = os.path.join(work, f"{name}_{kind}.pdb")
            write_ca(pred, res, xyz)
            pairs.append((pred, ref, name, kind))
    # NMR models: real alternative conformations of one sequence.
    ref = os.path.join(work, "1ni7_m01.pdb")
    for m in range(2, 21):
        res = read_ca(natives["1ni7_m01"][0], m)
        pred = os.path.join(work, f"1ni7_m{m:02d}.pdb")
        write_ca(pred, res, [r[3] for r in res])
        pairs.append((pred, ref, "1ni7_m01", f"nmr_model{m}"))
    return pairs


# ---------------------------------------------------------------- running the two programs

def run_tmscore(tmscore, pred, ref):
    out = subprocess.run([tmscore, pred, ref], capture_output=True, text=True, check=True).stdout

    def grab(pattern):
        m = re.search(pattern, out)
        if not m:
            sys.exit(f"check_score: unexpected TMscore output for {pred} {ref}:\n{out}")
        return float(m.group(1))

    return {"tm_score": grab(r"TM-score\s*=\s*([0-9.]+)"), "rmsd": grab(r"RMSD of  the common residues=\s*([0-9.]+)"),
            "gdt_ts": grab(r"GDT-TS-score=\s*([0-9.]+)"), "length": int(grab(r"Number of residues in common=\s*(\d+)"))}


def run_wensu(wensu, pred, ref):
    p = subprocess.run([wensu, "score", pred, ref], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"check_score: '{wensu} score {pred} {ref}' failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def write_fixtures(fixtures, work, rows):
    os.makedirs(fixtures, exist_ok=True)
    by_pair = {(os.path.basename(r["pred"])[:-4], os.path.basename(r["ref"])[:-4]): r for r in rows}
    files = set()
    lines = ["# TMscore (Debian tm-align 20190822) on CA-only pairs made by scripts/fold/check_score.py;",
             "# residue i of pred is residue i of ref. Regenerate: scripts/fold/check-score.sh build/wensu",
             "pred,ref,tm_score,rmsd,gdt_ts,length"]
    for pred, ref in FIXTURE_PAIRS:
        r = by_pair[(pred, ref)]
        t = r["tmscore"]
        lines.append(f"{pred}.pdb,{ref}.pdb,{t['tm_score']:.4f},{t['rmsd']:.3f},{t['gdt_ts']:.4f},{t['length']}")
        files.update((pred, ref))
    for f in sorted(files):
        shutil.copyfile(os.path.join(work, f + ".pdb"), os.path.join(fixtures, f + ".pdb"))
    with open(os.path.join(fixtures, "tmscore.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(FIXTURE_PAIRS)} fixture pairs ({len(files)} PDB files) and tmscore.csv to {fixtures}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wensu", help="the wensu binary")
    ap.add_argument("--tmscore", default="TMscore")
    ap.add_argument("--fixtures", help="(re)write the unit-test fixtures into this folder")
    ap.add_argument("--keep", help="keep the generated pairs in this folder")
    ap.add_argument("--tolerance", type=float, default=0.01)
    args = ap.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="wensu-check-score-")
    os.makedirs(work, exist_ok=True)
    try:
        pairs = make_pairs(work)
        rows = []
        print(f"{'pair':34s} {'L':>4s} {'TM(TMscore)':>11s} {'TM(wensu)':>9s} {'dTM':>7s} "
              f"{'GDT(TMsc)':>9s} {'GDT(wensu)':>10s} {'RMSD(TMsc)':>10s} {'RMSD(wensu)':>11s} {'lDDT-CA':>7s}")
        for pred, ref, native, kind in pairs:
            t, w = run_tmscore(args.tmscore, pred, ref), run_wensu(args.wensu, pred, ref)
            if t["length"] != w["length"]:
                sys.exit(f"check_score: {pred}: TMscore paired {t['length']} residues, wensu {w['length']}")
            rows.append({"pred": pred, "ref": ref, "tmscore": t, "wensu": w})
            print(f"{native + ' ' + kind:34s} {w['length']:4d} {t['tm_score']:11.4f} {w['tm_score']:9.4f} "
                  f"{w['tm_score'] - t['tm_score']:+7.4f} {t['gdt_ts']:9.4f} {w['gdt_ts']:10.4f} "
                  f"{t['rmsd']:10.3f} {w['rmsd']:11.3f} {w['lddt_ca']:7.4f}")
        d_tm = [abs(r["wensu"]["tm_score"] - r["tmscore"]["tm_score"]) for r in rows]
        d_gdt = [abs(r["wensu"]["gdt_ts"] - r["tmscore"]["gdt_ts"]) for r in rows]
        d_rmsd = [abs(r["wensu"]["rmsd"] - r["tmscore"]["rmsd"]) for r in rows]
        tms = [r["tmscore"]["tm_score"] for r in rows]
        within = sum(d <= args.tolerance for d in d_tm)
        print(f"\npairs: {len(rows)} (TMscore's TM-scores {min(tms):.4f} .. {max(tms):.4f})")
        print(f"max |dTM| = {max(d_tm):.4f}   max |dGDT-TS| = {max(d_gdt):.4f}   max |dRMSD| = {max(d_rmsd):.4f}")
        print(f"TM-score within {args.tolerance}: {within} of {len(rows)}")
        if args.fixtures:
            write_fixtures(args.fixtures, work, rows)
        return 0 if within == len(rows) else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
