// Comparing a predicted structure with its reference, residue i with residue i (same chain, same
// length: no alignment is searched). All arithmetic in double precision.
//
//   RMSD     after the least-squares superposition of all CA atoms (Kabsch).
//   TM-score (Zhang & Skolnick 2004) over the reference length L,
//              TM = max over superpositions of 1/L * sum_i 1 / (1 + (d_i / d0)^2),
//              d0 = 1.24 * cbrt(L - 15) - 1.8, at least 0.5 (0.5 for L <= 15),
//            with the superposition search of the TMscore program (tm_search below), so the
//            numbers agree with `TMscore PRED REF` (scripts/fold/check-score.sh measures it).
//   GDT-TS   mean over the cutoffs 1, 2, 4, 8 Å of the fraction of residues within the cutoff,
//            each fraction maximised over the superpositions that search visits (as TMscore
//            reports it; LGA's own search can find slightly higher values).
//   lDDT-CA  (Mariani et al. 2013) superposition-free: over the pairs (i, j), i != j, whose
//            reference distance is below 15 Å, the fraction of |d_pred - d_ref| below 0.5, 1,
//            2 and 4 Å, averaged over the four thresholds (all pairs pooled, as OpenStructure's
//            and AlphaFold's global lDDT).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "wensu/fold/structure.h"

namespace wensu::fold {

using Point = std::array<double, 3>;

// A rigid motion y = R x + t, R a proper rotation (det +1).
struct Superposition {
  std::array<std::array<double, 3>, 3> rotation{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};  // [3][3], row-major
  Point translation{0, 0, 0};
  Point apply(const Point& x) const;
};

// The rotation and translation that move `mobile` onto `target` with the least sum of squared
// distances (Kabsch, through the SVD of the 3x3 covariance; when the best orthogonal map is a
// reflection, the last singular direction is flipped, so the result is always a rotation).
// mobile, target: [n][3], n >= 1 (with fewer than 3 points, one of the many optimal rotations).
Superposition superpose(const std::vector<Point>& mobile, const std::vector<Point>& target);

// RMSD between `target` and `mobile` moved by `s`. Sizes must agree.
double rmsd_after(const Superposition& s, const std::vector<Point>& mobile, const std::vector<Point>& target);

// TM-score's distance scale for a reference of L residues.
double tm_d0(int64_t L);

struct TmSearch {
  double tm_score = 0;     // best TM-score found
  double gdt_ts = 0;       // (n1 + n2 + n4 + n8) / 4L, each count maximised separately
  Superposition best;      // the superposition of the best TM-score (pred onto ref)
};

// TMscore's search: seed superpositions on every window of L, L/2, L/4, ... (down to 4)
// consecutive residues; from each, keep the residues within d0_search - 1 (at least 3, the
// cutoff growing by 0.5 Å until there are), then superpose on the kept residues and keep those
// within d0_search + 1 again, up to 20 times or until the set stops changing
// (d0_search = d0 clamped to [4.5, 8]). Every superposition visited is scored; the maxima win.
// pred, ref: [L][3], same L >= 1.
TmSearch tm_search(const std::vector<Point>& pred, const std::vector<Point>& ref);

// lDDT over CA atoms; 0 when no two reference residues lie within 15 Å. pred, ref: [L][3].
double lddt_ca(const std::vector<Point>& pred, const std::vector<Point>& ref);

struct ScoreResult {
  double tm_score = 0, rmsd = 0, gdt_ts = 0, lddt_ca = 0;
  int64_t length = 0;  // residues compared (the reference length)
};

// All four scores of CA traces `pred` and `ref` ([L][3] each, same L >= 1).
ScoreResult score_ca(const std::vector<Point>& pred, const std::vector<Point>& ref);

// The same for two backbones: their CA atoms, residue i against residue i. Throws wensu::Error,
// naming both structures, when the lengths differ or (when both have one) the sequences do.
ScoreResult score_structures(const Backbone& pred, const Backbone& ref);

}  // namespace wensu::fold
