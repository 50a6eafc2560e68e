// Layer norm and RMS norm against per-row loops in double.
#include <cmath>

#include "ops/harness.h"
#include "wensu/ops/norm.h"

namespace wensu::test {
namespace {

// y = (x - mean) / sqrt(var + eps) * w + b over the last dim; w, b may be undefined.
Tensor ref_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const int64_t D = x.size(-1), rows = x.numel() / D;
  auto v = x.to_vector<double>();
  std::vector<double> wv = w.defined() ? w.to_vector<double>() : std::vector<double>(size_t(D), 1.0);
  std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>(size_t(D), 0.0);
  std::vector<double> out(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = v.data() + r * D;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < D; ++j) mean += xr[j];
    mean /= double(D);
    for (int64_t j = 0; j < D; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= double(D);
    for (int64_t j = 0; j < D; ++j) out[r * D + j] = (xr[j] - mean) / std::sqrt(var + eps) * wv[j] + bv[j];
  }
  return Tensor::from_vector(out, x.shape());
}

// y = x / sqrt(mean(x^2) + eps) * w over the last dim; w may be undefined.
Tensor ref_rms_norm(const Tensor& x, const Tensor& w, double eps) {
  const int64_t D = x.size(-1), rows = x.numel() / D;
  auto v = x.to_vector<double>();
  std::vector<double> wv = w.defined() ? w.to_vector<double>() : std::vector<double>(size_t(D), 1.0);
  std::vector<double> out(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = v.data() + r * D;
    double ms = 0;
    for (int64_t j = 0; j < D; ++j) ms += xr[j] * xr[j];
    ms /= double(D);
    for (int64_t j = 0; j < D; ++j) out[r * D + j] = xr[j] / std::sqrt(ms + eps) * wv[j];
  }
  return Tensor::from_vector(out, x.shape());
}

// Weights near 1 and biases near 0, as after initialisation plus some training.
Tensor weight(Generator& g, int64_t D) { return uniform(g, {D}, 0.5, 1.5); }
Tensor bias(Generator& g, int64_t D) { return uniform(g, {D}, -0.5, 0.5); }

// Rows with |mean| = 100 >> std = 1, where E[x^2] - E[x]^2 in float32 loses ~3 digits. The
// values sit on a 1/64 grid so float32 holds them exactly.
Tensor offset_rows(Generator& g, const Shape& s) {
  auto v = randn(g, s).to_vector<double>();
  for (auto& e : v) e = std::round(e * 64.0) / 64.0 + 100.0;
  return Tensor::from_vector(v, s);
}

}  // namespace

std::vector<OpCase> norm_cases() {
  std::vector<OpCase> cs;
  cs.push_back({"layer_norm", "affine_3d",
                [](Generator& g) { return Tensors{randn(g, {2, 3, 6}), weight(g, 6), bias(g, 6)}; },
                [](const Tensors& x) { return ops::layer_norm(x[0], x[1], x[2]); },
                [](const Tensors& x) { return ref_layer_norm(x[0], x[1], x[2], 1e-5); }});
  cs.push_back({"layer_norm", "no_affine", [](Generator& g) { return Tensors{randn(g, {4, 7})}; },
                [](const Tensors& x) { return ops::layer_norm(x[0], Tensor(), Tensor()); },
                [](const Tensors& x) { return ref_layer_norm(x[0], Tensor(), Tensor(), 1e-5); }});
  cs.push_back({"layer_norm", "weight_only", [](Generator& g) { return Tensors{randn(g, {3, 5}), weight(g, 5)}; },
                [](const Tensors& x) { return ops::layer_norm(x[0], x[1], Tensor(), 1e-3); },
                [](const Tensors& x) { return ref_layer_norm(x[0], x[1], Tensor(), 1e-3); }});
  cs.push_back({"layer_norm", "large_mean", [](Generator& g) { return Tensors{offset_rows(g, {4, 8}), weight(g, 8)}; },
                [](const Tensors& x) { return ops::layer_norm(x[0], x[1], Tensor()); },
                [](const Tensors& x) { return ref_layer_norm(x[0], x[1], Tensor(), 1e-5); }});
  // A strided (transposed) input: the op makes it contiguous before the row kernel.
  cs.push_back({"layer_norm", "transposed_input",
                [](Generator& g) { return Tensors{randn(g, {4, 5}), weight(g, 4), bias(g, 4)}; },
                [](const Tensors& x) { return ops::layer_norm(x[0].transpose(0, 1), x[1], x[2]); },
                [](const Tensors& x) { return ref_layer_norm(x[0].transpose(0, 1).contiguous(), x[1], x[2], 1e-5); }});
  // Only the parameters need gradients (frozen input): the kernel skips dx.
  {
    OpCase c{"layer_norm", "param_grads_only",
             [](Generator& g) { return Tensors{randn(g, {3, 5}), weight(g, 5), bias(g, 5)}; },
             [](const Tensors& x) { return ops::layer_norm(x[0], x[1], x[2]); },
             [](const Tensors& x) { return ref_layer_norm(x[0], x[1], x[2], 1e-5); }};
    c.no_grad_inputs = {0};
    cs.push_back(c);
  }
  // Enough rows for the threaded path with per-thread dweight/dbias partials.
  cs.push_back({"layer_norm", "parallel",
                [](Generator& g) { return Tensors{randn(g, {2, 32, 520}), weight(g, 520), bias(g, 520)}; },
                [](const Tensors& x) { return ops::layer_norm(x[0], x[1], x[2]); },
                [](const Tensors& x) { return ref_layer_norm(x[0], x[1], x[2], 1e-5); }, 1e-5,
                /*gradcheck=*/false});

  cs.push_back({"rms_norm", "weighted_3d", [](Generator& g) { return Tensors{randn(g, {2, 3, 6}), weight(g, 6)}; },
                [](const Tensors& x) { return ops::rms_norm(x[0], x[1]); },
                [](const Tensors& x) { return ref_rms_norm(x[0], x[1], 1e-6); }});
  cs.push_back({"rms_norm", "no_weight", [](Generator& g) { return Tensors{randn(g, {4, 7})}; },
                [](const Tensors& x) { return ops::rms_norm(x[0], Tensor(), 1e-3); },
                [](const Tensors& x) { return ref_rms_norm(x[0], Tensor(), 1e-3); }});
  {
    OpCase c{"rms_norm", "weight_grad_only", [](Generator& g) { return Tensors{randn(g, {3, 5}), weight(g, 5)}; },
             [](const Tensors& x) { return ops::rms_norm(x[0], x[1]); },
             [](const Tensors& x) { return ref_rms_norm(x[0], x[1], 1e-6); }};
    c.no_grad_inputs = {0};
    cs.push_back(c);
  }
  cs.push_back({"rms_norm", "parallel", [](Generator& g) { return Tensors{randn(g, {64, 520}), weight(g, 520)}; },
                [](const Tensors& x) { return ops::rms_norm(x[0], x[1]); },
                [](const Tensors& x) { return ref_rms_norm(x[0], x[1], 1e-6); }, 1e-5, /*gradcheck=*/false});
  return cs;
}

}  // namespace wensu::test
