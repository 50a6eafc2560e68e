#include "wensu/models/gpt.h"

#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"
#include "wensu/io/json_fields.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/matmul.h"

namespace wensu::models {

// ---- config ----

nn::AttentionConfig GptConfig::default_attention() {
  nn::AttentionConfig a;
  a.causal = true;
  return a;
}

nn::FeedForwardConfig GptConfig::default_ffn() {
  nn::FeedForwardConfig f;
  f.d_ff = 0;                   // 4 * embed_dim
  f.activation = "gelu_tanh";  // GPT-2's gelu_new
  return f;
}

nn::TransformerConfig GptConfig::layer_config() const {
  nn::TransformerConfig t;
  t.d_model = embed_dim;
  t.n_heads = num_heads;
  t.n_layers = num_layers;
  t.norm = norm;
  t.norm_eps = norm_eps;
  t.dropout = dropout;
  t.bias = bias;
  t.final_norm = false;  // final_norm belongs to Gpt
  t.attention = attention;
  t.attention.causal = true;
  t.attention.rotary = positions == "rotary";
  t.ffn = ffn;
  t.ffn.d_ff = d_ff();
  return t;
}

void GptConfig::validate() const {
  WENSU_CHECK(vocab_size >= 1, "gpt config: vocab_size must be >= 1, got ", vocab_size);
  WENSU_CHECK(max_positions >= 1, "gpt config: max_positions must be >= 1, got ", max_positions);
  WENSU_CHECK(num_layers >= 1, "gpt config: num_layers must be >= 1, got ", num_layers);
  WENSU_CHECK(embed_dim > 0 && num_heads > 0, "gpt config: embed_dim and num_heads must be > 0, got ", embed_dim,
              " and ", num_heads);
  WENSU_CHECK(embed_dim % num_heads == 0, "gpt config: embed_dim (", embed_dim, ") must be divisible by num_heads (",
              num_heads, ")");
  WENSU_CHECK(positions == "learned" || positions == "rotary", "gpt config: positions must be 'learned' or 'rotary', got '",
              positions, "'");
  WENSU_CHECK(attention.causal, "gpt config: attention.causal must be true (a GPT decoder only looks back)");
  WENSU_CHECK(!attention.rotary || positions == "rotary",
              "gpt config: attention.rotary = true with positions = 'learned'; set positions to 'rotary' instead");
  WENSU_CHECK(norm_eps > 0, "gpt config: norm_eps must be > 0, got ", norm_eps);
  WENSU_CHECK(eos_id >= -1 && eos_id < vocab_size, "gpt config: eos_id must be -1 (none) or a token id below vocab_size = ",
              vocab_size, ", got ", eos_id);
  WENSU_CHECK(ffn.d_ff >= 0, "gpt config: ffn.d_ff must be >= 0 (0 = 4 * embed_dim), got ", ffn.d_ff);
  // The layer config carries the remaining checks (norm, dropout, attention and FFN kinds, MoE).
  try {
    layer_config().validate();
  } catch (const Error& e) {
    const std::string msg = e.what();
    throw Error(msg.rfind("config", 0) == 0 ? "gpt " + msg : "gpt config: " + msg);
  }
}


void to_json(nlohmann::json& j, const GptConfig& c) {
  const nn::TransformerConfig t = c.layer_config();  // attention and ffn written resolved
  j = {{"vocab_size", c.vocab_size},
       {"max_positions", c.max_positions},
       {"embed_dim", c.embed_dim},
       {"num_heads", c.num_heads},
       {"num_layers", c.num_layers},
       {"positions", c.positions},
       {"attention", t.attention},
       {"ffn", t.ffn},
       {"norm", c.norm},
       {"norm_eps", c.norm_eps},
       {"bias", c.bias},
       {"tie_embeddings", c.tie_embeddings},
       {"dropout", c.dropout},
       {"eos_id", c.eos_id}};
}

void from_json(const nlohmann::json& j, GptConfig& c) {
  {
    io::JsonFields r(j, "gpt config");
    r("vocab_size", c.vocab_size);
    r("max_positions", c.max_positions);
    r("embed_dim", c.embed_dim);
    r("num_heads", c.num_heads);
    r("num_layers", c.num_layers);
    r("positions", c.positions);
    r("norm", c.norm);
    r("norm_eps", c.norm_eps);
    r("bias", c.bias);
    r("tie_embeddings", c.tie_embeddings);
    r("dropout", c.dropout);
    r("eos_id", c.eos_id);
    r.section("attention", c.attention);  // into the GPT defaults: causal
    r.section("ffn", c.ffn);              // d_ff = 4D, gelu_tanh
  }
  c.validate();
}

// ---- model ----

Gpt::Gpt(const GptConfig& cfg, Generator& gen, const dist::ParallelGroups* groups) : cfg_(cfg) {
  cfg.validate();
  const nn::TransformerConfig lc = cfg.layer_config();
  embed_tokens = register_module("embed_tokens", std::make_shared<nn::Embedding>(cfg.vocab_size, cfg.embed_dim, gen));
  if (cfg.positions == "learned")
    embed_positions = register_module("embed_positions",
                                      std::make_shared<nn::Embedding>(cfg.max_positions, cfg.embed_dim, gen));
  for (int64_t i = 0; i < cfg.num_layers; ++i)
    layers.push_back(
        register_module("layers." + std::to_string(i), std::make_shared<nn::TransformerLayer>(lc, gen, groups)));
  final_norm = register_module("final_norm", nn::make_norm(lc));
  if (!cfg.tie_embeddings)
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(cfg.embed_dim, cfg.vocab_size, false, gen));
  drop_ = register_module("dropout", std::make_shared<nn::Dropout>(cfg.dropout));

