// wensu::fold structures and scores: Kabsch against Horn's quaternion solution (an independent
// closed form) on fresh random rotations and on mirror images; lDDT-CA against a plain loop;
// TM-score consistent with its own formula and equal to TMscore's on the fixtures of
// tests/data/score/ (made by scripts/fold/check-score.sh); PDB / mmCIF / gzip round trips;
// chain choice; errors that name the files.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/core/check.h"
#include "wensu/fold/score.h"
#include "wensu/fold/structure.h"

using namespace wensu;
using namespace wensu::fold;
namespace fs = std::filesystem;

namespace {

std::mt19937_64 fresh_rng() { return std::mt19937_64(std::random_device{}()); }

// A chain-like CA trace: steps of 3.8 Å in random directions, so near residues fall within
// lDDT's 15 Å and the cloud is not planar (a mirror image cannot be rotated onto it).
std::vector<Point> random_chain(int64_t L, std::mt19937_64& rng) {
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<Point> p(L);
  Point x{g(rng) * 10, g(rng) * 10, g(rng) * 10};
  for (auto& q : p) {
    q = x;
    Point d{g(rng), g(rng), g(rng)};
    const double n = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (int k = 0; k < 3; ++k) x[k] += 3.8 * d[k] / n;
  }
  return p;
}

Eigen::Matrix3d random_rotation(std::mt19937_64& rng) {
  std::normal_distribution<double> g(0.0, 1.0);
  return Eigen::Quaterniond(g(rng), g(rng), g(rng), g(rng)).normalized().toRotationMatrix();
}

std::vector<Point> moved(const std::vector<Point>& p, const Eigen::Matrix3d& R, const Eigen::Vector3d& t) {
  std::vector<Point> out(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const Eigen::Vector3d y = R * Eigen::Vector3d(p[i][0], p[i][1], p[i][2]) + t;
    out[i] = {y(0), y(1), y(2)};
  }
  return out;
}

// Reference: the least RMSD over proper rotations by Horn's quaternion method (1987): the
// largest eigenvalue of a symmetric 4x4 matrix built from the covariance. No SVD, no sign fix.
double horn_rmsd(const std::vector<Point>& x, const std::vector<Point>& y) {
  const double n = static_cast<double>(x.size());
  Eigen::Vector3d cx = Eigen::Vector3d::Zero(), cy = Eigen::Vector3d::Zero();
  for (size_t i = 0; i < x.size(); ++i) {
    cx += Eigen::Vector3d(x[i][0], x[i][1], x[i][2]) / n;
    cy += Eigen::Vector3d(y[i][0], y[i][1], y[i][2]) / n;
  }
  Eigen::Matrix3d S = Eigen::Matrix3d::Zero();
  double e0 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const Eigen::Vector3d a = Eigen::Vector3d(x[i][0], x[i][1], x[i][2]) - cx;
    const Eigen::Vector3d b = Eigen::Vector3d(y[i][0], y[i][1], y[i][2]) - cy;
    S += a * b.transpose();
    e0 += a.squaredNorm() + b.squaredNorm();
  }
  Eigen::Matrix4d N;
  N << S(0, 0) + S(1, 1) + S(2, 2), S(1, 2) - S(2, 1), S(2, 0) - S(0, 2), S(0, 1) - S(1, 0),
      S(1, 2) - S(2, 1), S(0, 0) - S(1, 1) - S(2, 2), S(0, 1) + S(1, 0), S(2, 0) + S(0, 2),
      S(2, 0) - S(0, 2), S(0, 1) + S(1, 0), -S(0, 0) + S(1, 1) - S(2, 2), S(1, 2) + S(2, 1),
      S(0, 1) - S(1, 0), S(2, 0) + S(0, 2), S(1, 2) + S(2, 1), -S(0, 0) - S(1, 1) + S(2, 2);
  const double lmax = Eigen::SelfAdjointEigenSolver<Eigen::Matrix4d>(N).eigenvalues().maxCoeff();
  return std::sqrt(std::max(0.0, (e0 - 2 * lmax) / n));
}

double det(const Superposition& s) {
  Eigen::Matrix3d R;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) R(i, j) = s.rotation[i][j];
  return R.determinant();
}

double distance(const Point& a, const Point& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

// Reference lDDT: every ordered pair, the four thresholds counted separately and averaged.
double lddt_reference(const std::vector<Point>& pred, const std::vector<Point>& ref) {
  const double thresholds[4] = {0.5, 1.0, 2.0, 4.0};
  double frac_sum = 0;
  for (double t : thresholds) {
    double considered = 0, preserved = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      for (size_t j = 0; j < ref.size(); ++j) {
        if (i == j || distance(ref[i], ref[j]) >= 15.0) continue;
        considered += 1;
        preserved += std::abs(distance(pred[i], pred[j]) - distance(ref[i], ref[j])) < t;
      }
    frac_sum += considered > 0 ? preserved / considered : 0.0;
  }
  return frac_sum / 4;
}

// TM-score of one given superposition, by the formula.
double tm_of(const Superposition& s, const std::vector<Point>& pred, const std::vector<Point>& ref) {
  const double L = static_cast<double>(ref.size());
  const double d0 = 1.24 * std::cbrt(L - 15) - 1.8;
  double sum = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = distance(s.apply(pred[i]), ref[i]);
    sum += 1 / (1 + (d / d0) * (d / d0));
  }
  return sum / L;
}

