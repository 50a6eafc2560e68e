#include "wensu/ops/binary.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/dispatch.h"
#include "wensu/ops/shape.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  Device dev = common_device({&a, &b}, name);
  DType dt = common_float_dtype({&a, &b}, name);
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), name), dt, dev);
  if (dev == Device::cuda) no_cuda_impl(name);
  cpu::binary(op, a, b, out);
  return out;
}

// d(a op b): gradients are reduced back to each input's shape with sum_to.
struct BinaryNode : Node {
  BinaryOp op;
  Shape a_shape, b_shape;
  Tensor a, b, out;  // saved only where the rule needs them
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::add:
        ga = sum_to(g, a_shape);
        gb = sum_to(g, b_shape);
        break;
      case BinaryOp::sub:
        ga = sum_to(g, a_shape);
        gb = sum_to(neg(g), b_shape);
        break;
      case BinaryOp::mul:
        if (edges[0].active()) ga = sum_to(mul(g, b), a_shape);
        if (edges[1].active()) gb = sum_to(mul(g, a), b_shape);
        break;
      case BinaryOp::div:  // d/da = 1/b; d/db = -a/b^2 = -out/b
        ga = div(g, b);
        if (edges[1].active()) gb = sum_to(neg(mul(ga, out)), b_shape);
        ga = edges[0].active() ? sum_to(ga, a_shape) : Tensor();
        break;
    }
    return {ga, gb};
  }
  const char* name() const override { return "binary"; }
  void release() override { a = b = out = Tensor(); }
};

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  Tensor out = binary_forward(op, a, b, name);
  if (!autograd::needs_grad({&a, &b})) return out;
  auto node = std::make_shared<BinaryNode>();
  node->op = op;
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  if (op == BinaryOp::mul) {
    if (b.requires_grad()) node->a = a.detach();
    if (a.requires_grad()) node->b = b.detach();
  } else if (op == BinaryOp::div) {
    node->b = b.detach();
    if (b.requires_grad()) node->out = out.detach();
  }
  return record(out, node, {&a, &b});
}

struct AffineNode : Node {
  double mul;
  std::vector<Tensor> apply(const Tensor& g) override { return {mul == 1.0 ? g : scale(g, mul)}; }
  const char* name() const override { return "scale"; }
};

Tensor affine(const Tensor& x, double m, double c, const char* name) {
  Device dev = common_device({&x}, name);
  DType dt = common_float_dtype({&x}, name);
  Tensor out = Tensor::empty(x.shape(), dt, dev);
  if (dev == Device::cuda) no_cuda_impl(name);
  cpu::affine(x, m, c, out);
  auto node = std::make_shared<AffineNode>();
  node->mul = m;
  return record(out, node, {&x});
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b, "mul"); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b, "div"); }
Tensor scale(const Tensor& x, double s) { return affine(x, s, 0.0, "scale"); }
Tensor add_scalar(const Tensor& x, double s) { return affine(x, 1.0, s, "add_scalar"); }
Tensor neg(const Tensor& x) { return affine(x, -1.0, 0.0, "neg"); }

void add_(const Tensor& acc, const Tensor& b) {
  Device dev = common_device({&acc, &b}, "add_");
  common_float_dtype({&acc, &b}, "add_");
  WENSU_CHECK(broadcast_shapes(acc.shape(), b.shape(), "add_") == acc.shape(), "add_: cannot add ",
              shape_str(b.shape()), " into ", shape_str(acc.shape()));
  if (dev == Device::cuda) no_cuda_impl("add_");
  cpu::binary(BinaryOp::add, acc, b, acc);
}

}  // namespace wensu::ops
