#include "wensu/ops/softmax.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/dispatch.h"
#include "wensu/ops/shape.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

struct Split {
  int64_t outer = 1, n = 1, inner = 1;
};

// x viewed as [outer, n, inner] around dim d; the kernels walk this layout directly, so a
// softmax over a middle dim needs no transposed copy.
Split split_at(const Tensor& x, int64_t d) {
  Split s;
  for (int64_t k = 0; k < d; ++k) s.outer *= x.size(k);
  s.n = x.size(d);
  for (int64_t k = d + 1; k < x.dim(); ++k) s.inner *= x.size(k);
  return s;
}

// Backward of y = softmax(x) along a row, J = diag(y) - y y^T:
//   dx_i = sum_j g_j dy_j/dx_i = y_i g_i - y_i sum_j g_j y_j = y_i (g_i - <g, y>).
// Backward of y = log_softmax(x), y_j = x_j - lse(x), d lse/dx_i = softmax_i = exp(y_i):
//   dx_i = g_i - exp(y_i) sum_j g_j.
// Both need only the output y, so the input is not kept.
struct SoftmaxNode : Node {
  Tensor y;  // forward output, contiguous
  Split s;
  bool log = false;
  std::vector<Tensor> apply(const Tensor& g) override {
    const char* op = log ? "log_softmax" : "softmax";
    if (g.device() == Device::cuda) no_cuda_impl(op);
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
    cpu::dispatch_float(y.dtype(), op, [&](auto z) {
      using T = decltype(z);
      cpu::softmax_backward<T>(gc.data<T>(), y.data<T>(), dx.data<T>(), s.outer, s.n, s.inner, log);
    });
    return {dx};
  }
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  void release() override { y = Tensor(); }
};

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  Device dev = common_device({&x}, op);
  DType dt = common_float_dtype({&x}, op);
  WENSU_CHECK(x.dim() >= 1, op, ": needs at least a 1-d input, got a scalar");
  const int64_t d = normalize_dim(dim, x.dim(), op);
  const Split s = split_at(x, d);
  Tensor out = Tensor::empty(x.shape(), dt, dev);
  if (dev == Device::cuda) no_cuda_impl(op);
  Tensor xc = x.contiguous().detach();
  cpu::dispatch_float(dt, op, [&](auto z) {
    using T = decltype(z);
    cpu::softmax_forward<T>(xc.data<T>(), out.data<T>(), s.outer, s.n, s.inner, log);
  });
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<SoftmaxNode>();
  node->y = out.detach();
  node->s = s;
  node->log = log;
  return record(out, node, {&x});
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace wensu::ops