std::vector<Point> noisy(const std::vector<Point>& p, double sigma, std::mt19937_64& rng) {
  std::normal_distribution<double> g(0.0, sigma);
  std::vector<Point> out = p;
  for (auto& q : out)
    for (double& c : q) c += g(rng);
  return out;
}

using test::error_of;

class StructureFiles : public wensu::test::CliTest {};

// A backbone with plausible geometry-free coordinates, a glycine without CB, an unknown residue.
Backbone sample_backbone(std::mt19937_64& rng, int64_t L) {
  std::uniform_real_distribution<float> u(-60.0f, 60.0f), conf(0.0f, 100.0f);
  const std::string aa = "ACDEFGHIKLMNPQRSTVWYX";
  Backbone bb;
  bb.id = "sample";
  for (int64_t i = 0; i < L; ++i) {
    bb.sequence.push_back(aa[i % aa.size()]);
    for (auto* v : {&bb.n, &bb.ca, &bb.c, &bb.o, &bb.cb}) v->push_back({u(rng), u(rng), u(rng)});
    bb.confidence.push_back(conf(rng));
  }
  const float nan = std::nanf("");
  for (int64_t i = 0; i < L; ++i)
    if (bb.sequence[i] == 'G') bb.cb[i] = {nan, nan, nan};
  return bb;
}

void expect_same_backbone(const Backbone& got, const Backbone& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  EXPECT_EQ(got.sequence, want.sequence) << what;
  ASSERT_EQ(got.cb.size(), want.cb.size()) << what;
  ASSERT_EQ(got.confidence.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(got.n[i][k], want.n[i][k], 1e-3) << what << " residue " << i;
      EXPECT_NEAR(got.ca[i][k], want.ca[i][k], 1e-3) << what << " residue " << i;
      EXPECT_NEAR(got.c[i][k], want.c[i][k], 1e-3) << what << " residue " << i;
      EXPECT_NEAR(got.o[i][k], want.o[i][k], 1e-3) << what << " residue " << i;
      if (std::isnan(want.cb[i][k]))
        EXPECT_TRUE(std::isnan(got.cb[i][k])) << what << " residue " << i;
      else
        EXPECT_NEAR(got.cb[i][k], want.cb[i][k], 1e-3) << what << " residue " << i;
    }
    // PDB writes B as %6.2f: half the last digit, plus float rounding at the tie.
    EXPECT_NEAR(got.confidence[i], want.confidence[i], 6e-3) << what << " residue " << i;
  }
}

void gzip_file(const std::string& from, const std::string& to) {
  const std::string text = wensu::test::read_text(from);
  gzFile gz = gzopen(to.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(gz);
}

}  // namespace

TEST(Superpose, RecoversARandomRotationAndTranslation) {
  auto rng = fresh_rng();
  std::normal_distribution<double> g(0.0, 20.0);
  for (int64_t L : {3, 10, 57, 300}) {
    const std::vector<Point> x = random_chain(L, rng);
    const Eigen::Matrix3d R = random_rotation(rng);
    const Eigen::Vector3d t(g(rng), g(rng), g(rng));
    const std::vector<Point> y = moved(x, R, t);
    const Superposition s = superpose(x, y);
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) EXPECT_NEAR(s.rotation[i][j], R(i, j), 1e-9) << "L=" << L;
      EXPECT_NEAR(s.translation[i], t(i), 1e-8) << "L=" << L;
    }
    EXPECT_NEAR(rmsd_after(s, x, y), 0.0, 1e-9);
    const ScoreResult r = score_ca(x, y);
    EXPECT_NEAR(r.rmsd, 0.0, 1e-9);
    EXPECT_NEAR(r.tm_score, 1.0, 1e-12);
    EXPECT_NEAR(r.gdt_ts, 1.0, 1e-12);
    EXPECT_NEAR(r.lddt_ca, 1.0, 1e-12);
    EXPECT_EQ(r.length, L);
  }
}

