// Rotary embedding against loops over [B, L, H, D] with angles in double.
#include <cmath>

#include "ops/harness.h"
#include "wensu/ops/rope.h"

namespace wensu::test {
namespace {

// Rotate-half RoPE of a contiguous float64 [B, L, H, D].
Tensor ref_rope(const Tensor& x, int64_t offset, double base) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  auto v = x.to_vector<double>();
  std::vector<double> out(v.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t row = ((b * L + l) * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const double theta = double(offset + l) * std::pow(base, -2.0 * double(i) / double(D));
          const double x1 = v[row + i], x2 = v[row + i + half];
          out[row + i] = x1 * std::cos(theta) - x2 * std::sin(theta);
          out[row + i + half] = x2 * std::cos(theta) + x1 * std::sin(theta);
        }
      }
  return Tensor::from_vector(out, x.shape());
}

OpCase rope_case(std::string label, Shape s, int64_t offset, double base, bool grad = true) {
  return {"rope", label, [=](Generator& g) { return Tensors{randn(g, s)}; },
          [=](const Tensors& x) { return ops::rope(x[0], offset, base); },
          [=](const Tensors& x) { return ref_rope(x[0], offset, base); }, 1e-5, grad};
}

}  // namespace

std::vector<OpCase> rope_cases() {
  std::vector<OpCase> cs;
  cs.push_back(rope_case("basic", {2, 3, 2, 4}, 0, 10000.0));
  cs.push_back(rope_case("offset", {1, 4, 2, 6}, 7, 10000.0));
  // Long positions and a Llama-3-sized base: the angles reach thousands of radians.
  cs.push_back(rope_case("long_positions", {1, 3, 1, 16}, 4000, 500000.0));
  cs.push_back(rope_case("parallel", {2, 64, 4, 64}, 3, 10000.0, /*grad=*/false));
  // q as a view into a fused QKV projection [B, L, 3*H*D]: strides (L*3HD, 3HD, D, 1).
  cs.push_back({"rope", "fused_qkv_view", [](Generator& g) { return Tensors{randn(g, {1, 3, 3 * 2 * 4})}; },
                [](const Tensors& x) { return ops::rope(x[0].reshape({1, 3, 3, 2, 4}).narrow(2, 1, 1).squeeze(2), 2); },
                [](const Tensors& x) {
                  Tensor q = x[0].reshape({1, 3, 3, 2, 4}).narrow(2, 1, 1).squeeze(2).contiguous();
                  return ref_rope(q, 2, 10000.0);
                }});
  // D not innermost in memory (x stored as [B, L, D, H]): the strided inner loop.
  cs.push_back({"rope", "strided_head_dim", [](Generator& g) { return Tensors{randn(g, {1, 3, 6, 2})}; },
                [](const Tensors& x) { return ops::rope(x[0].transpose(2, 3), 1); },
                [](const Tensors& x) { return ref_rope(x[0].transpose(2, 3).contiguous(), 1, 10000.0); }});
  return cs;
}

}  // namespace wensu::test
