#include "wensu/models/esm2.h"

#include <nlohmann/json.hpp>

#include "wensu/io/json_fields.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/matmul.h"
#include "wensu/ops/unary.h"

namespace wensu::models {

// ---- config ----

nn::AttentionConfig Esm2Config::default_attention() {
  nn::AttentionConfig a;
  a.rotary = true;
  return a;
}

nn::FeedForwardConfig Esm2Config::default_ffn() {
  nn::FeedForwardConfig f;
  f.d_ff = 0;  // 4 * embed_dim
  f.activation = "gelu";
  return f;
}

bool Esm2Config::layer_is_moe(int64_t i) const {
  if (moe_every > 0) return (i + 1) % moe_every == 0;
  return ffn.kind == "moe";
}

nn::TransformerConfig Esm2Config::layer_config(int64_t i) const {
  nn::TransformerConfig t;
  t.d_model = embed_dim;
  t.n_heads = attention_heads;
  t.n_layers = num_layers;
  t.norm = "layernorm";
  t.norm_eps = norm_eps;
  t.dropout = 0.0;  // ESM-2 trains without dropout
  t.bias = true;
  t.final_norm = false;  // emb_layer_norm_after belongs to Esm2
  t.attention = attention;
  t.ffn = ffn;
  t.ffn.d_ff = d_ff();
  if (moe_every > 0 && !layer_is_moe(i)) t.ffn.kind = "dense";
  return t;
}

void Esm2Config::validate() const {
  WENSU_CHECK(num_layers >= 1, "esm2 config: num_layers must be >= 1, got ", num_layers);
  WENSU_CHECK(embed_dim > 0 && attention_heads > 0, "esm2 config: embed_dim and attention_heads must be > 0");
  WENSU_CHECK(embed_dim % attention_heads == 0, "esm2 config: embed_dim (", embed_dim,
              ") must be divisible by attention_heads (", attention_heads, ")");
  WENSU_CHECK(norm_eps > 0, "esm2 config: norm_eps must be > 0, got ", norm_eps);
  WENSU_CHECK(moe_every >= 0, "esm2 config: moe_every must be >= 0 (0 = every layer is ffn.kind), got ", moe_every);
  WENSU_CHECK(moe_every == 0 || ffn.kind == "moe", "esm2 config: moe_every = ", moe_every,
              " interleaves MoE layers, so ffn.kind must be 'moe' (got '", ffn.kind, "')");
  WENSU_CHECK(moe_every <= num_layers, "esm2 config: moe_every = ", moe_every, " is larger than num_layers = ",
              num_layers, ", so no layer would be MoE");
  // The layer configs carry the attention and FFN checks (kinds, layouts, MoE fields).
  layer_config(0).validate();
  if (moe_every > 0) layer_config(moe_every - 1).validate();
}


void to_json(nlohmann::json& j, const Esm2Config& c) {
  nn::FeedForwardConfig ffn = c.ffn;
  ffn.d_ff = c.d_ff();  // written resolved, so the file says what was built
  j = {{"num_layers", c.num_layers},       {"embed_dim", c.embed_dim}, {"attention_heads", c.attention_heads},
       {"token_dropout", c.token_dropout}, {"norm_eps", c.norm_eps},   {"attention", c.attention},
       {"ffn", ffn},                       {"moe_every", c.moe_every}};
}

void from_json(const nlohmann::json& j, Esm2Config& c) {
  {
    io::JsonFields r(j, "esm2 config");
    r("num_layers", c.num_layers);
    r("embed_dim", c.embed_dim);
    r("attention_heads", c.attention_heads);
    r("token_dropout", c.token_dropout);
    r("norm_eps", c.norm_eps);
    r("moe_every", c.moe_every);
    r.section("attention", c.attention);  // into the ESM-2 defaults: rotary on
    r.section("ffn", c.ffn);              // d_ff = 4D
  }
  c.validate();
}

// ---- modules ----

Esm2LmHead::Esm2LmHead(int64_t embed_dim, double norm_eps, Generator& gen) {
  dense = register_module("dense", std::make_shared<nn::Linear>(embed_dim, embed_dim, true, gen));
  layer_norm = register_module("layer_norm", std::make_shared<nn::LayerNorm>(embed_dim, norm_eps));
  bias = register_parameter("bias", Tensor::zeros({kEsm2VocabSize}));
}

Tensor Esm2LmHead::forward(const Tensor& x, const Tensor& embedding) const {
  Tensor h = layer_norm->forward(ops::gelu(dense->forward(x)));  // [B, L, D]
  return ops::linear(h, embedding, bias);                          // [B, L, vocab]
}

Esm2::Esm2(const Esm2Config& cfg, Generator& gen, const dist::ParallelGroups* groups) : cfg_(cfg) {
  cfg.validate();
  embed_tokens = register_module(
      "embed_tokens", std::make_shared<nn::Embedding>(kEsm2VocabSize, cfg.embed_dim, gen, kEsm2PaddingIdx));
  for (int64_t i = 0; i < cfg.num_layers; ++i)
    layers.push_back(register_module("layers." + std::to_string(i),
                                     std::make_shared<nn::TransformerLayer>(cfg.layer_config(i), gen, groups)));
  emb_layer_norm_after =
      register_module("emb_layer_norm_after", std::make_shared<nn::LayerNorm>(cfg.embed_dim, cfg.norm_eps));
  lm_head = register_module("lm_head", std::make_shared<Esm2LmHead>(cfg.embed_dim, cfg.norm_eps, gen));
}

Tensor Esm2::forward(const Tensor& tokens, Tensor* representations) {
  WENSU_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.dtype() == DType::i64,
              "Esm2: tokens must be int64 [batch, length], got ", tokens.defined() ? tokens.describe() : "undefined");
  const int64_t B = tokens.size(0), L = tokens.size(1);
  WENSU_CHECK(B > 0 && L > 0, "Esm2: empty token batch ", shape_str(tokens.shape()));

