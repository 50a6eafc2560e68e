// Runs every OpCase in the equivalence and gradient modes (see harness.h).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ops/harness.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/registry.h"

namespace wensu::test {
namespace {

Tensors convert(const Tensors& xs, DType t, bool requires_grad, const std::vector<int>& no_grad) {
  Tensors out;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    if (!x.defined() || !is_floating(x.dtype())) {
      out.push_back(x);
      continue;
    }
    Tensor c = x.to(t).contiguous().detach();
    bool skip = std::find(no_grad.begin(), no_grad.end(), int(i)) != no_grad.end();
    if (requires_grad && !skip) c.set_requires_grad(true);
    out.push_back(c);
  }
  return out;
}

// Scalar objective sum(y * w) with a fixed random w, so every output element matters.
Tensor objective(const Tensor& y, const Tensor& w) { return ops::sum(ops::mul(y, w.to(y.dtype()))); }

std::string case_name(const testing::TestParamInfo<OpCase>& info) {
  std::string n = info.param.op + "_" + info.param.label;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n + "_" + std::to_string(info.index);
}

class OpEquivalence : public testing::TestWithParam<OpCase> {};
class OpGradient : public testing::TestWithParam<OpCase> {};

TEST_P(OpEquivalence, Float32MatchesFloat64Reference) {
  const OpCase& c = GetParam();
  Generator g(1234);
  Tensors in = c.inputs(g);
  Tensors in64 = convert(in, DType::f64, false, {});
  Tensor want = c.reference ? c.reference(in64) : c.fn(in64);
  Tensors in32 = convert(in, DType::f32, true, c.no_grad_inputs);
  Tensor got = c.fn(in32);
  EXPECT_EQ(got.dtype(), DType::f32);
  double err = max_rel_error(got, want);
  EXPECT_LE(err, c.tol) << c.op << "/" << c.label << ": forward relative error " << err;

  // Float32 backward against float64 backward of the op itself.
  if (!got.requires_grad()) return;
  Tensor w = randn(g, got.shape());
  objective(got, w).backward();
  Tensors g64 = convert(in, DType::f64, true, c.no_grad_inputs);
  objective(c.fn(g64), w).backward();
  for (size_t i = 0; i < in32.size(); ++i) {
    if (!in32[i].requires_grad()) continue;
    ASSERT_TRUE(in32[i].grad().defined()) << "no float32 gradient for input " << i;
    double gerr = max_rel_error(in32[i].grad(), g64[i].grad());
    EXPECT_LE(gerr, c.tol) << c.op << "/" << c.label << ": float32 gradient of input " << i
                           << " off by " << gerr;
  }
}

TEST_P(OpGradient, MatchesFiniteDifferences) {
  const OpCase& c = GetParam();
  Generator g(99);
  Tensors in = convert(c.inputs(g), DType::f64, true, c.no_grad_inputs);
  Tensor y = c.fn(in);
  Tensor w = randn(g, y.shape());
  objective(y, w).backward();
  const double eps = c.fd_eps;
  int checked = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].requires_grad()) continue;
    ASSERT_TRUE(in[i].grad().defined()) << "input " << i << " got no gradient";
    auto analytic = in[i].grad().to_vector<double>();
    Tensor x = in[i].detach();
    double* p = x.data<double>();
    double max_err = 0, scale = 1e-3;
    for (int64_t k = 0; k < x.numel(); ++k) {
      NoGradGuard ng;
      const double orig = p[k];
      p[k] = orig + eps;
      double fp = objective(c.fn(in), w).item();
      p[k] = orig - eps;
      double fm = objective(c.fn(in), w).item();
      p[k] = orig;
      double numeric = (fp - fm) / (2 * eps);
      max_err = std::max(max_err, std::abs(numeric - analytic[k]));
      scale = std::max(scale, std::abs(numeric));
      ++checked;
    }
    EXPECT_LE(max_err / scale, c.grad_tol) << c.op << "/" << c.label << ": input " << i
                                           << " gradient differs from finite differences by "
                                           << max_err << " (scale " << scale << ")";
  }
  EXPECT_GT(checked, 0) << "no differentiable input in a gradient case";
}

INSTANTIATE_TEST_SUITE_P(Ops, OpEquivalence, testing::ValuesIn(all_cases()), case_name);
std::vector<OpCase> gradient_cases() {
  std::vector<OpCase> out;
  for (auto& c : all_cases())
    if (c.gradcheck) out.push_back(c);
  return out;
}
INSTANTIATE_TEST_SUITE_P(Ops, OpGradient, testing::ValuesIn(gradient_cases()), case_name);

TEST(OpHarness, EveryOpHasCases) {
  std::set<std::string> any, grad;
  for (auto& c : all_cases()) {
    any.insert(c.op);
    if (c.gradcheck) grad.insert(c.op);
  }
  for (auto& info : ops::op_table()) {
    EXPECT_TRUE(any.count(info.name)) << "op '" << info.name << "' (" << info.header
                                      << ") has no equivalence case";
    if (info.differentiable)
      EXPECT_TRUE(grad.count(info.name)) << "differentiable op '" << info.name << "' (" << info.header
                                         << ") has no finite-difference gradient case";
  }
  std::set<std::string> known;
  for (auto& info : ops::op_table()) known.insert(info.name);
  for (auto& n : any) EXPECT_TRUE(known.count(n)) << "case for unknown op '" << n << "'";
}

TEST(OpHarness, ListsOps) {
  // Printed so a reader of the test log sees the coverage at a glance.
  std::map<std::string, int> count;
  for (auto& c : all_cases()) count[c.op]++;
  for (auto& info : ops::op_table())
    std::printf("  %-14s %-10s %d case(s)%s\n", info.name.c_str(), info.header.c_str(), count[info.name],
                info.differentiable ? ", gradient-checked" : "");
  EXPECT_FALSE(count.empty());
}

}  // namespace
}  // namespace wensu::test
