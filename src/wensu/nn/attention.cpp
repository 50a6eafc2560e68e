#include "wensu/nn/attention.h"

#include "wensu/autograd/grad_mode.h"
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

Tensor MultiHeadAttention::forward_cached(const Tensor& x, const Tensor& k_cache, const Tensor& v_cache,
                                          int64_t past) const {
  WENSU_CHECK(cfg_.kind == "dense", "MultiHeadAttention: cached decoding needs dense attention, this layer is ",
              cfg_.kind, "; generate by recomputing, or use dense attention");
  WENSU_CHECK(cfg_.causal, "MultiHeadAttention: cached decoding needs causal attention");
  WENSU_CHECK(x.dim() == 3 && x.size(2) == d_model_, "MultiHeadAttention: expected [B, T, ", d_model_, "], got ",
              shape_str(x.shape()));
  const int64_t B = x.size(0), T = x.size(1), Dh = d_model_ / n_heads_;
  NoGradGuard no_grad;  // the cache writes are in place: nothing here could be differentiated
  WENSU_CHECK(k_cache.dim() == 4 && k_cache.size(0) == B && k_cache.size(2) == n_heads_ && k_cache.size(3) == Dh &&
                  v_cache.shape() == k_cache.shape(),
              "MultiHeadAttention: caches must be [", B, ", capacity, ", n_heads_, ", ", Dh, "], got ",
              shape_str(k_cache.shape()), " and ", shape_str(v_cache.shape()));
  WENSU_CHECK(past >= 0 && past + T <= k_cache.size(1), "MultiHeadAttention: positions ", past, " .. ", past + T - 1,
              " do not fit a cache of capacity ", k_cache.size(1));
  Tensor q = q_proj->forward(x).view({B, T, n_heads_, Dh});  // [B, T, H, Dh]
  Tensor k = k_proj->forward(x).view({B, T, n_heads_, Dh});  // [B, T, H, Dh]
  Tensor v = v_proj->forward(x).view({B, T, n_heads_, Dh});  // [B, T, H, Dh]
  if (cfg_.rotary) {
    q = ops::rope(q, past, cfg_.rope_base);
    k = ops::rope(k, past, cfg_.rope_base);
  }
  k_cache.narrow(1, past, T).copy_(k);  // rows past .. past+T-1 only
  v_cache.narrow(1, past, T).copy_(v);
  // Causal masking aligns queries at the end of the keys: query t sees keys 0 .. past + t.
  ops::AttentionMask mask;
  mask.causal = true;
  Tensor o = ops::attention(q, k_cache.narrow(1, 0, past + T), v_cache.narrow(1, 0, past + T), mask);  // [B, T, H, Dh]
  return out_proj->forward(o.view({B, T, d_model_}));  // [B, T, d_model]
}

}  // namespace wensu::nn
