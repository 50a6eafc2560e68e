// Multi-head attention with a pluggable attention kernel: projections, head split (a view, no
// copy), optional rotary embedding, the kernel, output projection. The kernel interface is
// what the block-sparse attention of issue 3 implements.
#pragma once
#include <memory>

#include "wensu/nn/config.h"
#include "wensu/nn/layers.h"
#include "wensu/ops/attention.h"

namespace wensu::nn {

class AttentionKernel {
 public:
  virtual ~AttentionKernel() = default;
  // q, k [B, L, H, D], v [B, L, H, Dv] -> [B, Lq, H, Dv]
  virtual Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttentionMask& mask) const = 0;
  virtual const char* name() const = 0;
};

class DenseAttention : public AttentionKernel {
 public:
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttentionMask& mask) const override;
  const char* name() const override { return "dense"; }
};

// Block-sparse attention over a layout built (and cached) per sequence length.
class BlockSparseAttention : public AttentionKernel {
 public:
  explicit BlockSparseAttention(const ops::BlockLayoutConfig& cfg) : cfg_(cfg) {}
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v, const ops::AttentionMask& mask) const override;
  const char* name() const override { return "block_sparse"; }

 private:
  ops::BlockLayoutConfig cfg_;
};

std::unique_ptr<AttentionKernel> make_attention_kernel(const AttentionConfig& cfg);

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(int64_t d_model, int64_t n_heads, const AttentionConfig& cfg, bool bias, Generator& gen);
  // x [B, L, d_model], key_padding int64 [B, L] (nonzero = pad; may be undefined) -> [B, L, d_model]
  Tensor forward(const Tensor& x, const Tensor& key_padding = Tensor()) const;

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;

 private:
  int64_t d_model_, n_heads_;
  AttentionConfig cfg_;
  std::unique_ptr<AttentionKernel> kernel_;
};

}  // namespace wensu::nn
