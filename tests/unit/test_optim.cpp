#include <gtest/gtest.h>

#include <cmath>

#include "wensu/core/generator.h"
#include "wensu/optim/adamw.h"
#include "wensu/optim/schedule.h"

using namespace wensu;

namespace {
// A parameter holder for optimizer tests.
struct Params : nn::Module {
  Tensor w, b;
  explicit Params(Generator& g) {
    w = register_parameter("w", Tensor::randn({3, 4}, g, DType::f64));
    b = register_parameter("b", Tensor::randn({4}, g, DType::f64));
  }
};
}  // namespace

// With scale_lr("b", s) the vector b steps at lr * s (s = 1: the plain rule).
TEST(AdamW, MatchesTheUpdateRuleStepByStep) {
  for (double b_scale : {1.0, 0.25}) {
  SCOPED_TRACE(b_scale);
  Generator g(3);
  Params m(g);
  optim::AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  optim::AdamW opt(m.named_parameters(), cfg);
  EXPECT_EQ(opt.scale_lr("b", b_scale), 1);
  // Reference: torch.optim.AdamW's algorithm written out in doubles.
  auto w = m.w.to_vector<double>(), b = m.b.to_vector<double>();
  std::vector<double> mw(w.size()), vw(w.size()), mb(b.size()), vb(b.size());
  auto ref_step = [&](std::vector<double>& p, std::vector<double>& mm, std::vector<double>& vv,
                      const std::vector<double>& gr, double lr, double wd, int t) {
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1 - lr * wd;
      mm[i] = 0.9 * mm[i] + 0.1 * gr[i];
      vv[i] = 0.999 * vv[i] + 0.001 * gr[i] * gr[i];
      double mhat = mm[i] / (1 - std::pow(0.9, t)), vhat = vv[i] / (1 - std::pow(0.999, t));
      p[i] -= lr * mhat / (std::sqrt(vhat) + 1e-8);
    }
  };
  for (int t = 1; t <= 5; ++t) {
    Tensor gw = Tensor::randn({3, 4}, g, DType::f64), gb = Tensor::randn({4}, g, DType::f64);
    m.w.set_grad(gw);
    m.b.set_grad(gb);
    double lr = 0.01 * t;
    opt.step(lr);
    ref_step(w, mw, vw, gw.to_vector<double>(), lr, 0.1, t);
    ref_step(b, mb, vb, gb.to_vector<double>(), lr * b_scale, 0.0, t);  // vectors are not decayed
  }
  auto gotw = m.w.to_vector<double>(), gotb = m.b.to_vector<double>();
  for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(gotw[i], w[i], 1e-12);
  for (size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(gotb[i], b[i], 1e-12);
  EXPECT_EQ(opt.steps(), 5);
  }
}

TEST(Schedule, WarmupThenCosineAndLinear) {
  optim::ScheduleConfig c;
  c.lr = 1.0;
  c.warmup_steps = 10;
  c.total_steps = 110;
  c.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(optim::learning_rate(c, 5), 0.5);
  EXPECT_DOUBLE_EQ(optim::learning_rate(c, 10), 1.0);
  EXPECT_NEAR(optim::learning_rate(c, 60), 0.1 + 0.9 * 0.5, 1e-12);  // half way: cos = 0
  EXPECT_NEAR(optim::learning_rate(c, 110), 0.1, 1e-12);
  EXPECT_NEAR(optim::learning_rate(c, 500), 0.1, 1e-12);
  c.decay = "linear";
  EXPECT_NEAR(optim::learning_rate(c, 35), 0.1 + 0.9 * 0.75, 1e-12);
}

TEST(Clip, ScalesToMaxNorm) {
  Generator g(4);
  Params m(g);
  m.w.set_grad(Tensor::full({3, 4}, 1.0, DType::f64));
  m.b.set_grad(Tensor::full({4}, 2.0, DType::f64));
  double n = optim::clip_grad_norm(m.parameters(), 1.0);
  EXPECT_NEAR(n, std::sqrt(12.0 + 16.0), 1e-12);
  double after = 0;
  for (auto& p : m.parameters())
    for (double v : p.grad().to_vector<double>()) after += v * v;
  EXPECT_NEAR(std::sqrt(after), 1.0, 1e-5);
  EXPECT_NEAR(optim::clip_grad_norm(m.parameters(), 10.0), std::sqrt(after), 1e-12);  // no-op below the limit
}
