// wensu::fold reconstruction: the NeRF chain has ideal bonds and angles, reproduces the torsions
// it was given (measured with an independent dihedral formula) and puts CB where real L-amino
// acids have it; the objective equals its definition evaluated on the built atoms and its
// analytic gradient equals central differences (double precision); the minimiser recovers a
// real chain (tests/data/recon/5eep_40-99.pdb) from its own distances, with and without torsions,
// and not as the mirror image; the same seed gives the same coordinates on any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/fold/reconstruct.h"
#include "wensu/fold/score.h"
#include "wensu/fold/structure.h"
#include "wensu/fold/structure_db.h"

using namespace wensu;
using namespace wensu::fold;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kDeg = kPi / 180;

std::mt19937_64 fresh_rng() { return std::mt19937_64(std::random_device{}()); }

Point P(const Vec3& v) { return {v[0], v[1], v[2]}; }
Point sub(const Point& a, const Point& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
double dot(const Point& a, const Point& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Point cross(const Point& a, const Point& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Point& a) { return std::sqrt(dot(a, a)); }
double dist(const Vec3& a, const Vec3& b) { return norm(sub(P(a), P(b))); }
// Bond angle a-b-c in degrees.
double angle(const Vec3& a, const Vec3& b, const Vec3& c) {
  const Point u = sub(P(a), P(b)), v = sub(P(c), P(b));
  return std::acos(dot(u, v) / (norm(u) * norm(v))) / kDeg;
}
// IUPAC dihedral a-b-c-d in radians (Blondel & Karplus' atan2 form), independent of the NeRF
// code under test: positive when, looking along b->c, d is turned clockwise from a.
double dihedral(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d) {
  const Point b0 = sub(P(b), P(a)), b1 = sub(P(c), P(b)), b2 = sub(P(d), P(c));
  const Point n1 = cross(b0, b1), n2 = cross(b1, b2);
  return std::atan2(dot(cross(n1, n2), b1) / norm(b1), dot(n1, n2));
}
double wrap(double a) { return std::remainder(a, 2 * kPi); }

std::vector<double> random_torsions(int64_t L, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-kPi, kPi);
  std::vector<double> x(2 * L);
  for (double& t : x) t = u(rng);
  return x;
}

// The chain's phi/psi, measured from its atoms; phi_0 and psi_{L-1} (undefined) are set to 0.
void measured_torsions(const Backbone& bb, std::vector<float>& phi, std::vector<float>& psi) {
  const size_t L = bb.size();
  phi.assign(L, 0.f);
  psi.assign(L, 0.f);
  for (size_t i = 0; i < L; ++i) {
    if (i > 0) phi[i] = float(dihedral(bb.c[i - 1], bb.n[i], bb.ca[i], bb.c[i]));
    if (i + 1 < L) psi[i] = float(dihedral(bb.n[i], bb.ca[i], bb.c[i], bb.n[i + 1]));
  }
}

// The ideal CB of each residue from its real N, CA, C: what training targets use.
std::vector<Vec3> ideal_cbs(const Backbone& bb) {
  std::vector<Vec3> cb(bb.size());
  for (size_t i = 0; i < bb.size(); ++i) cb[i] = ideal_cb(bb.n[i].data(), bb.ca[i].data(), bb.c[i].data());
  return cb;
}

// Exact CB-CB distances of a chain, weight 1 for every pair closer than 20 Å, 0 for the rest.
Restraints distance_restraints(const std::vector<Vec3>& cb) {
  const int64_t L = int64_t(cb.size());
  Restraints r;
  r.L = L;
  r.dist.assign(L * L, 0.f);
  r.weight.assign(L * L, 0.f);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      r.dist[i * L + j] = float(dist(cb[i], cb[j]));
      r.weight[i * L + j] = (i != j && r.dist[i * L + j] < 20.f) ? 1.f : 0.f;
    }
  return r;
}

std::vector<Point> ca_points(const Backbone& bb, bool mirror = false) {
  std::vector<Point> p(bb.size());
  for (size_t i = 0; i < bb.size(); ++i) p[i] = {bb.ca[i][0], bb.ca[i][1], mirror ? -bb.ca[i][2] : bb.ca[i][2]};
  return p;
}

Backbone real_chain() { return read_backbone(test::test_data_dir() + "/recon/5eep_40-99.pdb"); }

