#include "wensu/ops/matmul.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/cpu/linear_bf16.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/dispatch.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

// View t [..., r, c] expanded to batch shape `batch` as a 3-d [B, r, c] view. Returns an
// undefined tensor when the batch dims cannot be flattened without a copy.
Tensor as_batched(const Tensor& t, const Shape& batch) {
  Shape full = batch;
  full.push_back(t.size(-2));
  full.push_back(t.size(-1));
  Tensor e = expand(t.detach(), full).detach();
  const int64_t nb = int64_t(batch.size());
  // The batch dims flatten to one stride when each non-trivial dim steps over the next.
  std::vector<std::pair<int64_t, int64_t>> dims;  // (size, stride) of batch dims of size > 1
  for (int64_t d = 0; d < nb; ++d)
    if (e.size(d) != 1) dims.push_back({e.size(d), e.strides()[d]});
  for (size_t i = 0; i + 1 < dims.size(); ++i)
    if (dims[i].second != dims[i + 1].second * dims[i + 1].first) return Tensor();
  const int64_t bstride = dims.empty() ? 0 : dims.back().second;
  const int64_t B = shape_numel(batch);
  return make_view(e, {B, e.size(-2), e.size(-1)}, {bstride, e.strides()[nb], e.strides()[nb + 1]}, e.offset());
}

Tensor batched_or_copy(const Tensor& t, const Shape& batch) {
  Tensor v = as_batched(t, batch);
  if (v.defined()) return v;
  Shape full = batch;
  full.push_back(t.size(-2));
  full.push_back(t.size(-1));
  return expand(t.detach(), full).contiguous().detach().reshape({shape_numel(batch), t.size(-2), t.size(-1)});
}

Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  Device dev = common_device({&a, &b}, "matmul");
  DType dt = common_float_dtype({&a, &b}, "matmul");
  WENSU_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: needs at least 2-d operands, got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  WENSU_CHECK(a.size(-1) == b.size(-2), "matmul: inner dims differ: ", shape_str(a.shape()), " @ ",
              shape_str(b.shape()));
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(a.size(-2));
  out_shape.push_back(b.size(-1));
  Tensor out = Tensor::empty(out_shape, dt, dev);
  if (dev == Device::cuda) no_cuda_impl("matmul");
  Tensor c3 = make_view(out, {shape_numel(batch), a.size(-2), b.size(-1)},
                        {a.size(-2) * b.size(-1), b.size(-1), 1}, 0);
  cpu::gemm_batched(batched_or_copy(a, batch), batched_or_copy(b, batch), c3, 1.0, 0.0);
  return out;
}

// d(a@b): ga = g @ b^T, gb = a^T @ g, each summed back over broadcast batch dims.
struct MatmulNode : Node {
  Tensor a, b;  // each saved only when the other operand needs its gradient
  Shape a_shape, b_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor ga, gb;
    if (edges[0].active()) ga = sum_to(matmul_forward(g, b.transpose(-1, -2)), a_shape);
    if (edges[1].active()) gb = sum_to(matmul_forward(a.transpose(-1, -2), g), b_shape);
    return {ga, gb};
  }
  const char* name() const override { return "matmul"; }
  void release() override { a = b = Tensor(); }
};

// y = x W^T + b with x flattened to [M, in]:
//   dx = g W        [M, in]
//   dW = g^T x      [out, in]
//   db = sum_rows g [out]
struct LinearNode : Node {
  Tensor x2, w;  // x2: [M, in]
  Shape x_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor g2 = reshape(g, {-1, g.size(-1)});
    Tensor gx, gw, gb;
    if (edges[0].active()) gx = reshape(matmul_forward(g2, w), x_shape);
    if (edges[1].active()) {
      // dW [out, in] = g^T x. oneDNN runs this (T, N) product ~1.5x faster when its n >= m,
      // so for out > in compute dW^T = x^T g and transpose the (small) result.
      if (w.size(0) > w.size(1))
        gw = matmul_forward(x2.transpose(0, 1), g2).transpose(0, 1).contiguous();
      else
        gw = matmul_forward(g2.transpose(0, 1), x2);
    }
    if (edges.size() == 2) return {gx, gw};
    if (edges[2].active()) gb = sum(g2, {0});
    return {gx, gw, gb};
  }
  const char* name() const override { return "linear"; }
  void release() override { x2 = w = Tensor(); }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = matmul_forward(a, b);
  if (!autograd::needs_grad({&a, &b})) return out;
  auto node = std::make_shared<MatmulNode>();
  if (b.requires_grad()) node->a = a.detach();
  if (a.requires_grad()) node->b = b.detach();
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  return record(out, node, {&a, &b});
}

