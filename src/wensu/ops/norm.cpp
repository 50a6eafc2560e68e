#include "wensu/ops/norm.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

// Kernel pointer for an optional tensor: null means "absent" (no weight, gradient not wanted).
template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Checks shared by both norms; returns D.
int64_t check_norm_args(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, const char* op) {
  WENSU_CHECK(x.dim() >= 1, op, ": input must be [..., D], got a scalar");
  const int64_t D = x.size(-1);
  WENSU_CHECK(D >= 1, op, ": normalised dim is empty in ", shape_str(x.shape()));
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    WENSU_CHECK(p->dim() == 1 && p->size(0) == D, op, ": ", p == &weight ? "weight " : "bias ",
                shape_str(p->shape()), " must be [", D, "] to match input ", shape_str(x.shape()));
  }
  WENSU_CHECK(eps >= 0.0, op, ": eps must be non-negative, got ", eps);
  return D;
}

// Parameter gradients come back shaped like the parameters even when x was a view.
Tensor grad_like(const Tensor& t) { return t.defined() ? Tensor::empty(t.shape(), t.dtype(), t.device()) : Tensor(); }

// y = xhat * w + b, xhat = (x - mu) * r, r = (var + eps)^-1/2, over a row of D elements.
// With dxhat = g * w, and using d mu/dx_j = 1/D, d r/dx_j = -r^3 (x_j - mu) / D = -r^2 xhat_j / D:
//   dx_i = r * (dxhat_i - mean_j(dxhat_j) - xhat_i * mean_j(dxhat_j * xhat_j))
//   dw   = sum_rows g * xhat,  db = sum_rows g.
struct LayerNormNode : Node {
  Tensor x, weight, mean, rstd;  // x [rows, D] contiguous; weight may be undefined
  Shape x_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    if (g.device() == Device::cuda) no_cuda_impl("layer_norm");
    const int64_t D = x.size(-1), rows = x.size(0);
    Tensor gc = g.contiguous();
    Tensor dx = edges[0].active() ? Tensor::empty(x_shape, x.dtype(), x.device()) : Tensor();
    Tensor dw = edges[1].active() ? grad_like(weight) : Tensor();
    Tensor db = edges[2].active() ? Tensor::empty({D}, x.dtype(), x.device()) : Tensor();
    cpu::dispatch_float(x.dtype(), "layer_norm", [&](auto z) {
      using T = decltype(z);
      cpu::layer_norm_backward<T>(gc.data<T>(), x.data<T>(), ptr_or_null<T>(weight), mean.data<T>(), rstd.data<T>(),
                                  ptr_or_null<T>(dx), ptr_or_null<T>(dw), ptr_or_null<T>(db), rows, D);
    });
    return {dx, dw, db};
  }
  const char* name() const override { return "layer_norm"; }
  void release() override { x = weight = mean = rstd = Tensor(); }
};

// y = xhat * w, xhat = x * r, r = (mean(x^2) + eps)^-1/2. With dxhat = g * w and
// d r/dx_j = -r^3 x_j / D = -r^2 xhat_j / D:
//   dx_i = r * (dxhat_i - xhat_i * mean_j(dxhat_j * xhat_j)),  dw = sum_rows g * xhat.
struct RmsNormNode : Node {
  Tensor x, weight, rstd;
  Shape x_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    if (g.device() == Device::cuda) no_cuda_impl("rms_norm");
    const int64_t D = x.size(-1), rows = x.size(0);
    Tensor gc = g.contiguous();
    Tensor dx = edges[0].active() ? Tensor::empty(x_shape, x.dtype(), x.device()) : Tensor();
    Tensor dw = edges[1].active() ? grad_like(weight) : Tensor();
    cpu::dispatch_float(x.dtype(), "rms_norm", [&](auto z) {
      using T = decltype(z);
      cpu::rms_norm_backward<T>(gc.data<T>(), x.data<T>(), ptr_or_null<T>(weight), rstd.data<T>(), ptr_or_null<T>(dx),
                                ptr_or_null<T>(dw), rows, D);
    });
    return {dx, dw};
  }
  const char* name() const override { return "rms_norm"; }
  void release() override { x = weight = rstd = Tensor(); }
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  Device dev = common_device({&x, &weight, &bias}, "layer_norm");
  DType dt = common_float_dtype({&x, &weight, &bias}, "layer_norm");
  const int64_t D = check_norm_args(x, weight, bias, eps, "layer_norm");
  if (dev == Device::cuda) no_cuda_impl("layer_norm");
  Tensor xc = x.contiguous().detach();
  const int64_t rows = x.numel() / D;
  Tensor wc = weight.defined() ? weight.contiguous().detach() : Tensor();
  Tensor bc = bias.defined() ? bias.contiguous().detach() : Tensor();
  Tensor out = Tensor::empty(x.shape(), dt, dev);
  Tensor mean = Tensor::empty({rows}, dt, dev), rstd = Tensor::empty({rows}, dt, dev);
  cpu::dispatch_float(dt, "layer_norm", [&](auto z) {
    using T = decltype(z);
    cpu::layer_norm_forward<T>(xc.data<T>(), ptr_or_null<T>(wc), ptr_or_null<T>(bc), out.data<T>(), mean.data<T>(),
                               rstd.data<T>(), rows, D, eps);
  });
  if (!autograd::needs_grad({&x, &weight, &bias})) return out;
  auto node = std::make_shared<LayerNormNode>();
  node->x = xc.reshape({rows, D}).detach();
  node->weight = wc;
  node->mean = mean;
  node->rstd = rstd;
  node->x_shape = x.shape();
  return record(out, node, {&x, &weight, &bias});
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  Device dev = common_device({&x, &weight}, "rms_norm");
  DType dt = common_float_dtype({&x, &weight}, "rms_norm");
  const int64_t D = check_norm_args(x, weight, Tensor(), eps, "rms_norm");
  if (dev == Device::cuda) no_cuda_impl("rms_norm");
  Tensor xc = x.contiguous().detach();
  const int64_t rows = x.numel() / D;
  Tensor wc = weight.defined() ? weight.contiguous().detach() : Tensor();
  Tensor out = Tensor::empty(x.shape(), dt, dev);
  Tensor rstd = Tensor::empty({rows}, dt, dev);
  cpu::dispatch_float(dt, "rms_norm", [&](auto z) {
    using T = decltype(z);
    cpu::rms_norm_forward<T>(xc.data<T>(), ptr_or_null<T>(wc), out.data<T>(), rstd.data<T>(), rows, D, eps);
  });
  if (!autograd::needs_grad({&x, &weight})) return out;
  auto node = std::make_shared<RmsNormNode>();
  node->x = xc.reshape({rows, D}).detach();
  node->weight = wc;
  node->rstd = rstd;
  node->x_shape = x.shape();
  return record(out, node, {&x, &weight});
}

}  // namespace wensu::ops
