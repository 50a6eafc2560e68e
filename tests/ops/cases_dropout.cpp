// Dropout against a reference that replays the same Philox stream in plain loops. Each call of
// a case's fn builds a fresh Generator with a fixed seed, so every evaluation (float32, float64,
// each finite-difference step) draws the same mask.
#include "ops/harness.h"
#include "wensu/ops/dropout.h"

namespace wensu::test {
namespace {

constexpr uint64_t kSeed = 2024;
constexpr uint64_t kSkip = 5;  // counters drawn before the dropout call: a nonzero base offset

Generator fresh_generator() {
  Generator gen(kSeed);
  gen.reserve(kSkip);
  return gen;
}

// Element i is kept iff its 24-bit uniform from counter base + i/4, lane i%4, is below 1 - p.
Tensor ref_dropout(const Tensor& x, double p) {
  auto v = x.to_vector<double>();
  const uint64_t n = v.size();
  Generator gen = fresh_generator();
  const uint64_t base = gen.reserve((n + 3) / 4);
  for (uint64_t i = 0; i < n; ++i) {
    const float u = uniform_from_bits(philox4x32(kSeed, base + i / 4)[i % 4]);
    v[i] = u < float(1.0 - p) ? v[i] / (1.0 - p) : 0.0;
  }
  return Tensor::from_vector(v, x.shape());
}

OpCase dropout_case(std::string label, Shape s, double p, bool grad = true) {
  return {"dropout", label, [=](Generator& g) { return Tensors{randn(g, s)}; },
          [=](const Tensors& x) {
            Generator gen = fresh_generator();
            return ops::dropout(x[0], p, gen);
          },
          [=](const Tensors& x) { return ref_dropout(x[0], p); }, 1e-6, grad};
}

}  // namespace

std::vector<OpCase> dropout_cases() {
  std::vector<OpCase> cs;
  cs.push_back(dropout_case("p0.1", {5, 8}, 0.1));
  // 42 elements: the last counter is only partly used.
  cs.push_back(dropout_case("p0.5_tail", {2, 3, 7}, 0.5));
  cs.push_back(dropout_case("parallel", {40000}, 0.3, /*grad=*/false));
  // Element order is the logical (row-major) order of the view, not its memory order.
  cs.push_back({"dropout", "transposed_x", [](Generator& g) { return Tensors{randn(g, {6, 5})}; },
                [](const Tensors& x) {
                  Generator gen = fresh_generator();
                  return ops::dropout(x[0].transpose(0, 1), 0.25, gen);
                },
                [](const Tensors& x) { return ref_dropout(x[0].transpose(0, 1).contiguous(), 0.25); }});
  cs.push_back({"dropout", "eval_identity", [](Generator& g) { return Tensors{randn(g, {3, 4})}; },
                [](const Tensors& x) {
                  Generator gen = fresh_generator();
                  return ops::dropout(x[0], 0.5, gen, /*training=*/false);
                },
                [](const Tensors& x) { return x[0]; }});
  return cs;
}

}  // namespace wensu::test
