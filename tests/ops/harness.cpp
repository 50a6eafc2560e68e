#include "ops/harness.h"

#include <algorithm>
#include <cmath>

namespace wensu::test {

std::vector<OpCase> all_cases() {
  std::vector<OpCase> all;
  for (auto family : {shape_cases, binary_cases, reduce_cases, matmul_cases, unary_cases, softmax_cases,
                      loss_cases, norm_cases, indexing_cases, dropout_cases, rope_cases, attention_cases,
                      block_sparse_attention_cases, moe_cases}) {
    auto cs = family();
    all.insert(all.end(), cs.begin(), cs.end());
  }
  return all;
}

Tensor randn(Generator& g, const Shape& s) { return Tensor::randn(s, g, DType::f64); }

Tensor uniform(Generator& g, const Shape& s, double lo, double hi) {
  return Tensor::rand(s, g, DType::f64, lo, hi);
}

Tensor randint(Generator& g, const Shape& s, int64_t lo, int64_t hi) {
  auto u = Tensor::rand(s, g, DType::f64, 0.0, 1.0).to_vector<double>();
  std::vector<int64_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = std::min(hi - 1, lo + int64_t(u[i] * double(hi - lo)));
  return Tensor::from_vector(v, s);
}

double max_rel_error(const Tensor& got, const Tensor& want) {
  WENSU_CHECK(got.shape() == want.shape(), "shape ", shape_str(got.shape()), " vs ", shape_str(want.shape()));
  auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double num = 0, den = 1e-12;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
    if (std::isnan(a[i])) continue;
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

}  // namespace wensu::test
