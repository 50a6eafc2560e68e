#include "wensu/ops/reduce.h"

#include <algorithm>

#include "wensu/autograd/node.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/dispatch.h"
#include "wensu/ops/shape.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

struct Dims {
  int64_t outer = 1, n = 1, inner = 1;
  Shape kept;  // x's shape with the reduced dim set to 1
};

Dims split_dims(const Tensor& x, int64_t d) {
  Dims s;
  for (int64_t k = 0; k < d; ++k) s.outer *= x.size(k);
  s.n = x.size(d);
  for (int64_t k = d + 1; k < x.dim(); ++k) s.inner *= x.size(k);
  s.kept = x.shape();
  s.kept[d] = 1;
  return s;
}

struct SumNode : Node {
  Shape in_shape, kept;
  std::vector<Tensor> apply(const Tensor& g) override {
    return {expand(reshape(g, kept), in_shape)};
  }
  const char* name() const override { return "sum"; }
};

// One axis, keepdim.
Tensor sum_one(const Tensor& x, int64_t d) {
  Device dev = common_device({&x}, "sum");
  DType dt = common_float_dtype({&x}, "sum");
  Dims s = split_dims(x, d);
  Tensor out = Tensor::empty(s.kept, dt, dev);
  if (dev == Device::cuda) no_cuda_impl("sum");
  Tensor xc = x.contiguous().detach();
  cpu::sum_dim(xc, s.outer, s.n, s.inner, out);
  auto node = std::make_shared<SumNode>();
  node->in_shape = x.shape();
  node->kept = s.kept;
  return record(out, node, {&x});
}

struct MaxNode : Node {
  Tensor idx;
  Dims dims;
  Shape in_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gi = Tensor::empty(in_shape, g.dtype(), g.device());
    cpu::max_dim_backward(g.contiguous(), idx, dims.outer, dims.n, dims.inner, gi);
    return {gi};
  }
  const char* name() const override { return "max"; }
  void release() override { idx = Tensor(); }
};

Tensor max_one(const Tensor& x, int64_t d) {
  Device dev = common_device({&x}, "max");
  DType dt = common_float_dtype({&x}, "max");
  Dims s = split_dims(x, d);
  WENSU_CHECK(s.n > 0, "max: reducing an empty dim");
  Tensor out = Tensor::empty(s.kept, dt, dev);
  Tensor idx = Tensor::empty(s.kept, DType::i64, dev);
  if (dev == Device::cuda) no_cuda_impl("max");
  cpu::max_dim(x.contiguous().detach(), s.outer, s.n, s.inner, out, idx);
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<MaxNode>();
  node->idx = idx;
  node->dims = s;
  node->in_shape = x.shape();
  return record(out, node, {&x});
}

std::vector<int64_t> norm_axes(const Tensor& x, const std::vector<int64_t>& axes, const char* op) {
  std::vector<int64_t> a;
  if (axes.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) a.push_back(d);
  } else {
    for (int64_t d : axes) a.push_back(normalize_dim(d, x.dim(), op));
  }
  std::sort(a.begin(), a.end());
  WENSU_CHECK(std::adjacent_find(a.begin(), a.end()) == a.end(), op, ": repeated axis");
  return a;
}

// Reduce one axis at a time (highest first so lower indices stay valid); each step is a
// differentiable op, so the composite needs no backward rule of its own.
template <typename One>
Tensor reduce(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim, const char* op, One one) {
  if (x.dim() == 0) return reshape(one(reshape(x, {1}), 0), {});  // a scalar reduces to itself
  std::vector<int64_t> a = norm_axes(x, axes, op);
  Tensor y = x;
  for (auto it = a.rbegin(); it != a.rend(); ++it) y = one(y, *it);
  if (!keepdim) {
    Shape s;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (!std::binary_search(a.begin(), a.end(), d)) s.push_back(x.size(d));
    y = reshape(y, s);
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  return reduce(x, axes, keepdim, "sum", sum_one);
}

Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  return reduce(x, axes, keepdim, "max", max_one);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  int64_t count = 1;
  for (int64_t d : norm_axes(x, axes, "mean")) count *= x.size(d);
  WENSU_CHECK(count > 0, "mean: reducing over zero elements");
  return scale(sum(x, axes, keepdim), 1.0 / double(count));
}

}  // namespace wensu::ops
