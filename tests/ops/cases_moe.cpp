// Mixture-of-experts ops against plain loops. The routing-dependent cases draw a random
// expert_index (an int64 input, so the harness passes it through unchanged) and route it inside
// the case; the references route it with their own definition-by-counting loops below.
#include <algorithm>
#include <cmath>

#include "ops/harness.h"
#include "wensu/ops/moe.h"
#include "wensu/ops/shape.h"

namespace wensu::test {
namespace {

// The routing by definition: pair (t, k) of expert e ranks after every pair of e that comes
// earlier in (choice, token) order; it is kept when its rank is below the capacity (or always
// when dropless), and its row is its rank plus the rows kept by experts 0 .. e-1.
struct RefRouting {
  int64_t T = 0, K = 0, rows = 0;
  std::vector<int64_t> position;  // [T * K], -1 when dropped
};

RefRouting ref_routing(const Tensor& expert_index, int64_t E, int64_t capacity) {
  RefRouting r;
  r.T = expert_index.size(0);
  r.K = expert_index.size(1);
  auto ei = expert_index.to_vector<int64_t>();
  const int64_t P = r.T * r.K;
  std::vector<int64_t> rank(size_t(P), 0), kept(size_t(E), 0);
  for (int64_t a = 0; a < P; ++a) {
    const int64_t ta = a / r.K, ka = a % r.K;
    for (int64_t b = 0; b < P; ++b) {
      const int64_t tb = b / r.K, kb = b % r.K;
      if (ei[size_t(b)] == ei[size_t(a)] && (kb < ka || (kb == ka && tb < ta))) ++rank[size_t(a)];
    }
  }
  for (int64_t a = 0; a < P; ++a)
    if (capacity == 0 || rank[size_t(a)] < capacity) ++kept[size_t(ei[size_t(a)])];
  r.position.assign(size_t(P), -1);
  for (int64_t a = 0; a < P; ++a) {
    const int64_t e = ei[size_t(a)];
    if (capacity != 0 && rank[size_t(a)] >= capacity) continue;
    int64_t before = 0;
    for (int64_t f = 0; f < e; ++f) before += kept[size_t(f)];
    r.position[size_t(a)] = before + rank[size_t(a)];
  }
  for (int64_t e = 0; e < E; ++e) r.rows += kept[size_t(e)];
  return r;
}

// out[position[t, k]] = x[t] for every kept pair.
Tensor ref_permute(const Tensor& x, const RefRouting& r) {
  const int64_t D = x.size(1);
  auto xv = x.to_vector<double>();
  std::vector<double> out(size_t(r.rows * D), 0.0);
  for (int64_t t = 0; t < r.T; ++t)
    for (int64_t k = 0; k < r.K; ++k) {
      const int64_t p = r.position[size_t(t * r.K + k)];
      if (p < 0) continue;
      for (int64_t d = 0; d < D; ++d) out[size_t(p * D + d)] = xv[size_t(t * D + d)];
    }
  return Tensor::from_vector(out, {r.rows, D});
}

// out[t] = sum over kept k of w[t, k] y[position[t, k]].
Tensor ref_combine(const Tensor& y, const Tensor& w, const RefRouting& r) {
  const int64_t D = y.size(1);
  auto yv = y.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> out(size_t(r.T * D), 0.0);
  for (int64_t t = 0; t < r.T; ++t)
    for (int64_t k = 0; k < r.K; ++k) {
      const int64_t p = r.position[size_t(t * r.K + k)];
      if (p < 0) continue;
      for (int64_t d = 0; d < D; ++d) out[size_t(t * D + d)] += wv[size_t(t * r.K + k)] * yv[size_t(p * D + d)];
    }
  return Tensor::from_vector(out, {r.T, D});
}

// out[i, o] = bias[g][o] + sum_c x[i, c] w[g][o, c] for the group g holding row i.
Tensor ref_grouped_matmul(const Tensor& x, const Tensors& w, const std::vector<int64_t>& offsets, const Tensors& bias) {
  const int64_t N = x.size(0), Din = x.size(1), Dout = w[0].size(0);
  auto xv = x.to_vector<double>();
  std::vector<double> out(size_t(N * Dout), 0.0);
  for (size_t g = 0; g < w.size(); ++g) {
    auto wv = w[g].to_vector<double>();
    std::vector<double> bv = bias.empty() ? std::vector<double>(size_t(Dout), 0.0) : bias[g].to_vector<double>();
    for (int64_t i = offsets[g]; i < offsets[g + 1]; ++i)
      for (int64_t o = 0; o < Dout; ++o) {
        double s = bv[size_t(o)];
        for (int64_t c = 0; c < Din; ++c) s += xv[size_t(i * Din + c)] * wv[size_t(o * Din + c)];
        out[size_t(i * Dout + o)] = s;
      }
  }
  return Tensor::from_vector(out, {N, Dout});
}

// Per row of x [..., n]: the k largest values by repeated selection of the first maximum
// (NaN above everything), so equal values come out in index order.
Tensor ref_topk(const Tensor& x, int64_t k) {
  const int64_t n = x.size(-1), rows = x.numel() / n;
  auto xv = x.to_vector<double>();
  std::vector<double> out;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<bool> taken(size_t(n), false);
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      for (int64_t i = 0; i < n; ++i) {
        if (taken[size_t(i)]) continue;
        const double v = xv[size_t(r * n + i)];
        if (best < 0) {
          best = i;
          continue;
        }
        const double b = xv[size_t(r * n + best)];
        if ((std::isnan(v) && !std::isnan(b)) || (!std::isnan(b) && v > b)) best = i;
      }
      taken[size_t(best)] = true;
      out.push_back(xv[size_t(r * n + best)]);
    }
  }
  Shape s = x.shape();
  s.back() = k;
  return Tensor::from_vector(out, s);
}

