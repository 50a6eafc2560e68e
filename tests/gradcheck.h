// Finite-difference checks of a whole module's parameter gradients, for model-level tests (the
// op-level harness in tests/ops/ covers single ops).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "wensu/autograd/grad_mode.h"
#include "wensu/nn/module.h"

namespace wensu::test {

// Central differences (eps) of loss() against the autograd gradients of every parameter of
// `model` (converted to float64 by the caller), at three entries spread over each tensor: the
// first, the middle and the last. Each must agree to tol relative (absolute below 1). Every
// parameter must get a gradient. Returns the number of entries checked.
inline int expect_gradients_match_finite_differences(nn::Module& model, const std::function<Tensor()>& loss,
                                                     double eps = 1e-6, double tol = 1e-6) {
  model.zero_grad();
  loss().backward();
  NoGradGuard ng;
  int checked = 0;
  for (auto& [name, p] : model.named_parameters()) {
    Tensor grad = p.grad();
    if (!grad.defined()) {
      ADD_FAILURE() << name << " has no gradient";
      continue;
    }
    const auto g = grad.to_vector<double>();
    double* x = p.data<double>();
    for (int64_t i : {int64_t(0), p.numel() / 2, p.numel() - 1}) {
      const double keep = x[i];
      x[i] = keep + eps;
      const double up = loss().item();
      x[i] = keep - eps;
      const double down = loss().item();
      x[i] = keep;
      const double fd = (up - down) / (2 * eps);
      EXPECT_NEAR(g[size_t(i)], fd, tol * std::max(1.0, std::abs(fd))) << name << "[" << i << "]";
      ++checked;
    }
  }
  return checked;
}

}  // namespace wensu::test
