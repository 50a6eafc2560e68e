#include "wensu/nn/attention.h"

#include "wensu/ops/block_sparse_attention.h"
#include "wensu/ops/rope.h"

namespace wensu::nn {

Tensor DenseAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v,
                               const ops::AttentionMask& mask) const {
  return ops::attention(q, k, v, mask);
}

Tensor BlockSparseAttention::forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const ops::AttentionMask& mask) const {
  ops::BlockLayoutConfig c = cfg_;
  c.causal = mask.causal;
  auto layout = ops::make_block_layout(c, q.size(1), k.size(1));
  return ops::block_sparse_attention(q, k, v, *layout, mask.key_padding);
}

std::unique_ptr<AttentionKernel> make_attention_kernel(const AttentionConfig& cfg) {
  if (cfg.kind == "dense") return std::make_unique<DenseAttention>();
  if (cfg.kind == "block_sparse") return std::make_unique<BlockSparseAttention>(cfg.sparse);
  throw Error("attention kind '" + cfg.kind + "' unknown (dense, block_sparse)");
}

MultiHeadAttention::MultiHeadAttention(int64_t d_model, int64_t n_heads, const AttentionConfig& cfg, bool bias,
                                       Generator& gen)
    : d_model_(d_model), n_heads_(n_heads), cfg_(cfg), kernel_(make_attention_kernel(cfg)) {
  WENSU_CHECK(d_model % n_heads == 0, "MultiHeadAttention: d_model ", d_model, " not divisible by ", n_heads, " heads");
  q_proj = register_module("q_proj", std::make_shared<Linear>(d_model, d_model, bias, gen));
  k_proj = register_module("k_proj", std::make_shared<Linear>(d_model, d_model, bias, gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(d_model, d_model, bias, gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(d_model, d_model, bias, gen));
}

Tensor MultiHeadAttention::forward(const Tensor& x, const Tensor& key_padding) const {
  WENSU_CHECK(x.dim() == 3 && x.size(2) == d_model_, "MultiHeadAttention: expected [B, L, ", d_model_, "], got ",
              shape_str(x.shape()));
  const int64_t B = x.size(0), L = x.size(1), Dh = d_model_ / n_heads_;
  Tensor q = q_proj->forward(x).view({B, L, n_heads_, Dh});  // [B, L, H, Dh]
  Tensor k = k_proj->forward(x).view({B, L, n_heads_, Dh});  // [B, L, H, Dh]
  Tensor v = v_proj->forward(x).view({B, L, n_heads_, Dh});  // [B, L, H, Dh]
  if (cfg_.rotary) {
    q = ops::rope(q, 0, cfg_.rope_base);
    k = ops::rope(k, 0, cfg_.rope_base);
  }
  ops::AttentionMask mask;
  mask.causal = cfg_.causal;
  mask.key_padding = key_padding;
  Tensor o = kernel_->forward(q, k, v, mask);  // [B, L, H, Dh]
  return out_proj->forward(o.view({B, L, d_model_}));  // [B, L, d_model]
}

}  // namespace wensu::nn
