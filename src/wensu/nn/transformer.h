// Feed-forward blocks (pluggable: the MoE layer of issue 4 implements FeedForwardBlock),
// the pre-LN transformer layer and the layer stack.
#pragma once
#include <memory>
#include <vector>

#include "wensu/nn/attention.h"
#include "wensu/nn/config.h"
#include "wensu/nn/layers.h"

namespace wensu::dist {
struct ParallelGroups;
}

namespace wensu::nn {

class FeedForwardBlock : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;  // [..., d_model] -> [..., d_model]
  // Extra loss terms the block wants added to the objective (MoE load balancing); none here.
  virtual Tensor aux_loss() const { return Tensor(); }
};

// gelu, gelu_tanh, relu or silu of x, by the config's name.
Tensor apply_activation(const std::string& name, const Tensor& x);

// fc2(act(fc1(x))): d_model -> d_ff -> d_model.
class FeedForward : public FeedForwardBlock {
 public:
  FeedForward(int64_t d_model, const FeedForwardConfig& cfg, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Linear> fc1, fc2;

 private:
  std::string activation_;
};

// down_proj(act(gate_proj(x)) * up_proj(x)): the gated FFN of Shazeer 2020 ("GLU variants";
// SwiGLU with silu), d_model -> d_ff -> d_model.
class GluFeedForward : public FeedForwardBlock {
 public:
  GluFeedForward(int64_t d_model, const FeedForwardConfig& cfg, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Linear> gate_proj, up_proj, down_proj;

 private:
  std::string activation_;
};

// dense (FeedForward), glu (GluFeedForward) or moe (nn/moe.h; groups as MoE takes them).
std::shared_ptr<FeedForwardBlock> make_feed_forward(int64_t d_model, const FeedForwardConfig& cfg, bool bias,
                                                    Generator& gen, const dist::ParallelGroups* groups = nullptr);

// Pre-LN: h = x + drop(attn(norm1(x))); y = h + drop(ffn(norm2(h))).
class TransformerLayer : public Module {
 public:
  TransformerLayer(const TransformerConfig& cfg, Generator& gen, const dist::ParallelGroups* groups = nullptr);
  Tensor forward(const Tensor& x, const Tensor& key_padding = Tensor());  // [B, L, D] -> [B, L, D]
  // Incremental causal decoding (MultiHeadAttention::forward_cached; no dropout, no autograd):
  // x [B, T, D] at positions past .. past+T-1, caches [B, capacity, H, Dh] -> [B, T, D].
  Tensor forward_cached(const Tensor& x, const Tensor& k_cache, const Tensor& v_cache, int64_t past);

  std::shared_ptr<Module> ln1, ln2;  // LayerNorm or RMSNorm
  std::shared_ptr<MultiHeadAttention> attn;
  std::shared_ptr<FeedForwardBlock> ffn;

 private:
  Tensor norm(const std::shared_ptr<Module>& n, const Tensor& x) const;
  std::shared_ptr<Dropout> drop_;
};

// layers.0 ... layers.{n-1}, then final_norm (when configured).
class Transformer : public Module {
 public:
  // groups: expert/data-parallel groups for MoE layers (null: one process).
  Transformer(const TransformerConfig& cfg, Generator& gen, const dist::ParallelGroups* groups = nullptr);
  Tensor forward(const Tensor& x, const Tensor& key_padding = Tensor());  // [B, L, D] -> [B, L, D]
  // Sum of the layers' FeedForwardBlock::aux_loss() after a forward (undefined when none has one).
  Tensor aux_loss() const;
  const TransformerConfig& config() const { return cfg_; }

  std::vector<std::shared_ptr<TransformerLayer>> layers;
  std::shared_ptr<Module> final_norm;

 private:
  TransformerConfig cfg_;
};

// A LayerNorm or RMSNorm module as the config says, and applying either.
std::shared_ptr<Module> make_norm(const TransformerConfig& cfg);
Tensor apply_norm(const Module& norm, const Tensor& x);

}  // namespace wensu::nn