// The objective written out from its definition (reconstruct.h) on the atoms of a built chain.
double objective_from_definition(const Restraints& r, const std::vector<double>& x, const Backbone& bb) {
  const int64_t L = r.L;
  double e = 0, w = 0, clash = 0, tors = 0;
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      if (i == j) continue;
      const double res = dist(bb.cb[i], bb.cb[j]) - r.dist[i * L + j];
      e += r.weight[i * L + j] * kLossScale * kLossScale * (std::sqrt(1 + res * res / (kLossScale * kLossScale)) - 1);
      w += r.weight[i * L + j];
      if (j >= i + 3) clash += std::pow(std::max(0.0, kClashDistance - dist(bb.ca[i], bb.ca[j])), 2);
    }
  for (int64_t i = 0; i < L; ++i)
    tors += r.torsion_weight[i] * (2 - std::cos(x[2 * i] - r.phi[i]) - std::cos(x[2 * i + 1] - r.psi[i]));
  return e / w + kClashWeight * clash / L + tors / L;
}

}  // namespace

TEST(ReconstructGeometry, IdealBondsAnglesAndTheGivenTorsions) {
  auto rng = fresh_rng();
  const int64_t L = 12;
  const std::vector<double> x = random_torsions(L, rng);
  const Backbone bb = build_backbone(std::string(L, 'A'), x);
  ASSERT_EQ(bb.size(), size_t(L));
  ASSERT_EQ(bb.cb.size(), size_t(L));
  constexpr double tb = 1e-4, ta = 0.01, tt = 0.01 * kDeg;  // float coordinates
  for (int64_t i = 0; i < L; ++i) {
    SCOPED_TRACE("residue " + std::to_string(i));
    EXPECT_NEAR(dist(bb.n[i], bb.ca[i]), ideal::kBondNCa, tb);
    EXPECT_NEAR(dist(bb.ca[i], bb.c[i]), ideal::kBondCaC, tb);
    EXPECT_NEAR(dist(bb.c[i], bb.o[i]), ideal::kBondCO, tb);
    EXPECT_NEAR(dist(bb.ca[i], bb.cb[i]), ideal::kBondCaCb, tb);
    EXPECT_NEAR(angle(bb.n[i], bb.ca[i], bb.c[i]), ideal::kAngleNCaC, ta);
    EXPECT_NEAR(angle(bb.ca[i], bb.c[i], bb.o[i]), ideal::kAngleCaCO, ta);
    EXPECT_NEAR(angle(bb.n[i], bb.ca[i], bb.cb[i]), ideal::kAngleNCaCb, ta);
    EXPECT_NEAR(angle(bb.c[i], bb.ca[i], bb.cb[i]), ideal::kAngleCCaCb, ta);
    if (i > 0) EXPECT_NEAR(wrap(dihedral(bb.c[i - 1], bb.n[i], bb.ca[i], bb.c[i]) - x[2 * i]), 0, tt);
    if (i + 1 == L) continue;
    EXPECT_NEAR(dist(bb.c[i], bb.n[i + 1]), ideal::kBondCN, tb);
    EXPECT_NEAR(angle(bb.ca[i], bb.c[i], bb.n[i + 1]), ideal::kAngleCaCN, ta);
    EXPECT_NEAR(angle(bb.c[i], bb.n[i + 1], bb.ca[i + 1]), ideal::kAngleCNCa, ta);
    EXPECT_NEAR(wrap(dihedral(bb.n[i], bb.ca[i], bb.c[i], bb.n[i + 1]) - x[2 * i + 1]), 0, tt);
    EXPECT_NEAR(wrap(dihedral(bb.ca[i], bb.c[i], bb.n[i + 1], bb.ca[i + 1]) - ideal::kOmega * kDeg), 0, tt);
    // O in the peptide plane, cis to CA_{i+1}; the three angles at C then sum to 360 degrees.
    EXPECT_NEAR(wrap(dihedral(bb.o[i], bb.c[i], bb.n[i + 1], bb.ca[i + 1])), 0, tt);
    EXPECT_NEAR(angle(bb.ca[i], bb.c[i], bb.o[i]) + angle(bb.o[i], bb.c[i], bb.n[i + 1]) +
                    angle(bb.ca[i], bb.c[i], bb.n[i + 1]),
                360, 3 * ta);
  }
}

