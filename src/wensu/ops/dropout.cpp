#include "wensu/ops/dropout.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

// y = m * x / (1 - p) with a fixed 0/1 mask m  =>  dx = m * g / (1 - p), which is the forward
// kernel applied to g. The mask is recomputed from (seed, base) instead of being saved: a
// Philox round per four elements costs less than storing and re-reading a mask the size of x.
struct DropoutNode : Node {
  uint64_t seed = 0, base = 0;
  double p = 0;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
    cpu::dropout(g.contiguous().detach(), seed, base, p, gx);
    return {gx};
  }
  const char* name() const override { return "dropout"; }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  Device dev = common_device({&x}, "dropout");
  DType dt = common_float_dtype({&x}, "dropout");
  WENSU_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  if (dev == Device::cuda) no_cuda_impl("dropout");
  const uint64_t n = uint64_t(x.numel());
  const uint64_t base = gen.reserve((n + 3) / 4);  // one counter gives four 32-bit draws
  Tensor out = Tensor::empty(x.shape(), dt, dev);
  cpu::dropout(x.contiguous().detach(), gen.seed(), base, p, out);
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<DropoutNode>();
  node->seed = gen.seed();
  node->base = base;
  node->p = p;
  return record(out, node, {&x});
}

}  // namespace wensu::ops