TEST(Superpose, RmsdIsTheOptimumOverRotations) {
  auto rng = fresh_rng();
  for (double sigma : {0.5, 3.0, 30.0}) {
    const std::vector<Point> x = random_chain(80, rng);
    const std::vector<Point> y = noisy(moved(x, random_rotation(rng), Eigen::Vector3d(5, -7, 11)), sigma, rng);
    const Superposition s = superpose(x, y);
    EXPECT_NEAR(det(s), 1.0, 1e-12);
    EXPECT_NEAR(rmsd_after(s, x, y), horn_rmsd(x, y), 1e-9) << "sigma " << sigma;
  }
}

TEST(Superpose, AMirrorImageIsNotTakenForARotation) {
  auto rng = fresh_rng();
  for (int rep = 0; rep < 5; ++rep) {
    const std::vector<Point> x = random_chain(40, rng);
    std::vector<Point> y = moved(x, random_rotation(rng), Eigen::Vector3d(1, 2, 3));
    for (auto& p : y) p[0] = -p[0];  // reflect: the best orthogonal map is a reflection
    const Superposition s = superpose(x, y);
    EXPECT_NEAR(det(s), 1.0, 1e-12) << "a reflection came back as the superposition";
    const double rmsd = rmsd_after(s, x, y);
    EXPECT_NEAR(rmsd, horn_rmsd(x, y), 1e-9);
    EXPECT_GT(rmsd, 1.0) << "a mirrored random chain superposed too well";
    // lDDT cannot tell a mirror image (distances are the same): that is its definition.
    EXPECT_NEAR(lddt_ca(x, y), 1.0, 1e-12);
  }
}

TEST(LddtCa, MatchesThePlainLoop) {
  auto rng = fresh_rng();
  for (double sigma : {0.2, 0.8, 2.0, 6.0}) {
    const std::vector<Point> ref = random_chain(120, rng);
    const std::vector<Point> pred = noisy(ref, sigma, rng);
    const double want = lddt_reference(pred, ref);
    EXPECT_NEAR(lddt_ca(pred, ref), want, 1e-12) << "sigma " << sigma;
    // Superposition-free: moving the prediction changes nothing.
    EXPECT_NEAR(lddt_ca(moved(pred, random_rotation(rng), Eigen::Vector3d(9, 9, 9)), ref), want, 1e-12);
  }
  // Nothing within 15 Å: defined as 0.
  EXPECT_EQ(lddt_ca({{0, 0, 0}, {40, 0, 0}}, {{0, 0, 0}, {40, 0, 0}}), 0.0);
}

TEST(TmScore, IsTheFormulaAtTheBestSuperpositionAndBeatsTheGlobalOne) {
  auto rng = fresh_rng();
  for (double sigma : {0.5, 2.0, 5.0}) {
    const std::vector<Point> ref = random_chain(100, rng);
    std::vector<Point> pred = noisy(ref, sigma, rng);
    // A hinge: the second half moved rigidly, which the global superposition cannot follow.
    const std::vector<Point> tail = moved(std::vector<Point>(pred.begin() + 50, pred.end()), random_rotation(rng),
                                          Eigen::Vector3d(3, 0, 0));
    std::copy(tail.begin(), tail.end(), pred.begin() + 50);
    const TmSearch tm = tm_search(pred, ref);
    EXPECT_NEAR(tm.tm_score, tm_of(tm.best, pred, ref), 1e-12);
    EXPECT_GE(tm.tm_score, tm_of(superpose(pred, ref), pred, ref) - 1e-12);
    EXPECT_LE(tm.tm_score, 1.0);
    EXPECT_GT(tm.gdt_ts, 0.0);
    EXPECT_LE(tm.gdt_ts, 1.0);
  }
  EXPECT_NEAR(tm_d0(100), 1.24 * std::cbrt(85.0) - 1.8, 1e-12);
  EXPECT_EQ(tm_d0(10), 0.5);
  EXPECT_EQ(tm_d0(16), 0.5);  // 1.24 - 1.8 < 0.5
}

// TMscore's own numbers, stored by scripts/fold/check-score.sh.
TEST(TmScore, AgreesWithTheTMscoreProgram) {
  const std::string dir = wensu::test::test_data_dir() + "/score/";
  std::ifstream csv(dir + "tmscore.csv");
  ASSERT_TRUE(csv.is_open()) << dir << "tmscore.csv";
  std::string line;
  int pairs = 0;
  while (std::getline(csv, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("pred,", 0) == 0) continue;
    std::stringstream ss(line);
    std::string pred, ref, field;
    std::getline(ss, pred, ',');
    std::getline(ss, ref, ',');
    double want[3];
    for (double& w : want) {
      std::getline(ss, field, ',');
      w = std::stod(field);
    }
    std::getline(ss, field, ',');
    const ScoreResult r = score_structures(read_backbone(dir + pred), read_backbone(dir + ref));
    EXPECT_NEAR(r.tm_score, want[0], 0.01) << pred << " vs " << ref;
    EXPECT_NEAR(r.rmsd, want[1], 0.01) << pred << " vs " << ref;
    EXPECT_NEAR(r.gdt_ts, want[2], 0.01) << pred << " vs " << ref;
    EXPECT_EQ(r.length, std::stoll(field)) << pred << " vs " << ref;
    ++pairs;
  }
  EXPECT_GE(pairs, 4);
}

