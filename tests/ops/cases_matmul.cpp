// Matrix products against triple loops.
#include "ops/harness.h"
#include "wensu/ops/matmul.h"

namespace wensu::test {
namespace {

// a [B?, m, k] @ b [B?, k, n]; batch dims of size 1 broadcast (3-d or 2-d only).
Tensor ref_matmul(const Tensor& a, const Tensor& b) {
  Tensor A = a.dim() == 2 ? a.reshape({1, a.size(0), a.size(1)}) : a;
  Tensor Bt = b.dim() == 2 ? b.reshape({1, b.size(0), b.size(1)}) : b;
  const int64_t B = std::max(A.size(0), Bt.size(0)), m = A.size(1), k = A.size(2), n = Bt.size(2);
  auto pa = A.to_vector<double>(), pb = Bt.to_vector<double>();
  std::vector<double> out(size_t(B * m * n), 0.0);
  for (int64_t z = 0; z < B; ++z) {
    int64_t za = A.size(0) == 1 ? 0 : z, zb = Bt.size(0) == 1 ? 0 : z;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t l = 0; l < k; ++l) s += pa[(za * m + i) * k + l] * pb[(zb * k + l) * n + j];
        out[(z * m + i) * n + j] = s;
      }
  }
  if (a.dim() == 2 && b.dim() == 2) return Tensor::from_vector(out, {m, n});
  return Tensor::from_vector(out, {B, m, n});
}

Tensor ref_linear(const Tensor& x, const Tensor& w, const Tensor* bias) {
  Tensor x2 = x.reshape({-1, x.size(-1)});
  Tensor y = ref_matmul(x2, w.transpose(0, 1).contiguous());
  if (bias) {
    auto v = y.to_vector<double>(), b = bias->to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i) v[i] += b[i % b.size()];
    y = Tensor::from_vector(v, y.shape());
  }
  Shape s = x.shape();
  s.back() = w.size(0);
  return y.reshape(s);
}

}  // namespace

std::vector<OpCase> matmul_cases() {
  std::vector<OpCase> cs;
  cs.push_back({"matmul", "2d", [](Generator& g) { return Tensors{randn(g, {3, 4}), randn(g, {4, 5})}; },
                [](const Tensors& x) { return ops::matmul(x[0], x[1]); },
                [](const Tensors& x) { return ref_matmul(x[0], x[1]); }});
  cs.push_back({"matmul", "batched", [](Generator& g) { return Tensors{randn(g, {2, 3, 4}), randn(g, {2, 4, 2})}; },
                [](const Tensors& x) { return ops::matmul(x[0], x[1]); },
                [](const Tensors& x) { return ref_matmul(x[0], x[1]); }});
  cs.push_back({"matmul", "broadcast_b", [](Generator& g) { return Tensors{randn(g, {3, 2, 4}), randn(g, {4, 3})}; },
                [](const Tensors& x) { return ops::matmul(x[0], x[1]); },
                [](const Tensors& x) { return ref_matmul(x[0], x[1].reshape({1, 4, 3})); }});
  cs.push_back({"matmul", "transposed_views",
                [](Generator& g) { return Tensors{randn(g, {2, 4, 3}), randn(g, {2, 5, 4})}; },
                [](const Tensors& x) { return ops::matmul(x[0].transpose(1, 2), x[1].transpose(1, 2)); },
                [](const Tensors& x) {
                  return ref_matmul(x[0].transpose(1, 2).contiguous(), x[1].transpose(1, 2).contiguous());
                }});
  cs.push_back({"matmul", "large_blas_threads",
                [](Generator& g) { return Tensors{randn(g, {64, 96}), randn(g, {96, 80})}; },
                [](const Tensors& x) { return ops::matmul(x[0], x[1]); },
                [](const Tensors& x) { return ref_matmul(x[0], x[1]); }, 1e-5, /*gradcheck=*/false});
  {  // Only b differentiable: the backward rule must not need a saved a-side tensor.
    OpCase c{"matmul", "grad_of_b_only", [](Generator& g) { return Tensors{randn(g, {3, 4}), randn(g, {4, 2})}; },
             [](const Tensors& x) { return ops::matmul(x[0], x[1]); },
             [](const Tensors& x) { return ref_matmul(x[0], x[1]); }};
    c.no_grad_inputs = {0};
    cs.push_back(c);
  }
  cs.push_back({"linear", "bias_3d",
                [](Generator& g) { return Tensors{randn(g, {2, 3, 4}), randn(g, {5, 4}), randn(g, {5})}; },
                [](const Tensors& x) { return ops::linear(x[0], x[1], x[2]); },
                [](const Tensors& x) { return ref_linear(x[0], x[1], &x[2]); }});
  cs.push_back({"linear", "no_bias", [](Generator& g) { return Tensors{randn(g, {3, 4}), randn(g, {2, 4})}; },
                [](const Tensors& x) { return ops::linear(x[0], x[1]); },
                [](const Tensors& x) { return ref_linear(x[0], x[1], nullptr); }});
  return cs;
}

}  // namespace wensu::test
