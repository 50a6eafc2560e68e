#include "wensu/ops/loss.h"

#include <string>

#include "wensu/autograd/node.h"
#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

// "[1, 3]": the multi-index of flat position `flat` in `shape`, for error messages.
std::string index_str(int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(idx);
}

// Throws on the first target outside [0, C) that is not ignore_index; returns how many targets
// are not ignored.
int64_t check_targets(const Tensor& targets, int64_t C, int64_t ignore_index) {
  const int64_t* t = targets.data<int64_t>();
  const int64_t N = targets.numel();
  int64_t valid = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (t[i] == ignore_index) continue;
    WENSU_CHECK(t[i] >= 0 && t[i] < C, "cross_entropy: target ", t[i], " at position ",
                index_str(i, targets.shape()), " is out of range for ", C, " classes (expected 0..", C - 1,
                " or ignore_index ", ignore_index, ")");
    ++valid;
  }
  return valid;
}

// L = 1/n sum_i loss_i over the n non-ignored rows, loss_i = lse_i - (1-eps) x_{i,t} - eps/C sum_c x_{i,c}
// (using -log p_c = lse - x_c). With d lse_i / d x_{i,c} = softmax_{i,c}:
//   dL/dx_{i,c} = (softmax_{i,c} - (1-eps) [c == t_i] - eps/C) / n,
// and 0 for ignored rows. The backward kernel recomputes softmax from the saved lse.
struct CrossEntropyNode : Node {
  Tensor logits, targets, lse;  // [N, C] contiguous, [N] int64, [N] float64
  Shape logits_shape;
  int64_t n_valid = 0, ignore_index = -100;
  double eps = 0.0;
  std::vector<Tensor> apply(const Tensor& g) override {
    if (g.device() == Device::cuda) no_cuda_impl("cross_entropy");
    Tensor dl = Tensor::empty(logits_shape, logits.dtype(), logits.device());
    const int64_t C = logits.size(-1), N = lse.numel();
    // All targets ignored: the loss was the constant 0, so its gradient is 0.
    const double scale = n_valid > 0 ? g.item() / double(n_valid) : 0.0;
    cpu::dispatch_float(logits.dtype(), "cross_entropy", [&](auto z) {
      using T = decltype(z);
      cpu::cross_entropy_backward<T>(logits.data<T>(), targets.data<int64_t>(), lse.data<double>(), dl.data<T>(),
                                     N, C, ignore_index, eps, scale);
    });
    return {dl};
  }
  const char* name() const override { return "cross_entropy"; }
  void release() override { logits = targets = lse = Tensor(); }
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index, double label_smoothing) {
  Device dev = common_device({&logits, &targets}, "cross_entropy");
  DType dt = common_float_dtype({&logits}, "cross_entropy");
  WENSU_CHECK(targets.dtype() == DType::i64, "cross_entropy: targets must be int64 class indices, got ",
              targets.describe());
  WENSU_CHECK(logits.dim() >= 1, "cross_entropy: logits must be [..., C], got a scalar");
  const Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  WENSU_CHECK(targets.shape() == lead, "cross_entropy: targets ", shape_str(targets.shape()),
              " must have the leading shape ", shape_str(lead), " of logits ", shape_str(logits.shape()));
  const int64_t C = logits.size(-1);
  WENSU_CHECK(C >= 1, "cross_entropy: logits have no classes (", shape_str(logits.shape()), ")");
  WENSU_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
              "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  if (dev == Device::cuda) no_cuda_impl("cross_entropy");

  Tensor tc = targets.contiguous().detach();
  const int64_t n_valid = check_targets(tc, C, ignore_index);
  const int64_t N = tc.numel();
  Tensor lc = logits.contiguous().detach();
  Tensor lse = Tensor::empty({N}, DType::f64, dev);
  Tensor out = Tensor::empty({}, dt, dev);
  cpu::dispatch_float(dt, "cross_entropy", [&](auto z) {
    using T = decltype(z);
    const double total = cpu::cross_entropy_forward<T>(lc.data<T>(), tc.data<int64_t>(), lse.data<double>(), N, C,
                                                       ignore_index, label_smoothing);
    out.data<T>()[0] = T(n_valid > 0 ? total / double(n_valid) : 0.0);
  });
  if (!autograd::needs_grad({&logits})) return out;
  auto node = std::make_shared<CrossEntropyNode>();
  node->logits = lc;
  node->targets = tc;
  node->lse = lse;
  node->logits_shape = logits.shape();
  node->n_valid = n_valid;
  node->ignore_index = ignore_index;
  node->eps = label_smoothing;
  return record(out, node, {&logits});
}

}  // namespace wensu::ops
