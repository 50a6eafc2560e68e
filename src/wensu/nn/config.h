// Typed model configuration: parsed once at the edge (JSON file or command line), validated,
// stored inside every checkpoint as JSON.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "wensu/ops/block_layout.h"

namespace wensu::nn {

struct AttentionConfig {
  std::string kind = "dense";  // dense | block_sparse
  bool causal = false;
  bool rotary = false;         // rotary position embedding on q and k (rotate-half convention)
  double rope_base = 10000.0;
  // block_sparse: which blocks are computed (ops/block_layout.h); `causal` above applies.
  ops::BlockLayoutConfig sparse;
};

struct FeedForwardConfig {
  std::string kind = "dense";       // "dense" (mixture-of-experts arrives with issue 4)
  int64_t d_ff = 2048;
  std::string activation = "gelu";  // gelu (erf), gelu_tanh, relu, silu
};

struct TransformerConfig {
  int64_t d_model = 512;
  int64_t n_heads = 8;
  int64_t n_layers = 6;
  std::string norm = "layernorm";  // layernorm or rmsnorm
  double norm_eps = 1e-5;
  double dropout = 0.0;            // on attention and FFN outputs before each residual add
  bool bias = true;                // biases in the projections
  bool final_norm = true;          // a norm after the last layer (pre-LN stacks need one)
  AttentionConfig attention;
  FeedForwardConfig ffn;

  void validate() const;  // throws wensu::Error naming the bad field
};

void to_json(nlohmann::json& j, const AttentionConfig& c);
void from_json(const nlohmann::json& j, AttentionConfig& c);
void to_json(nlohmann::json& j, const FeedForwardConfig& c);
void from_json(const nlohmann::json& j, FeedForwardConfig& c);
void to_json(nlohmann::json& j, const TransformerConfig& c);
void from_json(const nlohmann::json& j, TransformerConfig& c);

}  // namespace wensu::nn
