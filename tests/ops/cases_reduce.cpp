// Reductions against loops over [outer, n, inner] views.
#include <algorithm>

#include "ops/harness.h"
#include "wensu/ops/reduce.h"

namespace wensu::test {
namespace {

// Reduce a contiguous float64 tensor over one dim with `f` (init, combine).
Tensor ref_reduce(const Tensor& x, int64_t d, double init, double (*f)(double, double), double post = 1.0) {
  int64_t outer = 1, inner = 1, n = x.size(d);
  for (int64_t k = 0; k < d; ++k) outer *= x.size(k);
  for (int64_t k = d + 1; k < x.dim(); ++k) inner *= x.size(k);
  Shape s = x.shape();
  s.erase(s.begin() + d);
  std::vector<double> v(size_t(outer * inner), init), p = x.to_vector<double>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < inner; ++j) v[o * inner + j] = f(v[o * inner + j], p[(o * n + i) * inner + j]);
  for (auto& e : v) e *= post;
  return Tensor::from_vector(v, s);
}
double plus(double a, double b) { return a + b; }
double maxf(double a, double b) { return std::max(a, b); }

}  // namespace

std::vector<OpCase> reduce_cases() {
  std::vector<OpCase> cs;
  cs.push_back({"sum", "last_dim", [](Generator& g) { return Tensors{randn(g, {3, 4, 5})}; },
                [](const Tensors& x) { return ops::sum(x[0], {2}); },
                [](const Tensors& x) { return ref_reduce(x[0], 2, 0.0, plus); }});
  cs.push_back({"sum", "middle_dim", [](Generator& g) { return Tensors{randn(g, {3, 4, 5})}; },
                [](const Tensors& x) { return ops::sum(x[0], {1}); },
                [](const Tensors& x) { return ref_reduce(x[0], 1, 0.0, plus); }});
  cs.push_back({"sum", "all_long", [](Generator& g) { return Tensors{randn(g, {40000})}; },
                [](const Tensors& x) { return ops::sum(x[0]); },
                [](const Tensors& x) { return ref_reduce(x[0], 0, 0.0, plus); }, 1e-5, /*gradcheck=*/false});
  cs.push_back({"sum", "two_axes_keepdim", [](Generator& g) { return Tensors{randn(g, {2, 3, 4})}; },
                [](const Tensors& x) { return ops::sum(x[0], {0, 2}, true); },
                [](const Tensors& x) {
                  return ref_reduce(ref_reduce(x[0], 2, 0.0, plus), 0, 0.0, plus).reshape({1, 3, 1});
                }});
  cs.push_back({"mean", "first_dim", [](Generator& g) { return Tensors{randn(g, {4, 3})}; },
                [](const Tensors& x) { return ops::mean(x[0], {0}); },
                [](const Tensors& x) { return ref_reduce(x[0], 0, 0.0, plus, 0.25); }});
  cs.push_back({"max", "last_dim", [](Generator& g) { return Tensors{randn(g, {3, 6})}; },
                [](const Tensors& x) { return ops::max(x[0], {1}); },
                [](const Tensors& x) { return ref_reduce(x[0], 1, -1e300, maxf); }});
  cs.push_back({"max", "middle_keepdim", [](Generator& g) { return Tensors{randn(g, {2, 5, 3})}; },
                [](const Tensors& x) { return ops::max(x[0], {1}, true); },
                [](const Tensors& x) { return ref_reduce(x[0], 1, -1e300, maxf).reshape({2, 1, 3}); }});
  return cs;
}

}  // namespace wensu::test
