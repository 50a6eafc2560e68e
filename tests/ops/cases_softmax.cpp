// Softmax and log-softmax against a direct loop over [outer, n, inner] in double.
#include <cmath>

#include "ops/harness.h"
#include "wensu/ops/softmax.h"

namespace wensu::test {
namespace {

// softmax (or log_softmax) of a contiguous float64 tensor along dim d, straight from the
// definition; the row max is subtracted only so that exp() stays finite for the large rows.
Tensor ref_softmax(const Tensor& x, int64_t d, bool log) {
  if (d < 0) d += x.dim();
  int64_t outer = 1, inner = 1, n = x.size(d);
  for (int64_t k = 0; k < d; ++k) outer *= x.size(k);
  for (int64_t k = d + 1; k < x.dim(); ++k) inner *= x.size(k);
  auto v = x.to_vector<double>();
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t i) { return (o * n + i) * inner + j; };
      double m = v[at(0)];
      for (int64_t i = 1; i < n; ++i) m = std::max(m, v[at(i)]);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(v[at(i)] - m);
      for (int64_t i = 0; i < n; ++i)
        out[at(i)] = log ? v[at(i)] - m - std::log(s) : std::exp(v[at(i)] - m) / s;
    }
  }
  return Tensor::from_vector(out, x.shape());
}

// Rows offset by +-1000 (alternating), which overflow or underflow exp() without the max
// subtraction. Values sit on a 1/16 grid so float32 holds them exactly and the comparison
// measures the kernel, not the rounding of the inputs.
Tensor large_rows(Generator& g, int64_t rows, int64_t n) {
  auto v = randn(g, {rows, n}).to_vector<double>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) {
      double& e = v[r * n + i];
      e = std::round(e * 3.0 * 16.0) / 16.0 + (r % 2 ? 1000.0 : -1000.0);
    }
  return Tensor::from_vector(v, {rows, n});
}

void add_family(std::vector<OpCase>& cs, const std::string& op, bool log) {
  auto fn = [log](const Tensor& x, int64_t d) { return log ? ops::log_softmax(x, d) : ops::softmax(x, d); };
  cs.push_back({op, "last_dim", [](Generator& g) { return Tensors{randn(g, {3, 7})}; },
                [fn](const Tensors& x) { return fn(x[0], -1); },
                [log](const Tensors& x) { return ref_softmax(x[0], -1, log); }});
  cs.push_back({op, "middle_dim", [](Generator& g) { return Tensors{randn(g, {2, 5, 3})}; },
                [fn](const Tensors& x) { return fn(x[0], 1); },
                [log](const Tensors& x) { return ref_softmax(x[0], 1, log); }});
  cs.push_back({op, "large_values", [](Generator& g) { return Tensors{large_rows(g, 4, 6)}; },
                [fn](const Tensors& x) { return fn(x[0], -1); },
                [log](const Tensors& x) { return ref_softmax(x[0], -1, log); }});
  // Softmax over dim 0 of a transposed view: the op makes it contiguous first.
  cs.push_back({op, "transposed_input", [](Generator& g) { return Tensors{randn(g, {4, 6})}; },
                [fn](const Tensors& x) { return fn(x[0].transpose(0, 1), 0); },
                [log](const Tensors& x) {
                  auto a = x[0].to_vector<double>();
                  std::vector<double> t(24);
                  for (int i = 0; i < 6; ++i)
                    for (int j = 0; j < 4; ++j) t[i * 4 + j] = a[j * 6 + i];
                  return ref_softmax(Tensor::from_vector(t, {6, 4}), 0, log);
                }});
  // More than one 64-column chunk in the strided layout, and enough rows to run threaded.
  cs.push_back({op, "wide_inner", [](Generator& g) { return Tensors{randn(g, {2, 4, 70})}; },
                [fn](const Tensors& x) { return fn(x[0], 1); },
                [log](const Tensors& x) { return ref_softmax(x[0], 1, log); }, 1e-5, /*gradcheck=*/false});
  cs.push_back({op, "parallel_rows", [](Generator& g) { return Tensors{randn(g, {64, 520})}; },
                [fn](const Tensors& x) { return fn(x[0], -1); },
                [log](const Tensors& x) { return ref_softmax(x[0], -1, log); }, 1e-5, /*gradcheck=*/false});
}

}  // namespace

std::vector<OpCase> softmax_cases() {
  std::vector<OpCase> cs;
  add_family(cs, "softmax", false);
  add_family(cs, "log_softmax", true);
  return cs;
}

}  // namespace wensu::test
