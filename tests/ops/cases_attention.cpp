// Dense attention against a per-query loop: scores, masked softmax, weighted sum.
#include <cmath>

#include "ops/harness.h"
#include "wensu/ops/attention.h"

namespace wensu::test {
namespace {

Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* pad, bool causal) {
  const int64_t B = q.size(0), Lq = q.size(1), H = q.size(2), D = q.size(3), Lk = k.size(1), Dv = v.size(3);
  auto Q = q.contiguous().to_vector<double>(), K = k.contiguous().to_vector<double>(),
       V = v.contiguous().to_vector<double>();
  std::vector<int64_t> P = pad ? pad->to_vector<int64_t>() : std::vector<int64_t>(size_t(B * Lk), 0);
  std::vector<double> out(size_t(B * Lq * H * Dv), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        std::vector<double> s(size_t(Lk), -INFINITY);
        double mx = -INFINITY;
        for (int64_t j = 0; j < Lk; ++j) {
          if (P[b * Lk + j] || (causal && j > i + (Lk - Lq))) continue;
          double d = 0;
          for (int64_t c = 0; c < D; ++c) d += Q[((b * Lq + i) * H + h) * D + c] * K[((b * Lk + j) * H + h) * D + c];
          s[j] = d / std::sqrt(double(D));
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double z = 0;
        for (int64_t j = 0; j < Lk; ++j) z += s[j] == -INFINITY ? 0 : std::exp(s[j] - mx);
        for (int64_t j = 0; j < Lk; ++j) {
          if (s[j] == -INFINITY) continue;
          double w = std::exp(s[j] - mx) / z;
          for (int64_t c = 0; c < Dv; ++c) out[((b * Lq + i) * H + h) * Dv + c] += w * V[((b * Lk + j) * H + h) * Dv + c];
        }
      }
  return Tensor::from_vector(out, {B, Lq, H, Dv});
}

OpCase qkv_case(std::string label, Shape sq, Shape sk, Shape sv, bool causal, bool padded) {
  return {"attention", label,
          [=](Generator& g) {
            Tensors t{randn(g, sq), randn(g, sk), randn(g, sv)};
            if (padded) {  // batch 0 unpadded; batch 1 loses its last two keys
              std::vector<int64_t> m(size_t(sk[0] * sk[1]), 0);
              m[size_t(2 * sk[1] - 1)] = m[size_t(2 * sk[1] - 2)] = 1;
              t.push_back(Tensor::from_vector(m, {sk[0], sk[1]}));
            }
            return t;
          },
          [=](const Tensors& x) {
            ops::AttentionMask m;
            m.causal = causal;
            if (padded) m.key_padding = x[3];
            return ops::attention(x[0], x[1], x[2], m);
          },
          [=](const Tensors& x) { return ref_attention(x[0], x[1], x[2], padded ? &x[3] : nullptr, causal); }};
}

}  // namespace

std::vector<OpCase> attention_cases() {
  std::vector<OpCase> cs;
  cs.push_back(qkv_case("plain", {2, 3, 2, 4}, {2, 3, 2, 4}, {2, 3, 2, 4}, false, false));
  cs.push_back(qkv_case("key_padding", {2, 4, 2, 3}, {2, 4, 2, 3}, {2, 4, 2, 3}, false, true));
  cs.push_back(qkv_case("causal_cross_dv", {1, 3, 2, 4}, {1, 5, 2, 4}, {1, 5, 2, 3}, true, false));
  cs.push_back(qkv_case("causal_padding", {2, 4, 1, 4}, {2, 4, 1, 4}, {2, 4, 1, 4}, true, true));
  // q, k, v as strided views into one fused projection [B, L, 3 * H * D], as MultiHeadAttention
  // could pass them.
  cs.push_back({"attention", "fused_projection_views", [](Generator& g) { return Tensors{randn(g, {2, 3, 3 * 2 * 4})}; },
                [](const Tensors& x) {
                  auto part = [&](int i) { return x[0].narrow(2, i * 8, 8).reshape({2, 3, 2, 4}); };
                  return ops::attention(part(0), part(1), part(2));
                },
                [](const Tensors& x) {
                  auto part = [&](int i) { return x[0].narrow(2, i * 8, 8).contiguous().reshape({2, 3, 2, 4}); };
                  return ref_attention(part(0), part(1), part(2), nullptr, false);
                }});
  // Larger than one thread's share, so the parallel split over (batch, head) is exercised.
  cs.push_back({"attention", "many_heads", [](Generator& g) {
                  return Tensors{randn(g, {3, 17, 4, 8}), randn(g, {3, 17, 4, 8}), randn(g, {3, 17, 4, 8})};
                },
                [](const Tensors& x) { return ops::attention(x[0], x[1], x[2]); },
                [](const Tensors& x) { return ref_attention(x[0], x[1], x[2], nullptr, false); }, 1e-5,
                /*gradcheck=*/false});
  return cs;
}

}  // namespace wensu::test
