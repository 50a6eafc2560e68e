// Backbone coordinates from predicted inter-residue distances and backbone torsions: the last
// step of `wensu fold`, after the network has predicted a CB-CB distogram and phi/psi.
//
// Parameters: the 2L backbone torsions, nothing else. A chain is built from them by NeRF
// (Parsons et al. 2005) with Engh & Huber's ideal bond lengths and angles (namespace ideal),
// omega = 180 degrees, O in the peptide plane and an ideal CB on every residue (also glycine:
// the distogram is over CB, and a glycine's virtual CB is where it would be). Working in torsion
// space means bond lengths, bond angles, planarity and CA chirality are exact by construction,
// whatever the optimiser does; only the fold is free. Distances alone cannot tell a structure
// from its mirror image, but this model can: the CB is always built as on an L-amino acid, so a
// mirrored backbone puts its CBs on the wrong side and misses the CB-CB distances, and the
// torsion prior (mirroring flips the signs of phi and psi) penalises it too.
//
// Objective of torsions x = (phi_i, psi_i), i < L, with CB_i and CA_i the built atoms:
//
//   E(x) = E_dist + E_tors + E_clash
//   E_dist  = 1/W sum_{i != j} w_ij rho(|CB_i - CB_j| - dist_ij),  W = sum_{i != j} w_ij
//             rho(r) = delta^2 (sqrt(1 + (r / delta)^2) - 1), delta = kLossScale (pseudo-Huber:
//             r^2 / 2 near 0, delta |r| far out, so a few wrong long-range predictions cannot
//             dominate); both (i, j) and (j, i) count, each with its own weight and distance.
//   E_tors  = 1/L sum_i t_i (2 - cos(phi_i - phi^_i) - cos(psi_i - psi^_i))
//   E_clash = kClashWeight / L sum_{j - i >= 3} max(0, kClashDistance - |CA_i - CA_j|)^2
//
// Every term is a mean, so E does not grow with L, and a weight of 1 means the same at any length.
// The torsion prior is periodic (no wrap-around artefacts at +-180 degrees); the clash term keeps
// the chain from passing through itself where the restraints are few or weak.
//
// Gradient: a change of torsion k rotates every atom downstream of its bond about the bond axis
// u_k through p_k, so dE/dtheta_k = u_k . (sum_a x_a x g_a - p_k x sum_a g_a), a over the
// downstream atoms, g_a = dE/dx_a. Atom gradients cost O(L^2) (the pair terms); the torsion
// gradients are then suffix sums from the C terminus, O(L) for all 2L of them.
//
// Minimiser: L-BFGS (LBFGSpp, Debian's liblbfgspp-dev, header-only on Eigen) from several
// starts, run in parallel with OpenMP, the lowest final objective kept. Each start owns a
// seed derived from ReconstructOptions::seed and its index, and the winner is chosen by
// (objective, index), so the result does not depend on the number of threads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wensu/fold/structure.h"

namespace wensu::fold {

// Engh & Huber (1991) backbone geometry: lengths in Å, angles in degrees.
namespace ideal {
constexpr double kBondNCa = 1.458, kBondCaC = 1.525, kBondCN = 1.329, kBondCO = 1.231, kBondCaCb = 1.530;
constexpr double kAngleNCaC = 111.2, kAngleCaCN = 116.2, kAngleCNCa = 121.7, kAngleCaCO = 120.8;
constexpr double kAngleNCaCb = 110.5, kAngleCCaCb = 110.1;
constexpr double kOmega = 180.0;
}  // namespace ideal

// delta of the pseudo-Huber distance loss, Å: errors up to about a distogram bin's spread count
// quadratically, larger ones linearly. Measured on 14 test-split chains of 45-270 residues
// rebuilt from their own CB distances (< 20 Å) plus 2 Å Gaussian noise, 8 starts: mean TM-score
// 0.76 with delta = 1 Å, 0.89 with 3 Å, 0.89 with 10 Å (without noise 0.90, 0.96, 0.96). A pair
// pulls with a force of at most delta, so a small delta leaves distant pairs too little pull to
// fold a chain from a helix or a strand; 3 Å keeps most of that pull and still caps outliers.
constexpr double kLossScale = 3.0;
constexpr double kClashDistance = 3.8;  // CA-CA closer than this (|i - j| >= 3) is a clash, Å
constexpr double kClashWeight = 1.0;    // per Å^2 of overlap, before the 1/L

// What the network predicts for one chain of L residues. Row i, column j of the [L*L] arrays is
// element i * L + j; the diagonal is ignored.
struct Restraints {
  int64_t L = 0;
  std::vector<float> dist;            // [L*L] expected CB-CB distance, Å; or empty (no distances)
  std::vector<float> weight;          // [L*L] >= 0, 0 = no restraint (e.g. the distogram's
                                      //   probability mass in the chosen bins); empty with dist
  std::vector<float> phi, psi;        // [L] radians each; or both empty (no torsion prediction)
  std::vector<float> torsion_weight;  // [L] >= 0; or empty (all 0: torsions only seed a start)
};

struct ReconstructOptions {
  int starts = 8;            // independent L-BFGS runs, >= 1 (see reconstruct for which)
  int max_iterations = 500;  // L-BFGS iterations per start, over all of its stages (chains of
                             //   several hundred residues gain from more: docs/fold.md)
  uint64_t seed = 0;         // seeds the noisy and random starts
};

struct Reconstruction {
  Backbone backbone;               // N, CA, C, O, CB of the best start, CA centroid at the origin
  double objective = 0;            // E of the best start
  int start = 0;                   // its index
  std::vector<double> objectives;  // [starts] final E of every start, for diagnostics
};

// The chain that torsions [L][2] (phi_i, psi_i in radians, interleaved) build: N_0 at the
// origin, CA_0 on +x, ideal geometry as above. phi_0 turns the whole chain about the N_0-CA_0
// axis and psi_{L-1} only places O_{L-1}: neither changes any distance. `sequence` ([L]) is
// copied into the result; it does not change the geometry.
Backbone build_backbone(const std::string& sequence, const std::vector<double>& torsions);

// E(torsions) as defined above, in double precision, and when `grad` is not null its gradient
// [L][2] (resized). Checks `r` as reconstruct does.
double reconstruction_objective(const Restraints& r, const std::vector<double>& torsions, std::vector<double>* grad);

// Minimises E from o.starts starts and returns the best. Start k is, in this order while k lasts:
// the predicted torsions; the predicted torsions plus N(0, 20 degrees) noise; an ideal alpha
// helix (-57, -47); an ideal beta strand (-139, 135); then random draws from the allowed
// Ramachandran regions (alpha, beta, polyproline II, and left-handed alpha for glycine). Without
// predicted torsions the first two are left out. Each start minimises in stages, the restraints
// growing by sequence separation (local structure first, then its packing), and ends on the full
// E. Throws wensu::Error when sizes disagree with the sequence length, a weight is negative or not
// finite, or a weighted distance or torsion is not finite.
Reconstruction reconstruct(const std::string& sequence, const Restraints& r, const ReconstructOptions& o = {});

}  // namespace wensu::fold
