// Torsion-space reconstruction: NeRF chain building, the objective with its suffix-sum gradient,
// and multi-start L-BFGS. reconstruct.h defines the objective and explains the choices.
#include "wensu/fold/reconstruct.h"

#include <LBFGS.h>

#include <Eigen/Core>
#include <Eigen/Geometry>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <random>

#include "wensu/core/check.h"

namespace wensu::fold {

namespace {

using Vec = Eigen::Vector3d;
constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = kPi / 180.0;

struct Trig {
  double cos, sin;
  explicit Trig(double degrees) : cos(std::cos(degrees * kDeg)), sin(std::sin(degrees * kDeg)) {}
};

// Natural extension reference frame (Parsons et al. 2005): the atom d with |d - c| = bond,
// angle b-c-d = `angle` and dihedral a-b-c-d = torsion (IUPAC sign: increasing the torsion turns
// d right-handedly about the b->c axis, the convention the gradient relies on).
Vec place(const Vec& a, const Vec& b, const Vec& c, double bond, const Trig& angle, double torsion) {
  const Vec bc = (c - b).normalized();
  const Vec n = (b - a).cross(bc).normalized();
  const Vec m = n.cross(bc);
  return c + bond * (-angle.cos * bc + angle.sin * std::cos(torsion) * m + angle.sin * std::sin(torsion) * n);
}

// The ideal CB in the frame of its residue: CB - CA = kBondCaCb (alpha a + beta b + gamma n),
// a, b the unit vectors CA->N and CA->C and n = a x b / |a x b|. alpha and beta give the two
// ideal angles at CA; gamma > 0 puts the CB on the side of an L-amino acid (the side where
// (N - CA) x (C - CA) points: the "CORN" rule, checked against real CBs in the tests).
struct CbFrame {
  double alpha, beta, gamma;
  CbFrame() {
    const double cg = std::cos(ideal::kAngleNCaC * kDeg);
    const double ca = std::cos(ideal::kAngleNCaCb * kDeg), cb = std::cos(ideal::kAngleCCaCb * kDeg);
    alpha = (ca - cb * cg) / (1 - cg * cg);
    beta = (cb - ca * cg) / (1 - cg * cg);
    gamma = std::sqrt(1 - (alpha * alpha + beta * beta + 2 * alpha * beta * cg));
  }
};

struct Chain {
  std::vector<Vec> n, ca, c, o, cb;  // [L] each
  explicit Chain(int64_t L) : n(L), ca(L), c(L), o(L), cb(L) {}
};

// Builds the chain of torsions x [L][2]. The first residue hangs off a virtual C_{-1} in the xy
// plane, so phi_0 is a real (if inert) torsion and every torsion has the same gradient form.
void build_chain(const double* x, Chain& ch) {
  static const Trig nca_c(ideal::kAngleNCaC), ca_cn(ideal::kAngleCaCN), cn_ca(ideal::kAngleCNCa),
      ca_co(ideal::kAngleCaCO);
  static const CbFrame cbf;
  const double omega = ideal::kOmega * kDeg;
  const int64_t L = int64_t(ch.ca.size());
  const Vec prev_c = ideal::kBondCN * Vec(cn_ca.cos, cn_ca.sin, 0);
  ch.n[0] = Vec::Zero();
  ch.ca[0] = Vec(ideal::kBondNCa, 0, 0);
  ch.c[0] = place(prev_c, ch.n[0], ch.ca[0], ideal::kBondCaC, nca_c, x[0]);
  for (int64_t i = 0; i < L; ++i) {
    if (i > 0) {
      ch.n[i] = place(ch.n[i - 1], ch.ca[i - 1], ch.c[i - 1], ideal::kBondCN, ca_cn, x[2 * i - 1]);
      ch.ca[i] = place(ch.ca[i - 1], ch.c[i - 1], ch.n[i], ideal::kBondNCa, cn_ca, omega);
      ch.c[i] = place(ch.c[i - 1], ch.n[i], ch.ca[i], ideal::kBondCaC, nca_c, x[2 * i]);
    }
    // O opposite N_{i+1} about the C: with omega = 180 it lies in the peptide plane.
    ch.o[i] = place(ch.n[i], ch.ca[i], ch.c[i], ideal::kBondCO, ca_co, x[2 * i + 1] + kPi);
    const Vec a = (ch.n[i] - ch.ca[i]).normalized(), b = (ch.c[i] - ch.ca[i]).normalized();
    ch.cb[i] = ch.ca[i] + ideal::kBondCaCb * (cbf.alpha * a + cbf.beta * b + cbf.gamma * a.cross(b).normalized());
  }
}

// One restrained unordered pair i < j with the weights (already divided by W) and distances of
// both ordered pairs.
struct Pair {
  int32_t i, j;
  double w_ij, d_ij, w_ji, d_ji;
};

// The restraints in the form the objective loops over. Pairs are sorted by separation j - i, so
// the restraints up to a separation are a prefix of `pairs`.
struct Problem {
  int64_t L = 0;
  std::vector<Pair> pairs;
  std::vector<double> weight_sum;  // [pairs + 1] prefix sums of w_ij + w_ji (unnormalised)
  std::vector<double> phi, psi, tw;  // [L] predicted torsions and weights (tw already / L)
};

struct Workspace {
  Chain chain;
  std::vector<Vec> g_ca, g_cb;         // [L] dE/dCA, dE/dCB
  std::vector<double> ca_x, ca_y, ca_z;  // [L] CA again, as structure of arrays
  explicit Workspace(int64_t L) : chain(L), g_ca(L), g_cb(L), ca_x(L), ca_y(L), ca_z(L) {}
};

void check_restraints(const Restraints& r, int64_t L) {
  WENSU_CHECK(L >= 1, "reconstruct: the sequence is empty");
  WENSU_CHECK(r.L == L, "reconstruct: restraints are for L = ", r.L, " residues, the sequence has ", L);
  const size_t LL = size_t(L) * size_t(L);
  WENSU_CHECK((r.dist.empty() && r.weight.empty()) || (r.dist.size() == LL && r.weight.size() == LL),
              "reconstruct: dist and weight need L*L = ", LL, " values each (or both none), got ", r.dist.size(),
              " and ", r.weight.size());
  for (size_t k = 0; k < r.weight.size(); ++k) {
    const float w = r.weight[k];
    WENSU_CHECK(std::isfinite(w) && w >= 0, "reconstruct: weight[", k / L, "][", k % L, "] = ", w,
                ": weights must be finite and >= 0");
    WENSU_CHECK(w == 0 || std::isfinite(r.dist[k]), "reconstruct: dist[", k / L, "][", k % L,
                "] is not finite but has weight ", w);
  }
  WENSU_CHECK((r.phi.empty() && r.psi.empty()) || (int64_t(r.phi.size()) == L && int64_t(r.psi.size()) == L),
              "reconstruct: phi and psi need L = ", L, " values each (or both none), got ", r.phi.size(), " and ",
              r.psi.size());
  WENSU_CHECK(r.torsion_weight.empty() || (int64_t(r.torsion_weight.size()) == L && !r.phi.empty()),
              "reconstruct: torsion_weight needs L = ", L, " values and phi/psi to weigh (got ",
              r.torsion_weight.size(), " weights, ", r.phi.size(), " phi)");
  for (int64_t i = 0; i < int64_t(r.torsion_weight.size()); ++i) {
    const float t = r.torsion_weight[i];
    WENSU_CHECK(std::isfinite(t) && t >= 0, "reconstruct: torsion_weight[", i, "] = ", t,
                ": weights must be finite and >= 0");
    WENSU_CHECK(t == 0 || (std::isfinite(r.phi[i]) && std::isfinite(r.psi[i])), "reconstruct: phi/psi of residue ",
                i, " are not finite but have weight ", t);
  }
}

Problem make_problem(const Restraints& r, int64_t L) {
  check_restraints(r, L);
  Problem p;
  p.L = L;
  if (!r.weight.empty()) {
    for (int64_t s = 1; s < L; ++s)
      for (int64_t i = 0; i + s < L; ++i) {
        const int64_t j = i + s, ij = i * L + j, ji = j * L + i;
        if (r.weight[ij] > 0 || r.weight[ji] > 0)
          p.pairs.push_back({int32_t(i), int32_t(j), r.weight[ij], r.weight[ij] > 0 ? r.dist[ij] : 0.0,
                             r.weight[ji], r.weight[ji] > 0 ? r.dist[ji] : 0.0});
      }
  }
  p.weight_sum.assign(p.pairs.size() + 1, 0.0);
  for (size_t k = 0; k < p.pairs.size(); ++k)
    p.weight_sum[k + 1] = p.weight_sum[k] + p.pairs[k].w_ij + p.pairs[k].w_ji;
  p.phi.assign(L, 0.0);
  p.psi.assign(L, 0.0);
  p.tw.assign(L, 0.0);
  for (int64_t i = 0; i < L && !r.phi.empty(); ++i) {
    // A torsion with weight 0 may be a placeholder (NaN for "none"); it still seeds the first
    // starts, so such a residue starts as helix.
    p.phi[i] = std::isfinite(r.phi[i]) ? r.phi[i] : -57 * kDeg;
    p.psi[i] = std::isfinite(r.psi[i]) ? r.psi[i] : -47 * kDeg;
    if (!r.torsion_weight.empty()) p.tw[i] = r.torsion_weight[i] / double(L);
  }
  return p;
}

// The pseudo-Huber loss and its derivative.
inline double rho(double r) {
  const double s = r / kLossScale;
  return kLossScale * kLossScale * (std::sqrt(1 + s * s) - 1);
}
inline double drho(double r) {
  const double s = r / kLossScale;
  return r / std::sqrt(1 + s * s);
}

// E and dE/dx with the distance restraints limited to the first `npairs` pairs (a stage; their
// weights normalised over those pairs). x, grad: [L][2]; grad may be null.
double evaluate(const Problem& p, size_t npairs, const double* x, double* grad, Workspace& ws) {
  const int64_t L = p.L;
  Chain& ch = ws.chain;
  build_chain(x, ch);
  if (grad) {
    std::fill(ws.g_ca.begin(), ws.g_ca.end(), Vec::Zero());
    std::fill(ws.g_cb.begin(), ws.g_cb.end(), Vec::Zero());
  }

  double e_dist = 0;
  const double W = p.weight_sum[npairs];
  const double inv_w = W > 0 ? 1 / W : 0;
  for (size_t k = 0; k < npairs; ++k) {
    const Pair& q = p.pairs[k];
    const Vec diff = ch.cb[q.i] - ch.cb[q.j];
    const double d = std::max(diff.norm(), 1e-9);
    e_dist += q.w_ij * rho(d - q.d_ij) + q.w_ji * rho(d - q.d_ji);
    if (grad) {
      const Vec g = (inv_w * (q.w_ij * drho(d - q.d_ij) + q.w_ji * drho(d - q.d_ji)) / d) * diff;
      ws.g_cb[q.i] += g;
      ws.g_cb[q.j] -= g;
    }
  }

  // Clashes: all pairs j >= i + 3, an O(L^2) loop (unlike the restraint list). Clashes are rare,
  // so each row is first scanned for its nearest CA in SIMD lanes, on structure-of-arrays copies
  // of the coordinates, and only rows with a clash are walked again.
  double e_clash = 0;
  const double clash_scale = kClashWeight / double(L), r2 = kClashDistance * kClashDistance;
  double *cx = ws.ca_x.data(), *cy = ws.ca_y.data(), *cz = ws.ca_z.data();
  for (int64_t i = 0; i < L; ++i) cx[i] = ch.ca[i].x(), cy[i] = ch.ca[i].y(), cz[i] = ch.ca[i].z();
  for (int64_t i = 0; i + 3 < L; ++i) {
    const double xi = cx[i], yi = cy[i], zi = cz[i];
    double nearest = r2;
#pragma omp simd reduction(min : nearest)
    for (int64_t j = i + 3; j < L; ++j) {
      const double dx = xi - cx[j], dy = yi - cy[j], dz = zi - cz[j];
      nearest = std::min(nearest, dx * dx + dy * dy + dz * dz);
    }
    if (nearest >= r2) continue;
    for (int64_t j = i + 3; j < L; ++j) {
      const Vec diff = ch.ca[i] - ch.ca[j];
      const double d2 = diff.squaredNorm();
      if (d2 >= r2) continue;
      const double d = std::max(std::sqrt(d2), 1e-9), over = kClashDistance - d;
      e_clash += over * over;
      if (grad) {
        const Vec g = (-2 * clash_scale * over / d) * diff;
        ws.g_ca[i] += g;
        ws.g_ca[j] -= g;
      }
    }
  }

  double e_tors = 0;
  for (int64_t i = 0; i < L; ++i) {
    if (p.tw[i] == 0) continue;
    e_tors += p.tw[i] * (2 - std::cos(x[2 * i] - p.phi[i]) - std::cos(x[2 * i + 1] - p.psi[i]));
  }

  if (grad) {
    // Suffix sums from the C terminus. Atom order within residue i: N, CA, C, CB, O; phi_i turns
    // C_i, CB_i, O_i and everything after about N_i->CA_i, psi_i turns O_i and everything after
    // about CA_i->C_i. Only CA and CB carry gradient (N, C, O do not enter E).
    Vec S = Vec::Zero(), T = Vec::Zero();  // sum g_a, sum x_a x g_a over the atoms downstream
    for (int64_t i = L - 1; i >= 0; --i) {
      const Vec u_psi = (ch.c[i] - ch.ca[i]).normalized();
      grad[2 * i + 1] = u_psi.dot(T - ch.c[i].cross(S)) + p.tw[i] * std::sin(x[2 * i + 1] - p.psi[i]);
      S += ws.g_cb[i];
      T += ch.cb[i].cross(ws.g_cb[i]);
      const Vec u_phi = (ch.ca[i] - ch.n[i]).normalized();
      grad[2 * i] = u_phi.dot(T - ch.ca[i].cross(S)) + p.tw[i] * std::sin(x[2 * i] - p.phi[i]);
      S += ws.g_ca[i];
      T += ch.ca[i].cross(ws.g_ca[i]);
    }
  }
  return inv_w * e_dist + clash_scale * e_clash + e_tors;
}

// L-BFGS wants f(x, grad); this also remembers the best point seen, because LBFGSpp throws when a
// line search fails and leaves x at its last trial then.
struct Objective {
  Objective(const Problem& p, size_t npairs, Workspace& ws) : p(p), npairs(npairs), ws(ws) {}
  const Problem& p;
  size_t npairs;
  Workspace& ws;
  double best_f = std::numeric_limits<double>::infinity();
  Eigen::VectorXd best_x;
  double operator()(const Eigen::VectorXd& x, Eigen::VectorXd& g) {
    const double f = evaluate(p, npairs, x.data(), g.data(), ws);
    if (f < best_f) {
      best_f = f;
      best_x = x;
    }
    return f;
  }
};

// Minimises the stage's E from x (updated in place) for at most `iterations` L-BFGS iterations.
void minimise(const Problem& p, size_t npairs, int iterations, Eigen::VectorXd& x, Workspace& ws) {
  LBFGSpp::LBFGSParam<double> param;
  param.m = 10;
  param.epsilon = 1e-7;      // E is a mean of O(1) terms: this is converged
  param.epsilon_rel = 0;
  param.past = 5;            // or stop when 5 iterations gained less than 1e-8 relative
  param.delta = 1e-8;
  param.max_iterations = iterations;
  param.max_linesearch = 40;
  param.linesearch = LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_WOLFE;  // keeps s'y > 0 for the update
  LBFGSpp::LBFGSSolver<double> solver(param);
  Objective f(p, npairs, ws);
  double fx = 0;
  try {
    solver.minimize(f, x, fx);
  } catch (const std::exception&) {
    // The line search found no acceptable step: we are as far as L-BFGS gets; keep the best.
  }
  if (f.best_x.size() == x.size()) x = f.best_x;
}

// Stages by sequence separation: local restraints first, so secondary structure forms before
// the long-range ones pull on it (as trRosetta's folding protocol does, Yang et al. 2020).
// Measured in docs/fold.md: mean TM-score 0.71 without the stages, 0.96 with them.
constexpr int64_t kStageSeparations[] = {3, 12, 24};

void starting_torsions(const Problem& p, bool predicted, const std::string& sequence, int k, uint64_t seed,
                       Eigen::VectorXd& x) {
  const int64_t L = p.L;
  // A start's own generator: seed, start index, mixed (splitmix64) so neighbouring seeds differ.
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * uint64_t(k + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  std::mt19937_64 rng(z ^ (z >> 31));
  std::normal_distribution<double> gauss(0.0, 1.0);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  int kind = k + (predicted ? 0 : 2);  // 0 predicted, 1 predicted + noise, 2 helix, 3 strand, 4+ random
  if (kind > 4) kind = 4;
  for (int64_t i = 0; i < L; ++i) {
    double phi = 0, psi = 0;
    switch (kind) {
      case 0: phi = p.phi[i], psi = p.psi[i]; break;
      case 1: phi = p.phi[i] + 20 * kDeg * gauss(rng), psi = p.psi[i] + 20 * kDeg * gauss(rng); break;
      case 2: phi = -57 * kDeg, psi = -47 * kDeg; break;
      case 3: phi = -139 * kDeg, psi = 135 * kDeg; break;
      default: {
        // Allowed regions (centre, spread 15 degrees): alpha, beta, polyproline II; glycine
        // also visits left-handed alpha.
        const double u = unif(rng);
        const bool gly = sequence[i] == 'G';
        if (gly && u < 0.3) phi = 63, psi = 35;
        else if (u < 0.55) phi = -63, psi = -43;
        else if (u < 0.85) phi = -120, psi = 130;
        else phi = -70, psi = 145;
        phi = (phi + 15 * gauss(rng)) * kDeg;
        psi = (psi + 15 * gauss(rng)) * kDeg;
      }
    }
    x[2 * i] = phi;
    x[2 * i + 1] = psi;
  }
}

// The chain as a Backbone, moved so that the CA centroid is at the origin when `centred`.
Backbone to_backbone(const std::string& sequence, const Chain& ch, bool centred) {
  const size_t L = ch.ca.size();
  Vec centre = Vec::Zero();
  if (centred) {
    for (const Vec& a : ch.ca) centre += a;
    centre /= double(L);
  }
  auto f = [&](const std::vector<Vec>& src, std::vector<Vec3>& dst) {
    dst.resize(L);
    for (size_t i = 0; i < L; ++i)
      for (int k = 0; k < 3; ++k) dst[i][k] = float(src[i][k] - centre[k]);
  };
  Backbone bb;
  bb.sequence = sequence;
  f(ch.n, bb.n);
  f(ch.ca, bb.ca);
  f(ch.c, bb.c);
  f(ch.o, bb.o);
  f(ch.cb, bb.cb);
  return bb;
}

}  // namespace

Backbone build_backbone(const std::string& sequence, const std::vector<double>& torsions) {
  const int64_t L = int64_t(sequence.size());
  WENSU_CHECK(L >= 1, "build_backbone: the sequence is empty");
  WENSU_CHECK(int64_t(torsions.size()) == 2 * L, "build_backbone: ", torsions.size(),
              " torsions for a sequence of ", L, " residues: need 2L (phi, psi per residue)");
  Chain ch(L);
  build_chain(torsions.data(), ch);
  return to_backbone(sequence, ch, false);  // the documented frame: N_0 at the origin
}

double reconstruction_objective(const Restraints& r, const std::vector<double>& torsions, std::vector<double>* grad) {
  const Problem p = make_problem(r, r.L);
  WENSU_CHECK(int64_t(torsions.size()) == 2 * r.L, "reconstruction_objective: ", torsions.size(),
              " torsions for L = ", r.L, ": need 2L");
  Workspace ws(r.L);
  if (grad) grad->assign(2 * r.L, 0.0);
  return evaluate(p, p.pairs.size(), torsions.data(), grad ? grad->data() : nullptr, ws);
}

Reconstruction reconstruct(const std::string& sequence, const Restraints& r, const ReconstructOptions& o) {
  const int64_t L = int64_t(sequence.size());
  const Problem p = make_problem(r, L);
  WENSU_CHECK(o.starts >= 1, "reconstruct: starts = ", o.starts, ": need at least 1");
  WENSU_CHECK(o.max_iterations >= 1, "reconstruct: max_iterations = ", o.max_iterations, ": need at least 1");
  const bool predicted = !r.phi.empty();

  // Stage ends (number of pairs) and iteration budgets: each partial stage gets a sixth of the
  // iterations, the full objective the rest.
  std::vector<size_t> ends;
  for (int64_t sep : kStageSeparations) {
    const size_t end = std::partition_point(p.pairs.begin(), p.pairs.end(),
                                            [&](const Pair& q) { return q.j - q.i <= sep; }) - p.pairs.begin();
    if (end > 0 && end < p.pairs.size() && (ends.empty() || end > ends.back())) ends.push_back(end);
  }
  const int partial_iterations = std::max(1, o.max_iterations / 6);
  const int full_iterations = std::max(1, o.max_iterations - partial_iterations * int(ends.size()));
  ends.push_back(p.pairs.size());

  std::vector<std::vector<double>> result(o.starts);
  std::vector<double> objective(o.starts);
  std::vector<std::exception_ptr> errors(o.starts);
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < o.starts; ++k) {
    try {
      Workspace ws(L);
      Eigen::VectorXd x(2 * L);
      starting_torsions(p, predicted, sequence, k, o.seed, x);
      for (size_t s = 0; s < ends.size(); ++s)
        minimise(p, ends[s], s + 1 < ends.size() ? partial_iterations : full_iterations, x, ws);
      objective[k] = evaluate(p, p.pairs.size(), x.data(), nullptr, ws);
      result[k].assign(x.data(), x.data() + x.size());
    } catch (...) {
      errors[k] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);

  int best = 0;
  for (int k = 1; k < o.starts; ++k)
    if (objective[k] < objective[best]) best = k;  // ties: the lower index, whatever the threads
  Chain ch(L);
  build_chain(result[best].data(), ch);
  Reconstruction out;
  out.backbone = to_backbone(sequence, ch, true);
  out.objective = objective[best];
  out.start = best;
  out.objectives = objective;
  return out;
}

}  // namespace wensu::fold
