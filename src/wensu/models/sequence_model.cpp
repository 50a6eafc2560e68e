#include "wensu/models/sequence_model.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "wensu/autograd/grad_mode.h"

#include "wensu/ops/binary.h"
#include "wensu/ops/matmul.h"

namespace wensu::models {

void to_json(nlohmann::json& j, const SequenceModelConfig& c) {
  j = {{"vocab_size", c.vocab_size},
       {"padding_idx", c.padding_idx},
       {"tie_embeddings", c.tie_embeddings},
       {"transformer", c.transformer}};
}

void from_json(const nlohmann::json& j, SequenceModelConfig& c) {
  for (auto& [k, v] : j.items())
    WENSU_CHECK(k == "vocab_size" || k == "padding_idx" || k == "tie_embeddings" || k == "transformer",
                "config: unknown key '", k, "'");
  c.vocab_size = j.value("vocab_size", c.vocab_size);
  c.padding_idx = j.value("padding_idx", c.padding_idx);
  c.tie_embeddings = j.value("tie_embeddings", c.tie_embeddings);
  if (j.contains("transformer")) c.transformer = j.at("transformer").get<nn::TransformerConfig>();
  WENSU_CHECK(c.vocab_size > 0, "config: vocab_size must be > 0");
}

SequenceModel::SequenceModel(const SequenceModelConfig& cfg, Generator& gen) : cfg_(cfg) {
  const int64_t D = cfg.transformer.d_model;
  embed = register_module("embed", std::make_shared<nn::Embedding>(cfg.vocab_size, D, gen, cfg.padding_idx));
  // Scale the N(0, 1) table down so tied logits start near uniform.
  {
    NoGradGuard ng;
    embed->weight.copy_(ops::scale(embed->weight, 1.0 / std::sqrt(double(D))));
  }
  body = register_module("body", std::make_shared<nn::Transformer>(cfg.transformer, gen));
  if (!cfg.tie_embeddings) head = register_module("head", std::make_shared<nn::Linear>(D, cfg.vocab_size, false, gen));
  head_bias = register_parameter("head_bias", Tensor::zeros({cfg.vocab_size}));
}

Tensor SequenceModel::forward(const Tensor& ids, const Tensor& key_padding) {
  Tensor h = embed->forward(ids);      // [B, L, D]
  h = body->forward(h, key_padding);   // [B, L, D]
  const Tensor& w = cfg_.tie_embeddings ? embed->weight : head->weight;  // [vocab, D]
  return ops::linear(h, w, head_bias);  // [B, L, vocab]
}

}  // namespace wensu::models
