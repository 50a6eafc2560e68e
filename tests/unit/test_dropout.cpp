// Dropout properties the op harness cannot see: the kept fraction, independence from the
// thread count, the generator bookkeeping, and that backward reuses the forward mask.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "wensu/core/generator.h"
#include "wensu/ops/dropout.h"
#include "wensu/ops/reduce.h"

using namespace wensu;

namespace {

// Restores OpenMP's thread count when a test that changes it ends.
struct ThreadCountGuard {
  int prev = omp_get_max_threads();
  ~ThreadCountGuard() { omp_set_num_threads(prev); }
};

}  // namespace

TEST(Dropout, KeptFractionAndScale) {
  const int64_t n = 100000;
  const double p = 0.3;
  Generator gen(7);
  auto y = ops::dropout(Tensor::ones({n}), p, gen).to_vector<float>();
  int64_t kept = 0;
  for (float v : y) {
    if (v != 0.0f) {
      ++kept;
      EXPECT_FLOAT_EQ(v, float(1.0 / (1.0 - p)));
    }
  }
  // Binomial(n, 1 - p) has a standard deviation of ~145 here; allow about 7 of them.
  EXPECT_NEAR(double(kept) / double(n), 1.0 - p, 0.01);
}

TEST(Dropout, SameResultForOneAndTwoThreads) {
  ThreadCountGuard guard;
  Generator data(3);
  Tensor x = Tensor::randn({100000}, data);  // above the parallel grain
  omp_set_num_threads(1);
  Generator g1(11);
  auto a = ops::dropout(x, 0.5, g1).to_vector<float>();
  omp_set_num_threads(2);
  Generator g2(11);
  auto b = ops::dropout(x, 0.5, g2).to_vector<float>();
  EXPECT_EQ(a, b);
}

TEST(Dropout, EvalModeAndZeroRateAreIdentity) {
  Generator data(5);
  Tensor x = Tensor::randn({4, 9}, data);
  Generator gen(1);
  EXPECT_EQ(ops::dropout(x, 0.5, gen, /*training=*/false).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(ops::dropout(x, 0.0, gen).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(gen.state().offset, 0u) << "identity dropout must not consume random numbers";
}

TEST(Dropout, AdvancesTheGenerator) {
  Generator gen(9);
  Tensor x = Tensor::ones({10});
  auto a = ops::dropout(x, 0.5, gen).to_vector<float>();
  EXPECT_EQ(gen.state().offset, 3u);  // ceil(10 / 4) counters
  auto b = ops::dropout(x, 0.5, gen).to_vector<float>();
  EXPECT_EQ(gen.state().offset, 6u);
  Generator again(9);
  EXPECT_EQ(ops::dropout(x, 0.5, again).to_vector<float>(), a);  // same (seed, offset), same mask
  Generator big(9);
  auto c = ops::dropout(Tensor::ones({1000}), 0.5, big).to_vector<float>();
  auto d = ops::dropout(Tensor::ones({1000}), 0.5, big).to_vector<float>();
  EXPECT_NE(c, d);  // consecutive calls draw fresh masks
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  const double p = 0.4;
  Tensor x = Tensor::ones({2000});
  x.set_requires_grad(true);
  Generator gen(21);
  Tensor y = ops::dropout(x, p, gen);
  ops::sum(y).backward();
  auto yv = y.to_vector<float>(), gv = x.grad().to_vector<float>();
  for (size_t i = 0; i < yv.size(); ++i) ASSERT_EQ(gv[i], yv[i]) << "element " << i;  // dy/dx = y / x, x = 1
}

TEST(Dropout, RejectsRatesOutsideZeroToOne) {
  Generator gen(1);
  Tensor x = Tensor::ones({4});
  EXPECT_THROW(ops::dropout(x, 1.0, gen), Error);
  EXPECT_THROW(ops::dropout(x, -0.1, gen), Error);
}
