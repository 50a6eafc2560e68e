// A GPT-style decoder-only language model (Radford et al. 2019, "Language Models are Unsupervised
// Multitask Learners"), built from the same nn::TransformerLayer as the protein models:
//
//   x = embed_tokens(ids) [+ embed_positions(0 .. L-1)]      [B, L, D]  (learned positions: GPT-2's wpe)
//   x = dropout(x)
//   num_layers x pre-LN layer: norm, causal attention (rotary q, k when positions = rotary),
//     residual; norm, FFN (dense fc2(act(fc1 x)), GLU or MoE), residual
//   x = final_norm(x)
//   logits = x @ embed_tokens.weight^T (tied) or lm_head(x)  [B, L, vocab], no bias
//
// With the defaults (learned positions, layernorm, biases, gelu_tanh, tied head) this is GPT-2,
// and Hugging Face GPT-2 weights import into it exactly (models/gpt2_convert.h).
//
// Generation runs incrementally over a KvCache: forward_cached appends the keys and values of
// new tokens and computes only their logits, the same function forward computes for them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "wensu/nn/transformer.h"

namespace wensu::dist {
struct ParallelGroups;
}

namespace wensu::models {

struct GptConfig {
  // Defaults: GPT-2 small (124M).
  int64_t vocab_size = 50257;
  int64_t max_positions = 1024;  // context length: longest sequence forward takes, largest cache
  int64_t embed_dim = 768;
  int64_t num_heads = 12;
  int64_t num_layers = 12;
  std::string positions = "learned";  // learned (embed_positions, GPT-2's wpe) | rotary (no position table)
  // Always causal; kind dense or block_sparse (block_sparse models generate by recomputing).
  // rotary follows `positions` (setting it here with learned positions is an error).
  nn::AttentionConfig attention = default_attention();
  // d_ff = 0 means 4 * embed_dim (GPT-2's ratio); kind dense, glu or moe.
  nn::FeedForwardConfig ffn = default_ffn();
  std::string norm = "layernorm";  // layernorm | rmsnorm
  double norm_eps = 1e-5;
  bool bias = true;                // biases in the projections and FFN
  bool tie_embeddings = true;      // logits use embed_tokens.weight; false adds lm_head.weight
  double dropout = 0.0;            // on the embeddings and before each residual add (training only)
  int64_t eos_id = -1;             // end-of-sequence token for samplers; -1 = none (informational)

  int64_t d_ff() const { return ffn.d_ff > 0 ? ffn.d_ff : 4 * embed_dim; }
  // The config every layer is built from (causal, rotary from positions, d_ff resolved).
  nn::TransformerConfig layer_config() const;
  void validate() const;  // throws wensu::Error naming the bad field

  static nn::AttentionConfig default_attention();
  static nn::FeedForwardConfig default_ffn();
};

// Strict like nn/config.cpp: an unknown key is an error. from_json validates; to_json writes the
// resolved values (d_ff, attention.rotary, attention.causal).
void to_json(nlohmann::json& j, const GptConfig& c);
void from_json(const nlohmann::json& j, GptConfig& c);

class Gpt : public nn::Module {
 public:
  // groups: expert/data-parallel groups for MoE layers (null: one process).
  Gpt(const GptConfig& cfg, Generator& gen, const dist::ParallelGroups* groups = nullptr);

  // ids int64 [B, L] (0 <= id < vocab_size, L <= max_positions) -> logits [B, L, vocab].
  // The training path: records autograd, applies dropout in training mode.
  Tensor forward(const Tensor& ids);
  // The same without the vocabulary projection: the final-norm hidden states [B, L, D] (a text
  // encoder's features: the two-tower model pools the last token's, as CLIP does).
  Tensor hidden(const Tensor& ids);

  // Sum of the MoE layers' auxiliary losses after a forward (undefined without MoE).
  Tensor aux_loss() const;

  // Keys and values of every layer for the tokens seen so far, for incremental decoding.
  struct KvCache {
    std::vector<Tensor> k, v;  // per layer [B, capacity, H, Dh]; rows >= length are unused
    int64_t length = 0;        // tokens cached (positions 0 .. length-1)

    int64_t batch() const { return k.empty() ? 0 : k.front().size(0); }
    int64_t capacity() const { return k.empty() ? 0 : k.front().size(1); }
    void clear() { length = 0; }  // start a new sequence in the same memory
  };
  // An empty cache for `batch` sequences of up to `capacity` (<= max_positions) tokens, on the
  // model's device (float32, or the weights' float type when that is a compute type); allocated once, filled in place.
  KvCache make_cache(int64_t batch, int64_t capacity) const;

  // Incremental decoding, without autograd or dropout: ids int64 [B, T] are the tokens at
  // positions cache.length .. cache.length+T-1 (T = the prompt length for the prefill, then 1
  // per generated token). Appends their keys and values, advances cache.length by T and returns
  // their logits [B, T, vocab], equal to forward's at those positions. Dense attention only.
  // last_logits = k > 0 computes the logits of the last k positions only, [B, min(k, T), vocab]:
  // a prefill needs just the last one, and the vocabulary projection of every prompt position
  // would otherwise cost as much as a third of the prefill (GPT-2 small).
  Tensor forward_cached(const Tensor& ids, KvCache& cache, int64_t last_logits = 0);

  const GptConfig& config() const { return cfg_; }

  std::shared_ptr<nn::Embedding> embed_tokens;     // [vocab, D]
  std::shared_ptr<nn::Embedding> embed_positions;  // [max_positions, D]; learned positions only
  std::vector<std::shared_ptr<nn::TransformerLayer>> layers;
  std::shared_ptr<nn::Module> final_norm;          // LayerNorm or RMSNorm
  std::shared_ptr<nn::Linear> lm_head;             // [vocab, D], no bias; untied only

 private:
  Tensor embed(const Tensor& ids, int64_t first_position) const;  // [B, T] -> [B, T, D]
  Tensor head(const Tensor& x) const;                              // [B, T, D] -> [B, T, vocab]
  void check_ids(const Tensor& ids, const char* what) const;

  GptConfig cfg_;
  std::shared_ptr<nn::Dropout> drop_;
};

}  // namespace wensu::models
