// Superposition and the structure scores of score.h. The TM-score search follows the published
// TMscore program step by step (seed lengths, cutoffs, iteration limit, stopping rule), because
// its maximum depends on which superpositions are tried, and users compare with that program.
#include "wensu/fold/score.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "wensu/core/check.h"

namespace wensu::fold {
namespace {

double dist(const Point& a, const Point& b) {
  const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return std::sqrt(dx * dx + dy * dy + dz * dz);
}

// Kabsch over the residues `idx` (all residues when idx is null).
Superposition kabsch(const std::vector<Point>& mobile, const std::vector<Point>& target, const std::vector<int64_t>* idx) {
  const int64_t n = idx ? static_cast<int64_t>(idx->size()) : static_cast<int64_t>(mobile.size());
  Superposition s;
  if (n == 0) return s;
  auto at = [&](int64_t k) { return idx ? (*idx)[k] : k; };
  Eigen::Vector3d cm = Eigen::Vector3d::Zero(), ct = Eigen::Vector3d::Zero();
  for (int64_t k = 0; k < n; ++k) {
    const Point &m = mobile[at(k)], &t = target[at(k)];
    cm += Eigen::Vector3d(m[0], m[1], m[2]);
    ct += Eigen::Vector3d(t[0], t[1], t[2]);
  }
  cm /= static_cast<double>(n);
  ct /= static_cast<double>(n);
  // Covariance H = sum (m - cm)(t - ct)^T; with H = U S V^T the best orthogonal map is V U^T.
  Eigen::Matrix3d H = Eigen::Matrix3d::Zero();
  for (int64_t k = 0; k < n; ++k) {
    const Point &m = mobile[at(k)], &t = target[at(k)];
    H += (Eigen::Vector3d(m[0], m[1], m[2]) - cm) * (Eigen::Vector3d(t[0], t[1], t[2]) - ct).transpose();
  }
  Eigen::JacobiSVD<Eigen::Matrix3d> svd(H, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const Eigen::Matrix3d U = svd.matrixU(), V = svd.matrixV();
  // When V U^T is a reflection (det -1), the best rotation flips the direction of the smallest
  // singular value (Kabsch 1978): R = V diag(1, 1, -1) U^T. Without it a mirror image would
  // superpose perfectly.
  Eigen::Vector3d D(1, 1, (V * U.transpose()).determinant() < 0 ? -1 : 1);
  const Eigen::Matrix3d R = V * D.asDiagonal() * U.transpose();
  const Eigen::Vector3d t = ct - R * cm;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) s.rotation[i][j] = R(i, j);
    s.translation[i] = t(i);
  }
  return s;
}

// What one superposition scores. Distances are those of pred moved by the superposition to ref.
struct Scan {
  double tm = 0;
  int64_t gdt[4] = {0, 0, 0, 0};  // residues within 1, 2, 4, 8 Å
  std::vector<int64_t> kept;       // residues within the cutoff: the next superposition's set
};

// TMscore's score function: scores, and the residues closer than `cutoff`; fewer than 3 such
// residues (in a chain of more than 3) widen the cutoff by 0.5 Å until there are.
void scan(const Superposition& s, const std::vector<Point>& pred, const std::vector<Point>& ref, double cutoff, double d0,
          std::vector<double>& d, Scan& out) {
  const int64_t L = static_cast<int64_t>(ref.size());
  out.tm = 0;
  std::fill(std::begin(out.gdt), std::end(out.gdt), 0);
  for (int64_t i = 0; i < L; ++i) {
    d[i] = dist(s.apply(pred[i]), ref[i]);
    out.tm += 1.0 / (1.0 + (d[i] / d0) * (d[i] / d0));
    // <= as TMscore counts GDT (LGA uses <; the two differ only on exact ties).
    out.gdt[0] += d[i] <= 1.0, out.gdt[1] += d[i] <= 2.0, out.gdt[2] += d[i] <= 4.0, out.gdt[3] += d[i] <= 8.0;
  }
  out.tm /= static_cast<double>(L);
  for (;; cutoff += 0.5) {
    out.kept.clear();
    for (int64_t i = 0; i < L; ++i)
      if (d[i] < cutoff) out.kept.push_back(i);
    if (out.kept.size() >= 3 || L <= 3) break;
  }
}

void check_pair(const std::vector<Point>& pred, const std::vector<Point>& ref, const char* what) {
  WENSU_CHECK(pred.size() == ref.size(), what, ": the prediction has ", pred.size(), " residues, the reference ",
              ref.size(), " (they are compared residue by residue)");
  WENSU_CHECK(!ref.empty(), what, ": no residues to compare");
}

std::vector<Point> ca_points(const Backbone& bb) {
  std::vector<Point> p(bb.ca.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = {bb.ca[i][0], bb.ca[i][1], bb.ca[i][2]};
  return p;
}

}  // namespace

Point Superposition::apply(const Point& x) const {
  Point y;
  for (int i = 0; i < 3; ++i)
    y[i] = rotation[i][0] * x[0] + rotation[i][1] * x[1] + rotation[i][2] * x[2] + translation[i];
  return y;
}

Superposition superpose(const std::vector<Point>& mobile, const std::vector<Point>& target) {
  check_pair(mobile, target, "superpose");
  return kabsch(mobile, target, nullptr);
}

double rmsd_after(const Superposition& s, const std::vector<Point>& mobile, const std::vector<Point>& target) {
  check_pair(mobile, target, "rmsd_after");
  double sum = 0;
  for (size_t i = 0; i < mobile.size(); ++i) {
    const double e = dist(s.apply(mobile[i]), target[i]);
    sum += e * e;
  }
  return std::sqrt(sum / static_cast<double>(mobile.size()));
}

double tm_d0(int64_t L) {
  if (L <= 15) return 0.5;
  return std::max(0.5, 1.24 * std::cbrt(static_cast<double>(L - 15)) - 1.8);
}

TmSearch tm_search(const std::vector<Point>& pred, const std::vector<Point>& ref) {
  check_pair(pred, ref, "tm_search");
  const int64_t L = static_cast<int64_t>(ref.size());
  const double d0 = tm_d0(L);
  const double d0_search = std::clamp(d0, 4.5, 8.0);
  constexpr int kIterations = 20;

  // Seed lengths L, L/2, L/4, L/8, L/16, then 4 (integer halving; stops early at 4).
  const int64_t min_len = std::min<int64_t>(4, L);
  std::vector<int64_t> seeds;
  for (int k = 0; k < 5 && (seeds.empty() || seeds.back() != min_len); ++k) seeds.push_back(std::max(L >> k, min_len));
  if (seeds.back() != min_len) seeds.push_back(min_len);

  TmSearch best;
  best.tm_score = -1;
  int64_t gdt_max[4] = {0, 0, 0, 0};
  std::vector<double> d(L);
  std::vector<int64_t> window, previous;
  Scan sc;
  auto record = [&](const Superposition& s) {
    if (sc.tm > best.tm_score) best.tm_score = sc.tm, best.best = s;
    for (int k = 0; k < 4; ++k) gdt_max[k] = std::max(gdt_max[k], sc.gdt[k]);
  };
  for (int64_t len : seeds) {
    for (int64_t start = 0; start + len <= L; ++start) {
      window.resize(len);
      for (int64_t k = 0; k < len; ++k) window[k] = start + k;
      Superposition s = kabsch(pred, ref, &window);
      scan(s, pred, ref, d0_search - 1, d0, d, sc);
      record(s);
      // Extend: superpose on the residues that fit, keep those that fit then, until stable.
      for (int it = 0; it < kIterations && !sc.kept.empty(); ++it) {
        previous = sc.kept;
        s = kabsch(pred, ref, &previous);
        scan(s, pred, ref, d0_search + 1, d0, d, sc);
        record(s);
        if (sc.kept == previous) break;
      }
    }
  }
  best.gdt_ts = static_cast<double>(gdt_max[0] + gdt_max[1] + gdt_max[2] + gdt_max[3]) / (4.0 * static_cast<double>(L));
  return best;
}

double lddt_ca(const std::vector<Point>& pred, const std::vector<Point>& ref) {
  check_pair(pred, ref, "lddt_ca");
  constexpr double kInclusion = 15.0;
  const int64_t L = static_cast<int64_t>(ref.size());
  int64_t pairs = 0, preserved = 0;  // preserved: summed over the four thresholds
  // Distances are symmetric, so each unordered pair counts once; the ratio is the same as over
  // ordered pairs.
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = i + 1; j < L; ++j) {
      const double dr = dist(ref[i], ref[j]);
      if (dr >= kInclusion) continue;
      const double e = std::abs(dist(pred[i], pred[j]) - dr);
      ++pairs;
      preserved += (e < 0.5) + (e < 1.0) + (e < 2.0) + (e < 4.0);
    }
  return pairs == 0 ? 0.0 : static_cast<double>(preserved) / (4.0 * static_cast<double>(pairs));
}

