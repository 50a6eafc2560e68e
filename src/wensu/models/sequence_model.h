// A token model: embedding -> transformer stack -> vocabulary head. With a bidirectional
// config it is an ESM-style masked LM; with causal attention a GPT-style LM. The toy task
// used by `wensu demo` and the end-to-end tests trains it too.
#pragma once
#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "wensu/nn/transformer.h"

namespace wensu::models {

struct SequenceModelConfig {
  int64_t vocab_size = 33;
  int64_t padding_idx = -1;     // token id that is padding (-1: none)
  bool tie_embeddings = true;   // head weight = embedding weight (no separate matrix)
  nn::TransformerConfig transformer;
};

void to_json(nlohmann::json& j, const SequenceModelConfig& c);
void from_json(const nlohmann::json& j, SequenceModelConfig& c);

class SequenceModel : public nn::Module {
 public:
  SequenceModel(const SequenceModelConfig& cfg, Generator& gen);
  // ids int64 [B, L] -> logits [B, L, vocab]; key_padding int64 [B, L] or undefined.
  Tensor forward(const Tensor& ids, const Tensor& key_padding = Tensor());
  const SequenceModelConfig& config() const { return cfg_; }

  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::Transformer> body;
  std::shared_ptr<nn::Linear> head;  // only when embeddings are not tied
  Tensor head_bias;                  // [vocab]

 private:
  SequenceModelConfig cfg_;
};

}  // namespace wensu::models