// Chirality. The improper dihedral CA-N-C-CB (IUPAC sign, the formula above) says on which side
// of the N-CA-C plane the CB sits: about +34 degrees for L-amino acids, -34 for D (texts that
// quote -34 use the opposite sign convention or order). The reference is measured, not typed in:
// the real CBs of Zif268 finger 1 (tests/data/fold/1zaa1.pdb, X-ray, all heavy atoms). Every
// non-glycine residue there must have the sign of the built CB, the built value must lie within
// the range of theirs and near their mean, and so must the proper dihedral C-N-CA-CB.
TEST(ReconstructGeometry, CbHasTheChiralityOfRealLAminoAcids) {
  auto rng = fresh_rng();
  const Backbone built = build_backbone("AAAAAAAA", random_torsions(8, rng));
  const double b = dihedral(built.ca[3], built.n[3], built.c[3], built.cb[3]) / kDeg;
  const double b_proper = dihedral(built.c[3], built.n[3], built.ca[3], built.cb[3]) / kDeg;
  for (size_t i = 0; i < built.size(); ++i)
    EXPECT_NEAR(dihedral(built.ca[i], built.n[i], built.c[i], built.cb[i]) / kDeg, b, 1e-2);

  const Backbone real = read_backbone(test::test_data_dir() + "/fold/1zaa1.pdb");
  ASSERT_EQ(real.cb.size(), real.size());
  double lo = 1e9, hi = -1e9, mean = 0, mean_proper = 0;
  int n = 0;
  for (size_t i = 0; i < real.size(); ++i) {
    if (real.sequence[i] == 'G' || std::isnan(real.cb[i][0])) continue;
    const double r = dihedral(real.ca[i], real.n[i], real.c[i], real.cb[i]) / kDeg;
    EXPECT_GT(r * b, 0) << "residue " << i << " of 1zaa1: improper " << r << ", built " << b;
    lo = std::min(lo, r), hi = std::max(hi, r);
    mean += r;
    mean_proper += dihedral(real.c[i], real.n[i], real.ca[i], real.cb[i]) / kDeg;
    ++n;
  }
  ASSERT_GE(n, 20);
  mean /= n, mean_proper /= n;
  std::printf("CA-N-C-CB improper: built %.1f, 1zaa1 mean %.1f (%.1f .. %.1f); C-N-CA-CB: built %.1f, 1zaa1 %.1f\n",
              b, mean, lo, hi, b_proper, mean_proper);
  EXPECT_GE(b, lo);
  EXPECT_LE(b, hi);
  EXPECT_NEAR(b, mean, 3);
  EXPECT_NEAR(b_proper, mean_proper, 3);
}

// Restraints with every term active: random asymmetric distances and weights (some zero), random
// torsion predictions and weights, and a conformation with at least one CA-CA clash.
TEST(ReconstructObjective, MatchesDefinitionAndFiniteDifferences) {
  auto rng = fresh_rng();
  const int64_t L = 20;
  std::uniform_real_distribution<double> u(0, 1);
  Restraints r;
  r.L = L;
  r.dist.resize(L * L);
  r.weight.resize(L * L);
  for (int64_t k = 0; k < L * L; ++k) {
    r.dist[k] = float(4 + 16 * u(rng));
    r.weight[k] = u(rng) < 0.2 ? 0.f : float(u(rng));
  }
  r.phi.resize(L), r.psi.resize(L), r.torsion_weight.resize(L);
  for (int64_t i = 0; i < L; ++i) {
    r.phi[i] = float(kPi * (2 * u(rng) - 1));
    r.psi[i] = float(kPi * (2 * u(rng) - 1));
    r.torsion_weight[i] = float(u(rng));
  }
  // Random torsions until the chain clashes somewhere, so the clash term is tested too.
  std::vector<double> x;
  int clashes = 0;
  for (int attempt = 0; attempt < 10000 && clashes == 0; ++attempt) {
    x = random_torsions(L, rng);
    const Backbone bb = build_backbone(std::string(L, 'A'), x);
    clashes = 0;
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = i + 3; j < L; ++j) clashes += dist(bb.ca[i], bb.ca[j]) < kClashDistance - 0.05;
  }
  ASSERT_GT(clashes, 0);

  std::vector<double> grad;
  const double e = reconstruction_objective(r, x, &grad);
  EXPECT_NEAR(e, objective_from_definition(r, x, build_backbone(std::string(L, 'A'), x)), 1e-5 * e);
  ASSERT_EQ(grad.size(), size_t(2 * L));
  const double h = 1e-6;
  for (int64_t k = 0; k < 2 * L; ++k) {
    std::vector<double> xp = x, xm = x;
    xp[k] += h, xm[k] -= h;
    const double fd = (reconstruction_objective(r, xp, nullptr) - reconstruction_objective(r, xm, nullptr)) / (2 * h);
    EXPECT_NEAR(grad[k], fd, 1e-7 + 1e-6 * std::abs(fd)) << (k % 2 ? "psi_" : "phi_") << k / 2;
  }
}

