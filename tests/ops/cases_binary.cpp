// Broadcasting arithmetic against index loops over the broadcast shape.
#include <cmath>

#include "ops/harness.h"
#include "wensu/ops/binary.h"

namespace wensu::test {
namespace {

// out[i] = f(a[bcast i], b[bcast i]) for contiguous float64 a, b broadcast to `out_shape`.
template <typename F>
Tensor ref_broadcast(const Tensor& a, const Tensor& b, const Shape& out_shape, F f) {
  Tensor out = Tensor::empty(out_shape, DType::f64);
  const int64_t n = out.numel(), nd = int64_t(out_shape.size());
  auto idx_of = [&](const Tensor& t, int64_t flat) {
    int64_t off = 0, stride = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t i = flat % out_shape[d];
      flat /= out_shape[d];
      int64_t td = d - (nd - t.dim());
      if (td >= 0) {
        if (t.size(td) != 1) off += i * stride;
        stride *= t.size(td);
      }
    }
    return off;
  };
  const double* pa = a.data<double>();
  const double* pb = b.data<double>();
  double* po = out.data<double>();
  for (int64_t k = 0; k < n; ++k) po[k] = f(pa[idx_of(a, k)], pb[idx_of(b, k)]);
  return out;
}

OpCase binary_case(std::string op, std::string label, Shape sa, Shape sb, Shape so,
                   std::function<Tensor(const Tensor&, const Tensor&)> fn, std::function<double(double, double)> f,
                   bool positive_b = false) {
  return {op, label,
          [=](Generator& g) {
            return Tensors{randn(g, sa), positive_b ? uniform(g, sb, 0.5, 2.0) : randn(g, sb)};
          },
          [=](const Tensors& x) { return fn(x[0], x[1]); },
          [=](const Tensors& x) { return ref_broadcast(x[0], x[1], so, f); }};
}

}  // namespace

std::vector<OpCase> binary_cases() {
  std::vector<OpCase> cs;
  auto add = [](const Tensor& a, const Tensor& b) { return ops::add(a, b); };
  auto sub = [](const Tensor& a, const Tensor& b) { return ops::sub(a, b); };
  auto mul = [](const Tensor& a, const Tensor& b) { return ops::mul(a, b); };
  auto div = [](const Tensor& a, const Tensor& b) { return ops::div(a, b); };
  cs.push_back(binary_case("add", "same", {3, 4}, {3, 4}, {3, 4}, add, [](double a, double b) { return a + b; }));
  cs.push_back(binary_case("add", "row_bias", {2, 3, 4}, {4}, {2, 3, 4}, add, [](double a, double b) { return a + b; }));
  cs.push_back(binary_case("sub", "col", {3, 4}, {3, 1}, {3, 4}, sub, [](double a, double b) { return a - b; }));
  cs.push_back(binary_case("mul", "both_ways", {3, 1, 4}, {1, 2, 4}, {3, 2, 4}, mul,
                           [](double a, double b) { return a * b; }));
  cs.push_back(binary_case("div", "col", {3, 4}, {3, 1}, {3, 4}, div, [](double a, double b) { return a / b; }, true));
  cs.push_back(binary_case("div", "same", {5}, {5}, {5}, div, [](double a, double b) { return a / b; }, true));
  // Strided (transposed) operand straight into the kernel.
  cs.push_back({"mul", "transposed_input", [](Generator& g) { return Tensors{randn(g, {4, 3}), randn(g, {3, 4})}; },
                [](const Tensors& x) { return ops::mul(x[0].transpose(0, 1), x[1]); },
                [](const Tensors& x) {
                  auto a = x[0].to_vector<double>(), b = x[1].to_vector<double>();
                  std::vector<double> v(12);
                  for (int i = 0; i < 3; ++i)
                    for (int j = 0; j < 4; ++j) v[i * 4 + j] = a[j * 3 + i] * b[i * 4 + j];
                  return Tensor::from_vector(v, {3, 4});
                }});
  auto unary_ref = [](std::function<double(double)> f) {
    return [f](const Tensors& x) {
      auto v = x[0].to_vector<double>();
      for (auto& e : v) e = f(e);
      return Tensor::from_vector(v, x[0].shape());
    };
  };
  cs.push_back({"scale", "by_minus_1_5", [](Generator& g) { return Tensors{randn(g, {3, 4})}; },
                [](const Tensors& x) { return ops::scale(x[0], -1.5); }, unary_ref([](double v) { return -1.5 * v; })});
  cs.push_back({"add_scalar", "plus_2", [](Generator& g) { return Tensors{randn(g, {3, 4})}; },
                [](const Tensors& x) { return ops::add_scalar(x[0], 2.0); }, unary_ref([](double v) { return v + 2; })});
  cs.push_back({"neg", "plain", [](Generator& g) { return Tensors{randn(g, {7})}; },
                [](const Tensors& x) { return ops::neg(x[0]); }, unary_ref([](double v) { return -v; })});
  return cs;
}

}  // namespace wensu::test