TEST_F(StructureFiles, PdbAndMmcifRoundTrip) {
  auto rng = fresh_rng();
  const Backbone bb = sample_backbone(rng, 45);
  write_backbone(bb, path("m.pdb"), path("m.cif"));
  const std::string pdb = wensu::test::read_text(path("m.pdb"));
  EXPECT_EQ(pdb.find("CRYST1"), std::string::npos) << "a model has no unit cell";
  EXPECT_EQ(wensu::test::read_text(path("m.cif")).find("_cell."), std::string::npos);
  for (auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "temporary left behind: " << e.path();

  expect_same_backbone(read_backbone(path("m.pdb")), bb, "PDB");
  expect_same_backbone(read_backbone(path("m.cif")), bb, "mmCIF");
  gzip_file(path("m.pdb"), path("m.pdb.gz"));
  gzip_file(path("m.cif"), path("m.cif.gz"));
  expect_same_backbone(read_backbone(path("m.pdb.gz")), bb, "PDB, gzipped");
  expect_same_backbone(read_backbone(path("m.cif.gz")), bb, "mmCIF, gzipped");

  // Either path may be empty; no confidence writes B = 0; no CB atoms reads back as no cb.
  Backbone bare = bb;
  bare.confidence.clear();
  bare.cb.clear();
  write_backbone(bare, "", path("bare.cif"));
  EXPECT_FALSE(fs::exists(path("bare.pdb")));
  const Backbone back = read_backbone(path("bare.cif"));
  EXPECT_TRUE(back.cb.empty());
  for (float b : back.confidence) EXPECT_EQ(b, 0.0f);
  // The same structure scores perfectly against itself, through the files.
  const ScoreResult self = score_structures(read_backbone(path("m.pdb")), read_backbone(path("m.cif")));
  EXPECT_NEAR(self.tm_score, 1.0, 1e-6);
}

TEST_F(StructureFiles, PicksTheProteinChainOrTheNamedOne) {
  auto rng = fresh_rng();
  Backbone bb = sample_backbone(rng, 12);
  write_backbone(bb, path("a.pdb"), "");
  // Chain A -> B, and a water in chain A ahead of it: the first *protein* chain is B.
  std::ifstream in(path("a.pdb"));
  std::ofstream out(path("two.pdb"));
  out << "HETATM    1  O   HOH A 101       1.000   2.000   3.000  1.00 10.00           O\n";
  out << "TER\n";
  for (std::string line; std::getline(in, line);) {
    if ((line.rfind("ATOM", 0) == 0 || line.rfind("TER", 0) == 0) && line.size() > 21) line[21] = 'B';
    out << line << "\n";
  }
  out.close();
  EXPECT_EQ(read_backbone(path("two.pdb")).sequence, bb.sequence);
  EXPECT_EQ(read_backbone(path("two.pdb"), "B").size(), bb.size());
  const std::string msg = error_of([&] { read_backbone(path("two.pdb"), "Z"); });
  EXPECT_NE(msg.find(path("two.pdb")), std::string::npos) << msg;
  EXPECT_NE(msg.find("'Z'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'B'"), std::string::npos) << "should list the chains there are: " << msg;
}

TEST_F(StructureFiles, ErrorsNameTheFiles) {
  std::string msg = error_of([&] { read_backbone(path("missing.pdb")); });
  EXPECT_NE(msg.find(path("missing.pdb")), std::string::npos) << msg;
  { std::ofstream(path("water.pdb")) << "HETATM    1  O   HOH A 101       1.000   2.000   3.000  1.00 10.00           O\nEND\n"; }
  msg = error_of([&] { read_backbone(path("water.pdb")); });
  EXPECT_NE(msg.find(path("water.pdb")), std::string::npos) << msg;
  EXPECT_NE(msg.find("no protein chain"), std::string::npos) << msg;

  auto rng = fresh_rng();
  Backbone a = sample_backbone(rng, 20), b = sample_backbone(rng, 21);
  a.id = "pred_model", b.id = "native_ref";
  msg = error_of([&] { score_structures(a, b); });
  EXPECT_NE(msg.find("pred_model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("native_ref"), std::string::npos) << msg;
  b = sample_backbone(rng, 20);
  b.id = "native_ref";
  b.sequence[3] = b.sequence[3] == 'W' ? 'Y' : 'W';
  msg = error_of([&] { score_structures(a, b); });
  EXPECT_NE(msg.find("different sequences"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pred_model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("native_ref"), std::string::npos) << msg;
  EXPECT_NE(msg.find("residue 4"), std::string::npos) << msg;
}
