// Block-sparse attention against a plain dense reference that applies the layout's element mask
// and the key padding: per query, scores over the allowed keys, softmax, weighted sum.
#include <cmath>
#include <memory>

#include "ops/harness.h"
#include "wensu/ops/block_layout.h"
#include "wensu/ops/block_sparse_attention.h"

namespace wensu::test {
namespace {

using LayoutFn = std::function<std::shared_ptr<const ops::BlockLayout>(int64_t Lq, int64_t Lk)>;

// q [B, Lq, H, D], k [B, Lk, H, D], v [B, Lk, H, Dv] -> [B, Lq, H, Dv]; allowed[i * Lk + j].
Tensor ref_masked_attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<uint8_t>& allowed,
                            const Tensor* pad) {
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
          if (!allowed[size_t(i * Lk + j)] || P[size_t(b * Lk + j)]) continue;
          double d = 0;
          for (int64_t c = 0; c < D; ++c) d += Q[((b * Lq + i) * H + h) * D + c] * K[((b * Lk + j) * H + h) * D + c];
          s[size_t(j)] = d / std::sqrt(double(D));
          mx = std::max(mx, s[size_t(j)]);
        }
        if (mx == -INFINITY) continue;  // nothing visible: zeros
        double z = 0;
        for (int64_t j = 0; j < Lk; ++j) z += s[size_t(j)] == -INFINITY ? 0 : std::exp(s[size_t(j)] - mx);
        for (int64_t j = 0; j < Lk; ++j) {
          if (s[size_t(j)] == -INFINITY) continue;
          double w = std::exp(s[size_t(j)] - mx) / z;
          for (int64_t c = 0; c < Dv; ++c)
            out[((b * Lq + i) * H + h) * Dv + c] += w * V[((b * Lk + j) * H + h) * Dv + c];
        }
      }
  return Tensor::from_vector(out, {B, Lq, H, Dv});
}

struct Dims {
  int64_t B, Lq, Lk, H, D, Dv;
};

// pad_keys[b] = key positions padded in batch b (empty: no padding tensor).
OpCase bsa_case(std::string label, Dims d, LayoutFn layout, std::vector<std::vector<int64_t>> pad_keys = {},
                bool gradcheck = true) {
  const bool padded = !pad_keys.empty();
  return {"block_sparse_attention", label,
          [=](Generator& g) {
            Tensors t{randn(g, {d.B, d.Lq, d.H, d.D}), randn(g, {d.B, d.Lk, d.H, d.D}),
                      randn(g, {d.B, d.Lk, d.H, d.Dv})};
            if (padded) {
              std::vector<int64_t> m(size_t(d.B * d.Lk), 0);
              for (int64_t b = 0; b < int64_t(pad_keys.size()); ++b)
                for (int64_t j : pad_keys[size_t(b)]) m[size_t(b * d.Lk + j)] = 1;
              t.push_back(Tensor::from_vector(m, {d.B, d.Lk}));
            }
            return t;
          },
          [=](const Tensors& x) {
            return ops::block_sparse_attention(x[0], x[1], x[2], *layout(d.Lq, d.Lk), padded ? x[3] : Tensor());
          },
          [=](const Tensors& x) {
            return ref_masked_attention(x[0], x[1], x[2], ops::layout_element_mask(*layout(d.Lq, d.Lk)),
                                        padded ? &x[3] : nullptr);
          },
          1e-5, gradcheck};
}

LayoutFn config(ops::BlockLayoutConfig cfg) {
  return [cfg](int64_t Lq, int64_t Lk) { return ops::make_block_layout(cfg, Lq, Lk); };
}

ops::BlockLayoutConfig kind(std::string k, int64_t block, bool causal = false) {
  ops::BlockLayoutConfig c;
  c.kind = std::move(k);
  c.block = block;
  c.causal = causal;
  return c;
}

std::vector<int64_t> range(int64_t lo, int64_t hi) {
  std::vector<int64_t> r;
  for (int64_t j = lo; j < hi; ++j) r.push_back(j);
  return r;
}

}  // namespace

