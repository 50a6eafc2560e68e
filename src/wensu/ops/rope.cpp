#include "wensu/ops/rope.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

// Each pair (x_i, x_{i+D/2}) is rotated by an orthogonal 2x2 matrix R(theta), so
// dx = R(theta)^T g = R(-theta) g: the same kernel with the sines negated.
struct RopeNode : Node {
  int64_t position_offset = 0;
  double base = 0;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
    cpu::rope(g.detach(), position_offset, base, /*inverse=*/true, gx);
    return {gx};
  }
  const char* name() const override { return "rope"; }
};

}  // namespace

Tensor rope(const Tensor& x, int64_t position_offset, double base) {
  Device dev = common_device({&x}, "rope");
  DType dt = common_float_dtype({&x}, "rope");
  WENSU_CHECK(x.dim() == 4, "rope: x must be [B, L, H, D], got ", shape_str(x.shape()));
  WENSU_CHECK(x.size(3) % 2 == 0, "rope: head dim D = ", x.size(3),
              " must be even (dims i and i + D/2 are rotated together)");
  WENSU_CHECK(base > 0.0, "rope: base must be positive, got ", base);
  Tensor out = Tensor::empty(x.shape(), dt, dev);
  if (dev == Device::cuda) no_cuda_impl("rope");
  cpu::rope(x.detach(), position_offset, base, /*inverse=*/false, out);
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<RopeNode>();
  node->position_offset = position_offset;
  node->base = base;
  return record(out, node, {&x});
}

}  // namespace wensu::ops