struct Routed {
  int64_t T, K, E, capacity;
};

OpCase routing_case(std::string label, Routed c) {
  // Position then source as one float vector of x's dtype (the float input only picks the dtype).
  return {"moe_routing", label,
          [=](Generator& g) { return Tensors{randint(g, {c.T, c.K}, 0, c.E), randn(g, {1})}; },
          [=](const Tensors& x) {
            ops::MoeRouting r = ops::moe_routing(x[0], c.E, c.capacity);
            auto v = r.position.to_vector<int64_t>();
            for (int64_t s : r.source.to_vector<int64_t>()) v.push_back(s);
            std::vector<double> d(v.begin(), v.end());
            return Tensor::from_vector(d, {int64_t(d.size())}).to(x[1].dtype());
          },
          [=](const Tensors& x) {
            RefRouting r = ref_routing(x[0], c.E, c.capacity);
            std::vector<double> d(r.position.begin(), r.position.end()), src(size_t(r.rows));
            for (int64_t a = 0; a < c.T * c.K; ++a)
              if (r.position[size_t(a)] >= 0) src[size_t(r.position[size_t(a)])] = double(a / c.K);
            d.insert(d.end(), src.begin(), src.end());
            return Tensor::from_vector(d, {int64_t(d.size())});
          },
          0.0, /*gradcheck=*/false, 1e-6, 1e-6, {1}};
}

OpCase permute_case(std::string label, Routed c, int64_t D, bool grad = true) {
  return {"moe_permute", label,
          [=](Generator& g) { return Tensors{randn(g, {c.T, D}), randint(g, {c.T, c.K}, 0, c.E)}; },
          [=](const Tensors& x) { return ops::moe_permute(x[0], ops::moe_routing(x[1], c.E, c.capacity)); },
          [=](const Tensors& x) { return ref_permute(x[0], ref_routing(x[1], c.E, c.capacity)); }, 1e-6, grad};
}

OpCase combine_case(std::string label, Routed c, int64_t D, bool grad = true) {
  return {"moe_combine", label,
          [=](Generator& g) {
            Tensor ei = randint(g, {c.T, c.K}, 0, c.E);
            const int64_t N = ref_routing(ei, c.E, c.capacity).rows;
            return Tensors{randn(g, {N, D}), uniform(g, {c.T, c.K}, 0.1, 1.0), ei};
          },
          [=](const Tensors& x) { return ops::moe_combine(x[0], x[1], ops::moe_routing(x[2], c.E, c.capacity)); },
          [=](const Tensors& x) { return ref_combine(x[0], x[1], ref_routing(x[2], c.E, c.capacity)); }, 1e-5, grad};
}

