#include "wensu/nn/transformer.h"

#include "wensu/autograd/grad_mode.h"
#include "wensu/nn/moe.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/unary.h"

namespace wensu::nn {

FeedForward::FeedForward(int64_t d_model, const FeedForwardConfig& cfg, bool bias, Generator& gen)
    : activation_(cfg.activation) {
  fc1 = register_module("fc1", std::make_shared<Linear>(d_model, cfg.d_ff, bias, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(cfg.d_ff, d_model, bias, gen));
}

Tensor apply_activation(const std::string& name, const Tensor& x) {
  if (name == "gelu") return ops::gelu(x);
  if (name == "gelu_tanh") return ops::gelu_tanh(x);
  if (name == "relu") return ops::relu(x);
  WENSU_CHECK(name == "silu", "activation '", name, "' unknown (gelu, gelu_tanh, relu, silu)");
  return ops::silu(x);
}

Tensor FeedForward::forward(const Tensor& x) {
  Tensor h = apply_activation(activation_, fc1->forward(x));  // [..., d_ff]
  return fc2->forward(h);                                      // [..., d_model]
}

GluFeedForward::GluFeedForward(int64_t d_model, const FeedForwardConfig& cfg, bool bias, Generator& gen)
    : activation_(cfg.activation) {
  gate_proj = register_module("gate_proj", std::make_shared<Linear>(d_model, cfg.d_ff, bias, gen));
  up_proj = register_module("up_proj", std::make_shared<Linear>(d_model, cfg.d_ff, bias, gen));
  down_proj = register_module("down_proj", std::make_shared<Linear>(cfg.d_ff, d_model, bias, gen));
}

Tensor GluFeedForward::forward(const Tensor& x) {
  Tensor h = ops::mul(apply_activation(activation_, gate_proj->forward(x)), up_proj->forward(x));  // [..., d_ff]
  return down_proj->forward(h);                                                                     // [..., d_model]
}

std::shared_ptr<FeedForwardBlock> make_feed_forward(int64_t d_model, const FeedForwardConfig& cfg, bool bias,
                                                    Generator& gen, const dist::ParallelGroups* groups) {
  if (cfg.kind == "dense") return std::make_shared<FeedForward>(d_model, cfg, bias, gen);
  if (cfg.kind == "glu") return std::make_shared<GluFeedForward>(d_model, cfg, bias, gen);
  if (cfg.kind == "moe") return std::make_shared<MoE>(d_model, cfg, bias, gen, groups);
  throw Error("ffn kind '" + cfg.kind + "' unknown (dense, glu, moe)");
}

std::shared_ptr<Module> make_norm(const TransformerConfig& cfg) {
  if (cfg.norm == "rmsnorm") return std::make_shared<RMSNorm>(cfg.d_model, cfg.norm_eps);
  return std::make_shared<LayerNorm>(cfg.d_model, cfg.norm_eps);
}

Tensor apply_norm(const Module& norm, const Tensor& x) {
  if (auto* ln = dynamic_cast<const LayerNorm*>(&norm)) return ln->forward(x);
  return static_cast<const RMSNorm&>(norm).forward(x);
}

TransformerLayer::TransformerLayer(const TransformerConfig& cfg, Generator& gen, const dist::ParallelGroups* groups) {
  cfg.validate();
  ln1 = register_module("ln1", make_norm(cfg));
  attn = register_module("attn", std::make_shared<MultiHeadAttention>(cfg.d_model, cfg.n_heads, cfg.attention,
                                                                      cfg.bias, gen));
  ln2 = register_module("ln2", make_norm(cfg));
  ffn = register_module("ffn", make_feed_forward(cfg.d_model, cfg.ffn, cfg.bias, gen, groups));
  drop_ = register_module("dropout", std::make_shared<Dropout>(cfg.dropout));
}

Tensor TransformerLayer::norm(const std::shared_ptr<Module>& n, const Tensor& x) const { return apply_norm(*n, x); }

Tensor TransformerLayer::forward(const Tensor& x, const Tensor& key_padding) {
  Tensor h = x + drop_->forward(attn->forward(norm(ln1, x), key_padding));  // [B, L, D]
  return h + drop_->forward(ffn->forward(norm(ln2, h)));                    // [B, L, D]
}

Tensor TransformerLayer::forward_cached(const Tensor& x, const Tensor& k_cache, const Tensor& v_cache, int64_t past) {
  NoGradGuard no_grad;
  Tensor h = x + attn->forward_cached(norm(ln1, x), k_cache, v_cache, past);  // [B, T, D]
  return h + ffn->forward(norm(ln2, h));                                       // [B, T, D]
}

Transformer::Transformer(const TransformerConfig& cfg, Generator& gen, const dist::ParallelGroups* groups) : cfg_(cfg) {
  cfg.validate();
  for (int64_t i = 0; i < cfg.n_layers; ++i)
    layers.push_back(
        register_module("layers." + std::to_string(i), std::make_shared<TransformerLayer>(cfg, gen, groups)));
  if (cfg.final_norm) final_norm = register_module("final_norm", make_norm(cfg));
}

Tensor Transformer::forward(const Tensor& x, const Tensor& key_padding) {
  Tensor h = x;
  for (auto& layer : layers) h = layer->forward(h, key_padding);  // [B, L, D]
  return final_norm ? apply_norm(*final_norm, h) : h;
}

Tensor Transformer::aux_loss() const {
  Tensor total;
  for (auto& layer : layers) {
    Tensor a = layer->ffn->aux_loss();
    if (a.defined()) total = total.defined() ? ops::add(total, a) : a;
  }
  return total;
}

}  // namespace wensu::nn
