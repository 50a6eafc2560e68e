// Elementwise math and activations against std:: formulas applied element by element in double.
#include <cmath>
#include <numbers>

#include "ops/harness.h"
#include "wensu/ops/unary.h"

namespace wensu::test {
namespace {

using Fn = double (*)(double);

// Reference: f applied to each element of the (contiguous float64) input.
std::function<Tensor(const Tensors&)> map_ref(Fn f) {
  return [f](const Tensors& x) {
    auto v = x[0].to_vector<double>();
    for (auto& e : v) e = f(e);
    return Tensor::from_vector(v, x[0].shape());
  };
}

OpCase unary_case(std::string op, std::string label, std::function<Tensor(const Tensor&)> fn, Fn f,
                  std::function<Tensor(Generator&)> input) {
  return {op, label, [input](Generator& g) { return Tensors{input(g)}; },
          [fn](const Tensors& x) { return fn(x[0]); }, map_ref(f)};
}

Tensor normal_3x5(Generator& g) { return randn(g, {3, 5}); }
Tensor positive_3x5(Generator& g) { return uniform(g, {3, 5}, 0.2, 3.0); }

// N(0, 1) pushed at least 0.1 away from 0, so finite differences never straddle relu's kink.
Tensor away_from_zero(Generator& g) {
  auto v = randn(g, {3, 5}).to_vector<double>();
  for (auto& e : v) e += e >= 0 ? 0.1 : -0.1;
  return Tensor::from_vector(v, {3, 5});
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_ref(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}
double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }
double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus_ref(double x) { return std::log1p(std::exp(x)); }

}  // namespace

std::vector<OpCase> unary_cases() {
  std::vector<OpCase> cs;
  cs.push_back(unary_case("exp", "plain", [](const Tensor& x) { return ops::exp(x); },
                          [](double v) { return std::exp(v); }, normal_3x5));
  cs.push_back(unary_case("log", "positive", [](const Tensor& x) { return ops::log(x); },
                          [](double v) { return std::log(v); }, positive_3x5));
  cs.push_back(unary_case("sqrt", "positive", [](const Tensor& x) { return ops::sqrt(x); },
                          [](double v) { return std::sqrt(v); }, positive_3x5));
  cs.push_back(unary_case("tanh", "plain", [](const Tensor& x) { return ops::tanh(x); },
                          [](double v) { return std::tanh(v); }, normal_3x5));
  cs.push_back(unary_case("relu", "away_from_zero", [](const Tensor& x) { return ops::relu(x); },
                          [](double v) { return v > 0 ? v : 0.0; }, away_from_zero));
  cs.push_back(unary_case("gelu", "plain", [](const Tensor& x) { return ops::gelu(x); }, gelu_ref,
                          [](Generator& g) { return uniform(g, {3, 5}, -4.0, 4.0); }));
  cs.push_back(unary_case("gelu_tanh", "plain", [](const Tensor& x) { return ops::gelu_tanh(x); },
                          gelu_tanh_ref, [](Generator& g) { return uniform(g, {3, 5}, -4.0, 4.0); }));
  cs.push_back(unary_case("silu", "plain", [](const Tensor& x) { return ops::silu(x); }, silu_ref,
                          [](Generator& g) { return uniform(g, {3, 5}, -5.0, 5.0); }));
  cs.push_back(unary_case("sigmoid", "plain", [](const Tensor& x) { return ops::sigmoid(x); }, sigmoid_ref,
                          [](Generator& g) { return uniform(g, {3, 5}, -6.0, 6.0); }));
  cs.push_back(unary_case("softplus", "plain", [](const Tensor& x) { return ops::softplus(x); }, softplus_ref,
                          [](Generator& g) { return uniform(g, {3, 5}, -6.0, 6.0); }));
  // Far tails: softplus(-30) ~ 9e-14 must keep its relative precision.
  cs.push_back(unary_case("softplus", "tails", [](const Tensor& x) { return ops::softplus(x); }, softplus_ref,
                          [](Generator& g) { return uniform(g, {2, 4}, -30.0, 30.0); }));
  cs.push_back(unary_case("erf", "plain", [](const Tensor& x) { return ops::erf(x); },
                          [](double v) { return std::erf(v); }, [](Generator& g) { return uniform(g, {3, 5}, -3.0, 3.0); }));
  // A transposed view goes straight into the strided kernel (forward and backward).
  cs.push_back({"gelu", "transposed_input", [](Generator& g) { return Tensors{randn(g, {5, 3})}; },
                [](const Tensors& x) { return ops::gelu(x[0].transpose(0, 1)); },
                [](const Tensors& x) {
                  auto a = x[0].to_vector<double>();
                  std::vector<double> v(15);
                  for (int i = 0; i < 3; ++i)
                    for (int j = 0; j < 5; ++j) v[i * 5 + j] = gelu_ref(a[j * 3 + i]);
                  return Tensor::from_vector(v, {3, 5});
                }});
  // Large enough for the threaded path; forward and float32 backward only.
  cs.push_back({"tanh", "parallel", [](Generator& g) { return Tensors{randn(g, {40000})}; },
                [](const Tensors& x) { return ops::tanh(x[0]); }, map_ref([](double v) { return std::tanh(v); }),
                1e-5, /*gradcheck=*/false});
  return cs;
}

}  // namespace wensu::test