ScoreResult score_ca(const std::vector<Point>& pred, const std::vector<Point>& ref) {
  check_pair(pred, ref, "score");
  ScoreResult r;
  r.length = static_cast<int64_t>(ref.size());
  r.rmsd = rmsd_after(superpose(pred, ref), pred, ref);
  const TmSearch tm = tm_search(pred, ref);
  r.tm_score = tm.tm_score;
  r.gdt_ts = tm.gdt_ts;
  r.lddt_ca = lddt_ca(pred, ref);
  return r;
}

ScoreResult score_structures(const Backbone& pred, const Backbone& ref) {
  WENSU_CHECK(pred.size() == ref.size(), "cannot compare '", pred.id, "' (", pred.size(), " residues) with '", ref.id,
              "' (", ref.size(), " residues): scoring pairs residue i with residue i, so the chains must have the "
              "same length (choose the chains with --chain-pred / --chain-ref, or trim the reference)");
  WENSU_CHECK(!ref.ca.empty(), "cannot compare '", pred.id, "' with '", ref.id, "': no residues");
  if (!pred.sequence.empty() && !ref.sequence.empty()) {
    // 'X' (a modified or unknown residue) matches anything: a reference's MSE is the
    // prediction's M.
    for (size_t i = 0; i < ref.sequence.size(); ++i) {
      const char a = pred.sequence[i], b = ref.sequence[i];
      WENSU_CHECK(a == b || a == 'X' || b == 'X', "cannot compare '", pred.id, "' with '", ref.id,
                  "': different sequences (residue ", i + 1, " is ", a, " in the prediction, ", b,
                  " in the reference); scoring needs the same sequence in both");
    }
  }
  return score_ca(ca_points(pred), ca_points(ref));
}

}  // namespace wensu::fold
