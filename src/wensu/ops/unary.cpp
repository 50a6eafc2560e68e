#include "wensu/ops/unary.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

bool unary_saves_output(UnaryOp op) {
  switch (op) {
    case UnaryOp::exp:   // d exp(x) = y
    case UnaryOp::sqrt:  // d sqrt(x) = 1 / (2 y)
    case UnaryOp::tanh:  // d tanh(x) = 1 - y^2
    case UnaryOp::relu:  // d relu(x) = [y > 0], same as [x > 0]
    case UnaryOp::sigmoid:  // d sigmoid(x) = y (1 - y)
      return true;
    case UnaryOp::log:        // d log(x) = 1 / x
    case UnaryOp::gelu:       // the derivatives below need x itself
    case UnaryOp::gelu_tanh:
    case UnaryOp::silu:
    case UnaryOp::softplus:  // d softplus(x) = sigmoid(x)
    case UnaryOp::erf:       // d erf(x) = 2/sqrt(pi) e^{-x^2}
      return false;
  }
  return false;
}

namespace {

// The derivatives are evaluated by one fused CPU kernel (cpu::unary_backward) rather than a
// chain of library ops: gelu's needs erf and exp of x, and a single pass avoids the temporaries
// that g * (1 - y * y) and friends would allocate. The formulas are derived next to the kernel.
struct UnaryNode : Node {
  UnaryOp op;
  const char* op_name;
  Tensor saved;  // output or input, see unary_saves_output()
  std::vector<Tensor> apply(const Tensor& g) override {
    if (g.device() == Device::cuda) no_cuda_impl(op_name);
    Tensor gi = Tensor::empty(g.shape(), g.dtype(), g.device());
    cpu::unary_backward(op, g, saved, gi);
    return {gi};
  }
  const char* name() const override { return op_name; }
  void release() override { saved = Tensor(); }
};

Tensor unary(UnaryOp op, const Tensor& x, const char* name) {
  Device dev = common_device({&x}, name);
  DType dt = common_float_dtype({&x}, name);
  Tensor out = Tensor::empty(x.shape(), dt, dev);
  if (dev == Device::cuda) no_cuda_impl(name);
  cpu::unary(op, x, out);
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<UnaryNode>();
  node->op = op;
  node->op_name = name;
  node->saved = unary_saves_output(op) ? out.detach() : x.detach();
  return record(out, node, {&x});
}

}  // namespace

Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x, "exp"); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x, "log"); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x, "sqrt"); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x, "tanh"); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x, "relu"); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::gelu, x, "gelu"); }
Tensor gelu_tanh(const Tensor& x) { return unary(UnaryOp::gelu_tanh, x, "gelu_tanh"); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x, "silu"); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x, "sigmoid"); }
Tensor softplus(const Tensor& x) { return unary(UnaryOp::softplus, x, "softplus"); }
Tensor erf(const Tensor& x) { return unary(UnaryOp::erf, x, "erf"); }

}  // namespace wensu::ops