  // Token dropout and padding are one multiplier per position, a function of the token ids
  // only (no gradient), so it is computed here on the CPU: 0 for <pad> (and for <mask> with
  // token dropout), else (1 - 0.15 * 0.8) / (1 - mask ratio of the sequence). ESM-2 was
  // trained with 15% of tokens selected and 80% of those replaced by <mask>; the rescaling
  // keeps the embedding scale of a sequence with a different mask ratio at the training one.
  const std::vector<int64_t> ids = tokens.to(Device::cpu).to_vector<int64_t>();
  std::vector<double> mult(size_t(B * L));
  std::vector<int64_t> pad(size_t(B * L));
  bool any_pad = false;
  constexpr double kMaskRatioTrain = 0.15 * 0.8;
  for (int64_t b = 0; b < B; ++b) {
    int64_t real = 0, masked = 0;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t t = ids[size_t(b * L + l)];
      WENSU_CHECK(t >= 0 && t < kEsm2VocabSize, "Esm2: token id ", t, " at [", b, ", ", l,
                  "] is outside the ESM alphabet [0, ", kEsm2VocabSize, ")");
      real += t != kEsm2PaddingIdx;
      masked += t == kEsm2MaskIdx;
    }
    WENSU_CHECK(real > 0, "Esm2: sequence ", b, " of the batch is all padding");
    WENSU_CHECK(!cfg_.token_dropout || masked < real, "Esm2: every token of sequence ", b,
                " is <mask>; token dropout's rescaling 1 / (1 - mask ratio) is undefined");
    const double s = cfg_.token_dropout ? (1.0 - kMaskRatioTrain) / (1.0 - double(masked) / double(real)) : 1.0;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t t = ids[size_t(b * L + l)];
      const bool is_pad = t == kEsm2PaddingIdx;
      pad[size_t(b * L + l)] = is_pad;
      any_pad = any_pad || is_pad;
      mult[size_t(b * L + l)] = is_pad || (cfg_.token_dropout && t == kEsm2MaskIdx) ? 0.0 : s;
    }
  }

  Tensor x = embed_tokens->forward(tokens);  // [B, L, D]
  Tensor m = Tensor::from_vector(mult, {B, L, 1}).to(x.dtype()).to(x.device());  // [B, L, 1]
  x = ops::mul(x, m);                                                             // [B, L, D]
  Tensor key_padding = any_pad ? Tensor::from_vector(pad, {B, L}).to(x.device()) : Tensor();  // [B, L]
  for (auto& layer : layers) x = layer->forward(x, key_padding);  // [B, L, D]
  x = emb_layer_norm_after->forward(x);                            // [B, L, D]
  if (representations) *representations = x;
  return lm_head->forward(x, embed_tokens->weight);  // [B, L, 33]
}

Tensor Esm2::aux_loss() const {
  Tensor total;
  for (auto& layer : layers) {
    Tensor a = layer->ffn->aux_loss();
    if (a.defined()) total = total.defined() ? ops::add(total, a) : a;
  }
  return total;
}

}  // namespace wensu::models
