#include "wensu/ops/attention.h"

#include <cmath>

#include "wensu/autograd/node.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

using autograd::Node;

namespace {

// Saved: q, k, v (views, no copies) and the softmax probabilities P [B, H, Lq, Lk].
struct AttentionNode : Node {
  cpu::AttentionParams p;
  Tensor q, k, v, probs, key_padding;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor go = last_dim_contiguous(g);
    Tensor dq = Tensor::empty(q.shape(), q.dtype()), dk = Tensor::empty(k.shape(), k.dtype()),
           dv = Tensor::empty(v.shape(), v.dtype());
    cpu::AttentionParams bp = p;
    bp.key_padding = key_padding.defined() ? key_padding.data<int64_t>() : nullptr;
    fill_strides(bp.o_s, go);
    cpu::attention_backward(bp, q, k, v, probs, go, dq, dk, dv);
    return {dq, dk, dv};
  }
  const char* name() const override { return "attention"; }
  void release() override { q = k = v = probs = key_padding = Tensor(); }
};

}  // namespace

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const AttentionMask& mask,
                 double scale) {
  Device dev = common_device({&q_in, &k_in, &v_in}, "attention");
  DType dt = common_float_dtype({&q_in, &k_in, &v_in}, "attention");
  WENSU_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4,
              "attention: q, k, v must be [B, L, H, D], got ", shape_str(q_in.shape()), ", ",
              shape_str(k_in.shape()), ", ", shape_str(v_in.shape()));
  const int64_t B = q_in.size(0), Lq = q_in.size(1), H = q_in.size(2), D = q_in.size(3);
  const int64_t Lk = k_in.size(1), Dv = v_in.size(3);
  WENSU_CHECK(k_in.size(0) == B && v_in.size(0) == B && k_in.size(2) == H && v_in.size(2) == H &&
                  k_in.size(3) == D && v_in.size(1) == Lk,
              "attention: shapes do not agree: q ", shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()),
              ", v ", shape_str(v_in.shape()), " (expected q [B, Lq, H, D], k [B, Lk, H, D], v [B, Lk, H, Dv])");
  Tensor kp;
  if (mask.key_padding.defined()) {
    WENSU_CHECK(mask.key_padding.dtype() == DType::i64 && mask.key_padding.shape() == Shape({B, Lk}),
                "attention: key_padding must be int64 [B, Lk] = [", B, ", ", Lk, "], got ",
                mask.key_padding.describe());
    kp = mask.key_padding.contiguous().detach();
  }
  if (dev == Device::cuda) no_cuda_impl("attention");
  Tensor q = last_dim_contiguous(q_in), k = last_dim_contiguous(k_in), v = last_dim_contiguous(v_in);
  Tensor out = Tensor::empty({B, Lq, H, Dv}, dt, dev);
  Tensor probs = Tensor::empty({B, H, Lq, Lk}, dt, dev);
  cpu::AttentionParams p{B, H, Lq, Lk, D, Dv, scale > 0 ? scale : 1.0 / std::sqrt(double(D)), mask.causal,
                         kp.defined() ? kp.data<int64_t>() : nullptr, {}, {}, {}, {}};
  fill_strides(p.q_s, q);
  fill_strides(p.k_s, k);
  fill_strides(p.v_s, v);
  fill_strides(p.o_s, out);
  cpu::attention_forward(p, q, k, v, probs, out);
  if (!autograd::needs_grad({&q_in, &k_in, &v_in})) return out;
  auto node = std::make_shared<AttentionNode>();
  node->p = p;
  node->q = q;
  node->k = k;
  node->v = v;
  node->probs = probs;
  node->key_padding = kp;
  return autograd::record(out, node, {&q_in, &k_in, &v_in});
}

}  // namespace wensu::ops