// Inference with bfloat16 weights (models converted for generation): few rows read the bf16
// weights directly; many rows (a prompt's prefill) convert them and use the float32 GEMM.
static Tensor linear_bf16_weights(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  WENSU_CHECK(!autograd::needs_grad({&x, &weight, &bias}), "linear: bfloat16 weights are for inference only ",
              "(run under NoGradGuard, or keep float32 weights for training)");
  WENSU_CHECK(x.device() == Device::cpu && weight.device() == Device::cpu, "linear: bfloat16 weights run on the CPU");
  WENSU_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ",
              shape_str(x.shape()), " does not match weight ", shape_str(weight.shape()), " [out, in]");
  const int64_t N = weight.size(0), K = weight.size(1), M = x.numel() / std::max<int64_t>(K, 1);
  if (M > 8) return linear(x, weight.to(DType::f32), bias);
  WENSU_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == N && bias.dtype() == DType::f32),
              "linear: bias must be float32 [", N, "] with bfloat16 weights");
  Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.defined() ? bias.contiguous() : Tensor();
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor out = Tensor::empty(out_shape, DType::f32);
  cpu::linear_bf16_weights(xc.data<float>(), M, K, wc.data<bf16>(), N, bc.defined() ? bc.data<float>() : nullptr,
                           out.data<float>());
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (weight.dtype() == DType::bf16 && x.dtype() == DType::f32) return linear_bf16_weights(x, weight, bias);
  Device dev = common_device({&x, &weight, &bias}, "linear");
  DType dt = common_float_dtype({&x, &weight, &bias}, "linear");
  WENSU_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ",
              shape_str(x.shape()), " does not match weight ", shape_str(weight.shape()), " [out, in]");
  const int64_t out_f = weight.size(0);
  WENSU_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == out_f), "linear: bias ",
              shape_str(bias.defined() ? bias.shape() : Shape{}), " does not match ", out_f, " outputs");
  Tensor x2 = reshape(x.detach(), {-1, x.size(-1)}).detach();  // [M, in]
  const int64_t M = x2.size(0);
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Tensor out = Tensor::empty(out_shape, dt, dev);
  if (dev == Device::cuda) no_cuda_impl("linear");
  Tensor y3 = make_view(out, {1, M, out_f}, {0, out_f, 1}, 0);
  double beta = 0.0;
  if (bias.defined()) {  // seed C with the bias rows, then GEMM accumulates onto it (beta = 1)
    cpu::binary(BinaryOp::add, Tensor::zeros({1}, dt), bias, make_view(out, {M, out_f}, {out_f, 1}, 0));
    beta = 1.0;
  }
  // W^T [in, out] as a view: a (N, T) GEMM. A contiguous copy of W^T would allow the (N, N)
  // form, faster alone, but inside the layer the copy cost more than it saved (2 threads:
  // 40-43 ms vs 44 ms for [4096, 512] x [512, 2048] with bias).
  Tensor wt = weight.detach().transpose(0, 1).detach();
  cpu::gemm_batched(x2.unsqueeze(0).detach(), wt.unsqueeze(0).detach(), y3, 1.0, beta);
  if (!autograd::needs_grad({&x, &weight, &bias})) return out;
  auto node = std::make_shared<LinearNode>();
  if (weight.requires_grad()) node->x2 = x2;
  node->w = weight.detach();
  node->x_shape = x.shape();
  if (bias.defined()) return record(out, node, {&x, &weight, &bias});
  return record(out, node, {&x, &weight});
}

}  // namespace wensu::ops
