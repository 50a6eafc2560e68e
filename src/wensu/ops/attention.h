// Dense scaled-dot-product attention with masks, fused: per (batch, head) one GEMM for the
// scores, an in-place masked softmax, one GEMM for the output. Heads stay where the
// projections put them ([B, L, H, D] with any row stride), so no transposes are copied.
// The block-sparse kernel (issue 3) has the same contract and plugs in through
// nn::AttentionKernel.
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops {

struct AttentionMask {
  Tensor key_padding;   // int64 [B, Lk], nonzero = padded key (never attended); may be undefined
  bool causal = false;  // query i sees keys j <= i + (Lk - Lq) (aligned at the end, for KV caches)
};

// q [B, Lq, H, D], k [B, Lk, H, D], v [B, Lk, H, Dv] -> [B, Lq, H, Dv].
// scale <= 0 means 1/sqrt(D). A query whose keys are all masked gets an output of zeros.
// The last dim of q, k, v must have stride 1 (a view into a fused projection is fine).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask = {},
                 double scale = 0.0);

namespace cpu {
struct AttentionParams {
  int64_t B, H, Lq, Lk, D, Dv;
  double scale;
  bool causal;
  const int64_t* key_padding;  // [B, Lk] or null
  // Element strides of q, k, v, o, dq, dk, dv ([B, L, H] strides; the last dim is contiguous).
  int64_t q_s[3], k_s[3], v_s[3], o_s[3];
};
// probs: [B, H, Lq, Lk] contiguous, written (the softmax weights, saved for backward).
void attention_forward(const AttentionParams& p, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& probs, const Tensor& out);
// dq, dk, dv: contiguous [B, L, H, D] buffers, fully written.
void attention_backward(const AttentionParams& p, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& probs, const Tensor& dout, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv);
}  // namespace cpu

}  // namespace wensu::ops
