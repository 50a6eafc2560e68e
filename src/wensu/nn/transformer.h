// Feed-forward blocks (pluggable: the MoE layer of issue 4 implements FeedForwardBlock),
// the pre-LN transformer layer and the layer stack.
#pragma once
#include <memory>
#include <vector>

#include "wensu/nn/attention.h"
#include "wensu/nn/config.h"
#include "wensu/nn/layers.h"

namespace wensu::nn {

class FeedForwardBlock : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;  // [..., d_model] -> [..., d_model]
  // Extra loss terms the block wants added to the objective (MoE load balancing); none here.
  virtual Tensor aux_loss() const { return Tensor(); }
};

// fc2(act(fc1(x))): d_model -> d_ff -> d_model.
class FeedForward : public FeedForwardBlock {
 public:
  FeedForward(int64_t d_model, const FeedForwardConfig& cfg, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Linear> fc1, fc2;

 private:
  std::string activation_;
};

std::shared_ptr<FeedForwardBlock> make_feed_forward(int64_t d_model, const FeedForwardConfig& cfg, bool bias,
                                                    Generator& gen);

// Pre-LN: h = x + drop(attn(norm1(x))); y = h + drop(ffn(norm2(h))).
class TransformerLayer : public Module {
 public:
  TransformerLayer(const TransformerConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& key_padding = Tensor());  // [B, L, D] -> [B, L, D]

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
  Transformer(const TransformerConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& key_padding = Tensor());  // [B, L, D] -> [B, L, D]
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
