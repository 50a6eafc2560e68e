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

// Mixture of experts (nn/moe.h), used when ffn.kind = "moe". Each expert is the network
// `expert` with hidden size ffn.d_ff and activation ffn.activation.
struct MoeConfig {
  int64_t num_experts = 8;
  int64_t top_k = 2;
  // naive: softmax over the top-k router logits (FastMoE's NaiveGate); noisy: Shazeer et al.
  // 2017's noisy top-k; gshard: top-2 with random second-expert routing (Lepikhin et al. 2020);
  // switch: top-1 with input jitter (Fedus et al. 2021).
  std::string gate = "naive";
  // Per routing call (one rank's tokens, GShard's "group"): each expert keeps at most
  // ceil(capacity_factor * tokens * top_k / num_experts) rows; 0 = dropless.
  double capacity_factor = 0.0;
  std::string expert = "ffn";         // ffn (fc2(act(fc1 x))) or glu (down(act(gate x) * up x))
  double balance_loss_weight = 0.01;  // weight of the gate's load-balancing loss in aux_loss()
  double z_loss_weight = 0.0;         // router z-loss, mean(logsumexp(logits)^2) (Zoph et al. 2022)
  double jitter = 0.0;                // switch: router input times U(1 - jitter, 1 + jitter) in training
  bool random_second = true;          // gshard: keep the second expert with probability min(1, 2 g2)
};

struct FeedForwardConfig {
  std::string kind = "dense";       // dense | glu | moe
  int64_t d_ff = 2048;
  std::string activation = "gelu";  // gelu (erf), gelu_tanh, relu, silu
  MoeConfig moe;                    // kind = moe only
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

void validate_moe(const MoeConfig& m);  // throws wensu::Error naming the bad field

void to_json(nlohmann::json& j, const AttentionConfig& c);
void from_json(const nlohmann::json& j, AttentionConfig& c);
void to_json(nlohmann::json& j, const MoeConfig& c);
void from_json(const nlohmann::json& j, MoeConfig& c);
void to_json(nlohmann::json& j, const FeedForwardConfig& c);
void from_json(const nlohmann::json& j, FeedForwardConfig& c);
void to_json(nlohmann::json& j, const TransformerConfig& c);
void from_json(const nlohmann::json& j, TransformerConfig& c);

}  // namespace wensu::nn