std::vector<OpCase> block_sparse_attention_cases() {
  std::vector<OpCase> cs;
  auto window = kind("window", 32);
  window.window = 40;
  auto bigbird = kind("bigbird", 32);
  bigbird.window = 32, bigbird.global_blocks = 1, bigbird.random_blocks = 2, bigbird.seed = 7;
  auto strided = kind("strided", 32);
  strided.stride = 3;
  auto dilated = kind("dilated", 32);
  dilated.window = 100, dilated.dilation = 2;
  auto causal_window = window;
  causal_window.causal = true;
  auto causal_bigbird = bigbird;
  causal_bigbird.causal = true;

  // Forward and float32-vs-float64 gradients on shapes with several blocks; the last block is
  // partial (75 = 2 * 32 + 11).
  cs.push_back(bsa_case("dense_partial_block", {2, 75, 75, 2, 8, 8}, config(kind("dense", 32)), {}, false));
  cs.push_back(bsa_case("window", {1, 200, 200, 2, 8, 8}, config(window), {}, false));
  cs.push_back(bsa_case("bigbird", {1, 256, 256, 2, 8, 8}, config(bigbird), {}, false));
  cs.push_back(bsa_case("strided", {1, 256, 256, 2, 8, 8}, config(strided), {}, false));
  cs.push_back(bsa_case("dilated", {1, 256, 256, 2, 8, 8}, config(dilated), {}, false));
  cs.push_back(bsa_case("causal_window", {1, 150, 150, 2, 8, 8}, config(causal_window), {}, false));
  cs.push_back(bsa_case("causal_bigbird", {1, 224, 224, 2, 8, 8}, config(causal_bigbird), {}, false));
  cs.push_back(bsa_case("causal_dense_block128", {1, 300, 300, 1, 8, 8}, config(kind("dense", 128, true)), {}, false));
  // Cross attention: dense, Lq != Lk, Dv != D; the causal variant aligns queries at the end.
  cs.push_back(bsa_case("cross_dense_dv", {2, 50, 90, 2, 8, 5}, config(kind("dense", 32)), {}, false));
  cs.push_back(bsa_case("cross_causal_dense", {1, 40, 100, 2, 8, 8}, config(kind("dense", 32, true)), {}, false));
  // More queries than keys, causal: queries 0..59 come before the first key and get zeros.
  cs.push_back(bsa_case("causal_more_queries", {1, 100, 40, 2, 8, 8}, config(kind("dense", 32, true)), {}, false));
  // A user block mask over 130 tokens (5 x 5 blocks): row block 2 is empty (zero output), row 4
  // attends to blocks that are not consecutive.
  cs.push_back(bsa_case("user_block_mask", {1, 130, 130, 2, 8, 8}, [](int64_t Lq, int64_t Lk) {
    std::vector<uint8_t> m = {1, 1, 0, 0, 0,  //
                              0, 1, 0, 1, 0,  //
                              0, 0, 0, 0, 0,  //
                              1, 1, 1, 1, 1,  //
                              1, 0, 1, 0, 1};
    return ops::layout_from_block_mask(m, 32, Lq, Lk, false);
  }, {}, false));
  // Padding: batch 1 loses its last 9 keys (the whole partial block and more); batch 2 loses
  // all of key block 1, so with window 0 (diagonal blocks only) its queries 32..63 see nothing.
  auto diagonal = kind("window", 32);
  diagonal.window = 0;
  cs.push_back(bsa_case("key_padding", {3, 75, 75, 2, 8, 8}, config(diagonal), {{}, range(66, 75), range(32, 64)},
                        false));
  cs.push_back(bsa_case("key_padding_bigbird", {2, 256, 256, 2, 8, 8}, config(bigbird), {{3, 100}, range(200, 256)},
                        false));
  // Enough work for the parallel split over (batch, head, block).
  cs.push_back(bsa_case("many_heads", {2, 300, 300, 4, 16, 16}, config(window), {{}, range(290, 300)}, false));
  // q, k, v as strided views into one fused projection [B, L, 3 * H * D].
  cs.push_back({"block_sparse_attention", "fused_projection_views",
                [](Generator& g) { return Tensors{randn(g, {2, 70, 3 * 2 * 4})}; },
                [](const Tensors& x) {
                  auto part = [&](int i) { return x[0].narrow(2, i * 8, 8).reshape({2, 70, 2, 4}); };
                  return ops::block_sparse_attention(part(0), part(1), part(2),
                                                     *ops::make_block_layout(kind("dense", 32, true), 70, 70));
                },
                [](const Tensors& x) {
                  auto part = [&](int i) { return x[0].narrow(2, i * 8, 8).contiguous().reshape({2, 70, 2, 4}); };
                  auto layout = ops::make_block_layout(kind("dense", 32, true), 70, 70);
                  return ref_masked_attention(part(0), part(1), part(2), ops::layout_element_mask(*layout), nullptr);
                },
                1e-5, false});

  // Finite-difference gradients on small shapes (every input element is perturbed).
  cs.push_back(bsa_case("grad_diagonal_blocks", {1, 40, 40, 1, 4, 4}, config(diagonal)));
  cs.push_back(bsa_case("grad_causal_dense", {1, 40, 40, 1, 4, 4}, config(kind("dense", 32, true))));
  cs.push_back(bsa_case("grad_padding", {2, 40, 40, 1, 3, 3}, config(kind("dense", 32)), {{}, range(30, 40)}));
  cs.push_back(bsa_case("grad_cross_causal_dv", {1, 20, 40, 1, 4, 3}, config(kind("dense", 32, true))));
  cs.push_back(bsa_case("grad_user_mask", {1, 40, 40, 1, 4, 4}, [](int64_t Lq, int64_t Lk) {
    return ops::layout_from_block_mask({0, 1, 1, 1}, 32, Lq, Lk, false);  // row block 0 sees only block 1
  }));
  return cs;
}

}  // namespace wensu::test
