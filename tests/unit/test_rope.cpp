// Rotary embedding properties beyond the op harness: argument errors, and the properties RoPE
// exists for: it is a rotation (norms unchanged), and q.k after rotation depends only on the
// distance between the two positions.
#include <gtest/gtest.h>

#include <string>

#include "wensu/core/generator.h"
#include "wensu/ops/rope.h"

using namespace wensu;

namespace {
double dot(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}
}  // namespace

TEST(Rope, RejectsOddHeadDimAndWrongRank) {
  EXPECT_THROW(ops::rope(Tensor::ones({2, 1, 4})), Error);
  try {
    ops::rope(Tensor::ones({1, 2, 1, 5}));
    ADD_FAILURE() << "odd D accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be even"), std::string::npos) << e.what();
  }
}

TEST(Rope, IsARotationThatSeesOnlyRelativePositions) {
  Generator gen(4);
  Tensor q = Tensor::randn({1, 1, 1, 8}, gen, DType::f64), k = Tensor::randn({1, 1, 1, 8}, gen, DType::f64);
  auto rq = [&](int64_t p) { return ops::rope(q, p); };
  auto rk = [&](int64_t p) { return ops::rope(k, p); };
  EXPECT_NEAR(dot(rq(5), rk(2)), dot(rq(103), rk(100)), 1e-9);
  EXPECT_NEAR(dot(rq(9), rk(9)), dot(q, k), 1e-9);
  EXPECT_NEAR(dot(rq(31), rq(31)), dot(q, q), 1e-9);
}