TEST(Reconstruct, RecoversARealChainFromDistancesAndTorsions) {
  const Backbone ref = real_chain();
  const int64_t L = int64_t(ref.size());
  ASSERT_EQ(L, 60);
  Restraints r = distance_restraints(ideal_cbs(ref));
  measured_torsions(ref, r.phi, r.psi);
  r.torsion_weight.assign(L, 1.f);
  r.torsion_weight[0] = 0.f;  // phi_0 and psi_{L-1} are undefined; they move nothing anyway
  const Reconstruction rec = reconstruct(ref.sequence, r, {.starts = 4, .max_iterations = 500, .seed = 1});
  EXPECT_EQ(rec.backbone.sequence, ref.sequence);
  const double rmsd = score_ca(ca_points(rec.backbone), ca_points(ref)).rmsd;
  const double rmsd_mirror = score_ca(ca_points(rec.backbone), ca_points(ref, true)).rmsd;
  RecordProperty("ca_rmsd", std::to_string(rmsd));
  std::printf("distances + torsions: CA RMSD %.3f A (to the mirror image %.2f A), E %.5f, start %d\n", rmsd,
              rmsd_mirror, rec.objective, rec.start);
  EXPECT_LT(rmsd, 1.0);
  EXPECT_GT(rmsd_mirror, 5.0);
}

TEST(Reconstruct, RecoversARealChainFromDistancesOnly) {
  const Backbone ref = real_chain();
  const Restraints r = distance_restraints(ideal_cbs(ref));  // no phi/psi: starts are helix, strand, random
  const Reconstruction rec = reconstruct(ref.sequence, r, {.starts = 8, .max_iterations = 500, .seed = 7});
  const ScoreResult s = score_ca(ca_points(rec.backbone), ca_points(ref));
  const ScoreResult m = score_ca(ca_points(rec.backbone), ca_points(ref, true));
  std::printf("distances only: TM-score %.3f, CA RMSD %.3f A (mirror image: TM %.3f), E %.5f, start %d\n",
              s.tm_score, s.rmsd, m.tm_score, rec.objective, rec.start);
  EXPECT_GT(s.tm_score, 0.8);
  EXPECT_LT(s.rmsd, 2.0);
  EXPECT_LT(m.tm_score, 0.5);
}

TEST(Reconstruct, SameSeedSameCoordinatesOnAnyThreadCount) {
  const Backbone ref = real_chain();
  Restraints r = distance_restraints(ideal_cbs(ref));
  const ReconstructOptions o{.starts = 3, .max_iterations = 60, .seed = 42};
  const Reconstruction a = reconstruct(ref.sequence, r, o);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Reconstruction b = reconstruct(ref.sequence, r, o);
  omp_set_num_threads(threads);
  EXPECT_EQ(a.start, b.start);
  EXPECT_EQ(a.objective, b.objective);
  EXPECT_EQ(a.objectives, b.objectives);
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(a.backbone.ca[i], b.backbone.ca[i]) << i;
    EXPECT_EQ(a.backbone.cb[i], b.backbone.cb[i]) << i;
    EXPECT_EQ(a.backbone.o[i], b.backbone.o[i]) << i;
  }
}

TEST(Reconstruct, RejectsRestraintsThatDoNotFit) {
  Restraints r;
  r.L = 3;
  r.dist.assign(9, 5.f);
  r.weight.assign(9, 1.f);
  auto message = [&](const std::string& seq) {
    try {
      reconstruct(seq, r);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("AAAA").find("L = 3 residues, the sequence has 4"), std::string::npos) << message("AAAA");
  r.weight[5] = -1.f;
  EXPECT_NE(message("AAA").find("weight[1][2] = -1"), std::string::npos) << message("AAA");
  r.weight[5] = 1.f;
  r.dist.resize(8);
  EXPECT_NE(message("AAA").find("L*L = 9"), std::string::npos) << message("AAA");
  r.dist.assign(9, 5.f);
  r.torsion_weight.assign(3, 1.f);
  EXPECT_NE(message("AAA").find("phi/psi to weigh"), std::string::npos) << message("AAA");
  r.torsion_weight.clear();
  EXPECT_EQ(message("AAA"), "no error");
}
