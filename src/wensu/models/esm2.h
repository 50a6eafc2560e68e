// ESM-2 (Lin et al. 2023, "Evolutionary-scale prediction of atomic-level protein structure
// with a language model"), the masked protein language model of fair-esm's esm/model/esm2.py,
// computed exactly as fair-esm computes it, so converted weights give fair-esm's logits:
//
//   x = embed_tokens(tokens)                                 [B, L, D], padding row 1
//   token dropout (always on when configured, as in fair-esm): <mask> rows set to 0 and each
//     sequence scaled by (1 - 0.15 * 0.8) / (1 - its <mask> count / its non-pad count)
//   x = x * (token != <pad>)
//   num_layers x pre-LN layer (nn::TransformerLayer): LayerNorm, attention with rotary q, k
//     (rotate-half, base 10000, positions 0..L-1) and scores scaled by 1/sqrt(head dim),
//     padded keys masked; LayerNorm, fc2(gelu_erf(fc1 x)) with fc1: D -> 4D
//   x = emb_layer_norm_after(x)                              the "representations"
//   logits = layer_norm(gelu(dense x)) @ embed_tokens.weight^T + lm_head.bias   [B, L, 33]
//
// Beyond fair-esm, attention may be block-sparse (attention.kind) and the FFN of every
// moe_every-th layer a mixture of experts, for pretraining at long lengths and larger scale.
// Parameter names and the fair-esm / HF transformers names they come from: docs/esm2.md.
#pragma once
#include <memory>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "wensu/nn/transformer.h"

namespace wensu::dist {
struct ParallelGroups;
}

namespace wensu::models {

// The ESM alphabet (fair-esm's Alphabet.from_architecture("ESM-1b"), 33 tokens):
// <cls>=0 <pad>=1 <eos>=2 <unk>=3, the amino acids 4..30, <null_1>=31, <mask>=32.
// Numeric here so the model does not depend on the tokenizer (io/esm_alphabet.h).
constexpr int64_t kEsm2VocabSize = 33;
constexpr int64_t kEsm2PaddingIdx = 1;
constexpr int64_t kEsm2MaskIdx = 32;

struct Esm2Config {
  int64_t num_layers = 6;
  int64_t embed_dim = 320;
  int64_t attention_heads = 20;
  bool token_dropout = true;
  double norm_eps = 1e-5;  // every LayerNorm (torch.nn.LayerNorm's default, as ESM-2 uses)
  // ESM-2 is bidirectional with rotary embeddings; kind = block_sparse for long sequences.
  nn::AttentionConfig attention = default_attention();
  // d_ff = 0 means 4 * embed_dim (ESM-2's ratio). kind: dense, glu or moe (see moe_every).
  nn::FeedForwardConfig ffn = default_ffn();
  // 0: every layer's FFN is ffn.kind. k > 0 (needs ffn.kind = moe): the FFN of layer i is a
  // mixture of experts when (i + 1) % k == 0 (fairseq's moe_freq: k = 2 gives layers 1, 3, 5,
  // ...) and a dense FFN of the same d_ff and activation otherwise.
  int64_t moe_every = 0;

  int64_t d_ff() const { return ffn.d_ff > 0 ? ffn.d_ff : 4 * embed_dim; }
  bool layer_is_moe(int64_t i) const;
  // The config of layer i as nn::TransformerLayer takes it (the FFN kind resolved).
  nn::TransformerConfig layer_config(int64_t i) const;
  void validate() const;  // throws wensu::Error naming the bad field

  static nn::AttentionConfig default_attention();
  static nn::FeedForwardConfig default_ffn();
};

// Strict like nn/config.cpp: an unknown key is an error. from_json validates.
void to_json(nlohmann::json& j, const Esm2Config& c);
void from_json(const nlohmann::json& j, Esm2Config& c);

// fair-esm's RobertaLMHead: dense D -> D, gelu (erf), LayerNorm, then the projection onto the
// vocabulary with the (tied) token embedding matrix plus a bias.
class Esm2LmHead : public nn::Module {
 public:
  Esm2LmHead(int64_t embed_dim, double norm_eps, Generator& gen);
  // x [B, L, D], embedding [vocab, D] -> [B, L, vocab]
  Tensor forward(const Tensor& x, const Tensor& embedding) const;

  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> layer_norm;
  Tensor bias;  // [vocab], starts at zero
};

class Esm2 : public nn::Module {
 public:
  // groups: expert/data-parallel groups for the MoE layers (null: one process).
  Esm2(const Esm2Config& cfg, Generator& gen, const dist::ParallelGroups* groups = nullptr);

  // tokens int64 [B, L] (ESM alphabet, padding 1, any device) -> logits [B, L, 33].
  // Padding marks the keys no query attends to; padded positions still get (meaningless)
  // logits, as in fair-esm. representations: when non-null, receives the last hidden states
  // [B, L, D] after emb_layer_norm_after (fair-esm's representations[num_layers]).
  Tensor forward(const Tensor& tokens, Tensor* representations = nullptr);

  // Sum of the MoE layers' auxiliary losses after a forward (undefined without MoE layers).
  Tensor aux_loss() const;
  const Esm2Config& config() const { return cfg_; }

  std::shared_ptr<nn::Embedding> embed_tokens;
  std::vector<std::shared_ptr<nn::TransformerLayer>> layers;
  std::shared_ptr<nn::LayerNorm> emb_layer_norm_after;
  std::shared_ptr<Esm2LmHead> lm_head;

 private:
  Esm2Config cfg_;
};

}  // namespace wensu::models