// Inputs: x [N, Din], then G weights [Dout, Din], then G biases [Dout] when with_bias.
OpCase grouped_case(std::string label, std::vector<int64_t> offsets, int64_t Din, int64_t Dout, bool with_bias,
                    bool grad = true) {
  const size_t G = offsets.size() - 1;
  auto unpack = [=](const Tensors& x, Tensors& w, Tensors& b) {
    w.assign(x.begin() + 1, x.begin() + 1 + long(G));
    if (with_bias) b.assign(x.begin() + 1 + long(G), x.end());
  };
  return {"grouped_matmul", label,
          [=](Generator& g) {
            Tensors in{randn(g, {offsets.back(), Din})};
            for (size_t i = 0; i < G; ++i) in.push_back(randn(g, {Dout, Din}));
            if (with_bias)
              for (size_t i = 0; i < G; ++i) in.push_back(randn(g, {Dout}));
            return in;
          },
          [=](const Tensors& x) {
            Tensors w, b;
            unpack(x, w, b);
            return ops::grouped_matmul(x[0], w, offsets, b);
          },
          [=](const Tensors& x) {
            Tensors w, b;
            unpack(x, w, b);
            return ref_grouped_matmul(x[0], w, offsets, b);
          },
          1e-5, grad};
}

OpCase topk_case(std::string label, Shape xs, int64_t k) {
  return {"topk", label, [=](Generator& g) { return Tensors{randn(g, xs)}; },
          [=](const Tensors& x) { return ops::topk(x[0], k).first; },
          [=](const Tensors& x) { return ref_topk(x[0], k); }, 1e-6};
}

}  // namespace

std::vector<OpCase> moe_cases() {
  std::vector<OpCase> cs;
  cs.push_back(routing_case("dropless", {9, 2, 4, 0}));
  cs.push_back(routing_case("capacity_drops", {10, 3, 3, 4}));

  cs.push_back(permute_case("top2_dropless", {5, 2, 3, 0}, 4));
  // Capacity 1 over 3 experts keeps at most 3 of 10 pairs: some tokens lose every choice and
  // must get a zero gradient.
  cs.push_back(permute_case("capacity_drops_whole_tokens", {5, 2, 3, 1}, 3));
  cs.push_back(permute_case("parallel", {300, 2, 8, 0}, 64, /*grad=*/false));

  cs.push_back(combine_case("top2_dropless", {5, 2, 3, 0}, 4));
  cs.push_back(combine_case("top3_capacity_drops", {6, 3, 4, 3}, 3));
  cs.push_back(combine_case("parallel", {300, 2, 8, 70}, 64, /*grad=*/false));

  cs.push_back(grouped_case("bias_empty_group", {0, 4, 4, 9}, 3, 4, /*with_bias=*/true));
  cs.push_back(grouped_case("no_bias_empty_ends", {0, 0, 3, 7, 7}, 3, 2, /*with_bias=*/false));
  // Enough similar groups for the concurrent schedule (one group per thread), and few large
  // ones for the threaded-GEMM schedule.
  cs.push_back(grouped_case("many_groups", {0, 70, 140, 140, 215, 290, 360, 430, 500, 600}, 24, 40, true, false));
  cs.push_back(grouped_case("two_large_groups", {0, 150, 400}, 48, 64, true, false));
  // Weights as transposed views of one stacked [G, Din, Dout] tensor: the kernel reads the
  // column-major layout directly and the gradients flow back through the views.
  {
    const std::vector<int64_t> offsets{0, 3, 3, 8};
    cs.push_back({"grouped_matmul", "transposed_stacked_weights",
                  [](Generator& g) { return Tensors{randn(g, {8, 3}), randn(g, {3, 3, 5})}; },
                  [=](const Tensors& x) {
                    Tensors w;
                    for (int64_t gi = 0; gi < 3; ++gi) w.push_back(x[1].narrow(0, gi, 1).squeeze(0).transpose(0, 1));
                    return ops::grouped_matmul(x[0], w, offsets);
                  },
                  [=](const Tensors& x) {
                    Tensors w;
                    for (int64_t gi = 0; gi < 3; ++gi)
                      w.push_back(x[1].narrow(0, gi, 1).squeeze(0).transpose(0, 1).contiguous());
                    return ref_grouped_matmul(x[0], w, offsets, {});
                  }});
  }

  cs.push_back(topk_case("top2_of_8", {4, 8}, 2));
  cs.push_back(topk_case("all_3d", {2, 3, 5}, 5));
  cs.push_back(topk_case("top1", {6}, 1));
  // A transposed view: the op makes it contiguous before the kernel.
  cs.push_back({"topk", "transposed_x", [](Generator& g) { return Tensors{randn(g, {6, 3})}; },
                [](const Tensors& x) { return ops::topk(x[0].transpose(0, 1), 2).first; },
                [](const Tensors& x) { return ref_topk(x[0].transpose(0, 1).contiguous(), 2); }, 1e-6});
  return cs;
}

}  // namespace wensu::test
