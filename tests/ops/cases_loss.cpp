// Cross-entropy against the textbook formula evaluated row by row in double.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/harness.h"
#include "wensu/ops/loss.h"

namespace wensu::test {
namespace {

// mean over rows with t_i != ignore of (1-eps) (-log p_{i,t_i}) + eps/C sum_c (-log p_{i,c}),
// 0 when every row is ignored.
Tensor ref_cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore, double eps) {
  const int64_t C = logits.size(-1), N = targets.numel();
  auto x = logits.to_vector<double>();
  auto t = targets.to_vector<int64_t>();
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (t[i] == ignore) continue;
    const double* row = x.data() + i * C;
    double m = row[0];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, row[c]);
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(row[c] - m);
    const double lse = m + std::log(s);
    double smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth += lse - row[c];
    total += (1 - eps) * (lse - row[t[i]]) + eps / double(C) * smooth;
    ++count;
  }
  return Tensor::from_vector(std::vector<double>{count ? total / double(count) : 0.0}, {});
}

// Targets in [0, C) with the listed flat positions set to `ignore`.
Tensor targets_with_ignored(Generator& g, const Shape& s, int64_t C, std::vector<int64_t> ignored,
                            int64_t ignore) {
  auto v = randint(g, s, 0, C).to_vector<int64_t>();
  for (int64_t i : ignored) v[size_t(i)] = ignore;
  return Tensor::from_vector(v, s);
}

OpCase ce_case(std::string label, Shape logits_shape, std::vector<int64_t> ignored, int64_t ignore, double eps,
               bool gradcheck = true) {
  const int64_t C = logits_shape.back();
  Shape t_shape(logits_shape.begin(), logits_shape.end() - 1);
  return {"cross_entropy", label,
          [=](Generator& g) {
            return Tensors{randn(g, logits_shape), targets_with_ignored(g, t_shape, C, ignored, ignore)};
          },
          [=](const Tensors& x) { return ops::cross_entropy(x[0], x[1], ignore, eps); },
          [=](const Tensors& x) { return ref_cross_entropy(x[0], x[1], ignore, eps); }, 1e-5, gradcheck};
}

}  // namespace

std::vector<OpCase> loss_cases() {
  std::vector<OpCase> cs;
  cs.push_back(ce_case("plain", {6, 5}, {}, -100, 0.0));
  cs.push_back(ce_case("ignore_index", {6, 5}, {1, 4}, -100, 0.0));
  // ignore_index may also be a real class id: rows with that target are skipped.
  cs.push_back(ce_case("ignore_valid_class", {6, 5}, {0, 3}, 2, 0.0));
  cs.push_back(ce_case("label_smoothing", {6, 5}, {2}, -100, 0.1));
  cs.push_back(ce_case("logits_3d", {2, 3, 4}, {}, -100, 0.0));
  // Unbatched: logits [C] with a scalar target, as PyTorch allows.
  cs.push_back(ce_case("unbatched", {7}, {}, -100, 0.0));
  // Documented deviation from PyTorch (nan): 0 with a zero gradient.
  cs.push_back(ce_case("all_ignored", {3, 4}, {0, 1, 2}, -100, 0.1));
  // Enough rows to run threaded; float32 forward and backward only.
  cs.push_back(ce_case("parallel", {128, 300}, {5, 77}, -100, 0.1, /*gradcheck=*/false));
  return cs;
}

// Argument checks are part of the contract: a bad label must say where it is.
TEST(CrossEntropyArgs, OutOfRangeTargetNamesPositionAndValue) {
  Tensor logits = Tensor::zeros({2, 3, 4});
  Tensor targets = Tensor::from_vector(std::vector<int64_t>{0, 1, -100, 3, 7, 2}, {2, 3});
  try {
    ops::cross_entropy(logits, targets);
    FAIL() << "expected a wensu::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("target 7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[1, 1]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("4 classes"), std::string::npos) << msg;
  }
  Tensor negative = Tensor::from_vector(std::vector<int64_t>{0, -1}, {2});
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({2, 4}), negative), Error);
  Tensor wrong_shape = Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, {3});
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({2, 4}), wrong_shape), Error);
}

}  // namespace wensu::test