  // GPT-2 draws its embeddings from N(0, 0.02^2), not nn::Embedding's N(0, 1): with a tied
  // head, unit-variance rows would start training with logits of standard deviation sqrt(D).
  NoGradGuard no_grad;
  for (auto& e : {embed_tokens, embed_positions})
    if (e) e->weight.copy_(ops::scale(e->weight, 0.02));
}

void Gpt::check_ids(const Tensor& ids, const char* what) const {
  WENSU_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == DType::i64, "Gpt::", what,
              ": ids must be int64 [batch, length], got ", ids.defined() ? ids.describe() : "undefined");
  WENSU_CHECK(ids.size(0) > 0 && ids.size(1) > 0, "Gpt::", what, ": empty batch ", shape_str(ids.shape()));
}

Tensor Gpt::embed(const Tensor& ids, int64_t first_position) const {
  const int64_t T = ids.size(1);
  WENSU_CHECK(first_position + T <= cfg_.max_positions, "Gpt: positions ", first_position, " .. ",
              first_position + T - 1, " exceed the context length max_positions = ", cfg_.max_positions);
  Tensor x = embed_tokens->forward(ids);  // [B, T, D]; ids outside [0, vocab) throw, naming the position
  if (!is_compute(x.dtype())) x = x.to(DType::f32);  // bf16 tables (inference): compute in float32
  if (embed_positions) {
    Tensor pos = embed_positions->weight.narrow(0, first_position, T);  // [T, D]
    x = x + (pos.dtype() == x.dtype() ? pos : pos.to(x.dtype()));
  }
  return x;
}

Tensor Gpt::head(const Tensor& x) const {
  if (lm_head) return lm_head->forward(x);        // [B, T, vocab]
  return ops::linear(x, embed_tokens->weight);     // [B, T, vocab]
}

Tensor Gpt::hidden(const Tensor& ids) {
  check_ids(ids, "forward");
  Tensor x = drop_->forward(embed(ids, 0));          // [B, L, D]
  for (auto& layer : layers) x = layer->forward(x);  // [B, L, D]
  return nn::apply_norm(*final_norm, x);             // [B, L, D]
}

Tensor Gpt::forward(const Tensor& ids) { return head(hidden(ids)); }  // [B, L, vocab]

Tensor Gpt::aux_loss() const {
  Tensor total;
  for (auto& layer : layers) {
    Tensor a = layer->ffn->aux_loss();
    if (a.defined()) total = total.defined() ? ops::add(total, a) : a;
  }
  return total;
}

Gpt::KvCache Gpt::make_cache(int64_t batch, int64_t capacity) const {
  WENSU_CHECK(batch >= 1, "Gpt::make_cache: batch must be >= 1, got ", batch);
  WENSU_CHECK(capacity >= 1 && capacity <= cfg_.max_positions, "Gpt::make_cache: capacity must be in [1, max_positions = ",
              cfg_.max_positions, "], got ", capacity);
  const Tensor& w = embed_tokens->weight;
  // Keys and values are activations: float32 even when the weights are stored in bfloat16.
  const DType dt = w.dtype() == DType::bf16 ? DType::f32 : w.dtype();
  const int64_t H = cfg_.num_heads, Dh = cfg_.embed_dim / cfg_.num_heads;
  KvCache c;
  for (size_t i = 0; i < layers.size(); ++i) {
    c.k.push_back(Tensor::zeros({batch, capacity, H, Dh}, dt, w.device()));
    c.v.push_back(Tensor::zeros({batch, capacity, H, Dh}, dt, w.device()));
  }
  return c;
}

Tensor Gpt::forward_cached(const Tensor& ids, KvCache& cache, int64_t last_logits) {
  check_ids(ids, "forward_cached");
  WENSU_CHECK(cfg_.attention.kind == "dense", "Gpt::forward_cached: a KV cache needs dense attention, this model's is ",
              cfg_.attention.kind, "; generate by recomputing (forward on the whole sequence), or use dense attention");
  WENSU_CHECK(cache.k.size() == layers.size() && cache.v.size() == layers.size(), "Gpt::forward_cached: the cache has ",
              cache.k.size(), " layers, the model ", layers.size(), " (make it with this model's make_cache)");
  const int64_t T = ids.size(1);
  WENSU_CHECK(last_logits >= 0, "Gpt::forward_cached: last_logits must be >= 0 (0 = all positions), got ", last_logits);
  WENSU_CHECK(ids.size(0) == cache.batch(), "Gpt::forward_cached: ids have batch ", ids.size(0), ", the cache ",
              cache.batch());
  WENSU_CHECK(cache.length >= 0 && cache.length + T <= cache.capacity(), "Gpt::forward_cached: ", cache.length,
              " cached + ", T, " new tokens exceed the cache capacity ", cache.capacity());
  NoGradGuard no_grad;
  Tensor x = embed(ids, cache.length);  // [B, T, D]
  for (size_t i = 0; i < layers.size(); ++i)
    x = layers[i]->forward_cached(x, cache.k[i], cache.v[i], cache.length);  // [B, T, D]
  cache.length += T;
  if (last_logits > 0 && last_logits < T) x = x.narrow(1, T - last_logits, last_logits);  // [B, k, D]
  return head(nn::apply_norm(*final_norm, x));  // [B, T or k, vocab]
}

}  // namespace wensu::models
