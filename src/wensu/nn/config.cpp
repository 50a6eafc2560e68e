#include "wensu/nn/config.h"

#include <nlohmann/json.hpp>

#include "wensu/core/check.h"
#include "wensu/io/json_fields.h"

namespace wensu::nn {
using Reader = io::JsonFields;  // section names as "config attention", "config ffn.moe", ...

void to_json(nlohmann::json& j, const AttentionConfig& c) {
  j = {{"kind", c.kind}, {"causal", c.causal}, {"rotary", c.rotary}, {"rope_base", c.rope_base}};
  if (c.kind == "block_sparse") {
    const auto& s = c.sparse;
    j["sparse"] = {{"layout", s.kind},         {"block", s.block},       {"window", s.window},
                   {"global_blocks", s.global_blocks}, {"random_blocks", s.random_blocks},
                   {"stride", s.stride},       {"dilation", s.dilation}, {"seed", s.seed}};
  }
}
void from_json(const nlohmann::json& j, AttentionConfig& c) {
  Reader r(j, "config attention");
  r("kind", c.kind);
  r("causal", c.causal);
  r("rotary", c.rotary);
  r("rope_base", c.rope_base);
  nlohmann::json sparse = nlohmann::json::object();
  r("sparse", sparse);
  Reader rs(sparse, "config attention.sparse");
  rs("layout", c.sparse.kind);
  rs("block", c.sparse.block);
  rs("window", c.sparse.window);
  rs("global_blocks", c.sparse.global_blocks);
  rs("random_blocks", c.sparse.random_blocks);
  rs("stride", c.sparse.stride);
  rs("dilation", c.sparse.dilation);
  rs("seed", c.sparse.seed);
}

void to_json(nlohmann::json& j, const MoeConfig& c) {
  j = {{"num_experts", c.num_experts},
       {"top_k", c.top_k},
       {"gate", c.gate},
       {"capacity_factor", c.capacity_factor},
       {"expert", c.expert},
       {"balance_loss_weight", c.balance_loss_weight},
       {"z_loss_weight", c.z_loss_weight},
       {"jitter", c.jitter},
       {"random_second", c.random_second}};
}
void from_json(const nlohmann::json& j, MoeConfig& c) {
  Reader r(j, "config ffn.moe");
  r("num_experts", c.num_experts);
  r("top_k", c.top_k);
  r("gate", c.gate);
  r("capacity_factor", c.capacity_factor);
  r("expert", c.expert);
  r("balance_loss_weight", c.balance_loss_weight);
  r("z_loss_weight", c.z_loss_weight);
  r("jitter", c.jitter);
  r("random_second", c.random_second);
}

void to_json(nlohmann::json& j, const FeedForwardConfig& c) {
  j = {{"kind", c.kind}, {"d_ff", c.d_ff}, {"activation", c.activation}};
  if (c.kind == "moe") j["moe"] = c.moe;
}
void from_json(const nlohmann::json& j, FeedForwardConfig& c) {
  Reader r(j, "config ffn");
  r("kind", c.kind);
  r("d_ff", c.d_ff);
  r("activation", c.activation);
  r.section("moe", c.moe);
}

void to_json(nlohmann::json& j, const TransformerConfig& c) {
  j = {{"d_model", c.d_model}, {"n_heads", c.n_heads},   {"n_layers", c.n_layers},
       {"norm", c.norm},       {"norm_eps", c.norm_eps}, {"dropout", c.dropout},
       {"bias", c.bias},       {"final_norm", c.final_norm}, {"attention", c.attention},
       {"ffn", c.ffn}};
}
void from_json(const nlohmann::json& j, TransformerConfig& c) {
  {
    Reader r(j, "config transformer");
    r("d_model", c.d_model);
    r("n_heads", c.n_heads);
    r("n_layers", c.n_layers);
    r("norm", c.norm);
    r("norm_eps", c.norm_eps);
    r("dropout", c.dropout);
    r("bias", c.bias);
    r("final_norm", c.final_norm);
    r.section("attention", c.attention);
    r.section("ffn", c.ffn);
  }
  c.validate();
}

void validate_moe(const MoeConfig& m) {
  WENSU_CHECK(m.num_experts >= 1, "config: ffn.moe.num_experts must be >= 1, got ", m.num_experts);
  WENSU_CHECK(m.top_k >= 1 && m.top_k <= m.num_experts, "config: ffn.moe.top_k must be in [1, num_experts = ",
              m.num_experts, "], got ", m.top_k);
  WENSU_CHECK(m.gate == "naive" || m.gate == "noisy" || m.gate == "gshard" || m.gate == "switch",
              "config: ffn.moe.gate '", m.gate, "' unknown (naive, noisy, gshard, switch)");
  WENSU_CHECK(m.gate != "gshard" || m.top_k == 2, "config: the gshard gate routes to exactly 2 experts: set ffn.moe.top_k = 2 (got ",
              m.top_k, ")");
  WENSU_CHECK(m.gate != "switch" || m.top_k == 1, "config: the switch gate routes to exactly 1 expert: set ffn.moe.top_k = 1 (got ",
              m.top_k, ")");
  WENSU_CHECK(m.capacity_factor >= 0, "config: ffn.moe.capacity_factor must be >= 0 (0 = dropless), got ",
              m.capacity_factor);
  WENSU_CHECK(m.expert == "ffn" || m.expert == "glu", "config: ffn.moe.expert '", m.expert, "' unknown (ffn, glu)");
  WENSU_CHECK(m.balance_loss_weight >= 0 && m.z_loss_weight >= 0, "config: ffn.moe loss weights must be >= 0");
  WENSU_CHECK(m.jitter >= 0 && m.jitter < 1, "config: ffn.moe.jitter must be in [0, 1), got ", m.jitter);
}

void TransformerConfig::validate() const {
  WENSU_CHECK(d_model > 0 && n_heads > 0 && n_layers >= 0, "config: d_model, n_heads must be > 0 and n_layers >= 0");
  WENSU_CHECK(d_model % n_heads == 0, "config: d_model (", d_model, ") must be divisible by n_heads (", n_heads, ")");
  WENSU_CHECK(!attention.rotary || (d_model / n_heads) % 2 == 0, "config: rotary embeddings need an even head size, got ",
              d_model / n_heads);
  WENSU_CHECK(norm == "layernorm" || norm == "rmsnorm", "config: norm must be 'layernorm' or 'rmsnorm', got '", norm, "'");
  WENSU_CHECK(dropout >= 0 && dropout < 1, "config: dropout must be in [0, 1), got ", dropout);
  WENSU_CHECK(attention.kind == "dense" || attention.kind == "block_sparse", "config: attention.kind '",
              attention.kind, "' unknown (dense, block_sparse)");
  if (attention.kind == "block_sparse") {  // builds (and caches) a tiny layout to validate the fields
    ops::BlockLayoutConfig s = attention.sparse;
    s.causal = attention.causal;
    ops::make_block_layout(s, s.block, s.block);
  }
  WENSU_CHECK(ffn.kind == "dense" || ffn.kind == "glu" || ffn.kind == "moe", "config: ffn.kind '", ffn.kind,
              "' unknown (dense, glu, moe)");
  if (ffn.kind == "moe") validate_moe(ffn.moe);
  WENSU_CHECK(ffn.d_ff > 0, "config: ffn.d_ff must be > 0");
  const auto& a = ffn.activation;
  WENSU_CHECK(a == "gelu" || a == "gelu_tanh" || a == "relu" || a == "silu", "config: ffn.activation '", a,
              "' unknown (gelu, gelu_tanh, relu, silu)");
}

}  // namespace wensu::nn
