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

  // Incremental causal decoding (dense attention only; call without autograd). x [B, T, d_model]
  // holds the tokens at positions past .. past+T-1; their keys and values are written into
  // k_cache, v_cache [B, capacity, H, Dh] at rows past .. past+T-1 (nothing else is copied), and
  // each query attends to cache rows 0 .. its own position. Rotary embeddings rotate by the
  // absolute position. Computes what forward() computes for those rows of the whole sequence.
  // -> [B, T, d_model]
  Tensor forward_cached(const Tensor& x, const Tensor& k_cache, const Tensor& v_cache, int64_t past) const;

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;

 private:
  int64_t d_model_, n_heads_;
  AttentionConfig cfg_;
  std::unique_ptr<AttentionKernel> kernel_;
};

}  // namespace wensu::nn
