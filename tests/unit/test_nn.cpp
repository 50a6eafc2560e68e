#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "wensu/nn/transformer.h"
#include "wensu/models/sequence_model.h"
#include "wensu/ops/reduce.h"

using namespace wensu;

namespace {
nn::TransformerConfig small_config() {
  nn::TransformerConfig c;
  c.d_model = 16;
  c.n_heads = 4;
  c.n_layers = 2;
  c.ffn.d_ff = 32;
  return c;
}
}  // namespace

TEST(Modules, StableHierarchicalNames) {
  Generator g(0);
  nn::Transformer t(small_config(), g);
  auto names = t.named_parameters();
  std::vector<std::string> first;
  for (size_t i = 0; i < 16; ++i) first.push_back(names[i].first);
  std::vector<std::string> want = {
      "layers.0.ln1.weight",          "layers.0.ln1.bias",           "layers.0.attn.q_proj.weight",
      "layers.0.attn.q_proj.bias",    "layers.0.attn.k_proj.weight", "layers.0.attn.k_proj.bias",
      "layers.0.attn.v_proj.weight",  "layers.0.attn.v_proj.bias",   "layers.0.attn.out_proj.weight",
      "layers.0.attn.out_proj.bias",  "layers.0.ln2.weight",         "layers.0.ln2.bias",
      "layers.0.ffn.fc1.weight",      "layers.0.ffn.fc1.bias",       "layers.0.ffn.fc2.weight",
      "layers.0.ffn.fc2.bias"};
  EXPECT_EQ(first, want);
  EXPECT_EQ(names.back().first, "final_norm.bias");
  // 2 layers x (4 projections of 16x16+16, 2 norms of 32, fc1 16x32+32, fc2 32x16+16) + final norm 32
  EXPECT_EQ(t.num_parameters(), 2 * (4 * (256 + 16) + 2 * 32 + (512 + 32) + (512 + 16)) + 32);
}

TEST(Modules, EveryParameterGetsAGradient) {
  Generator g(1);
  auto cfg = small_config();
  cfg.attention.rotary = true;
  nn::Transformer t(cfg, g);
  Tensor x = Tensor::randn({2, 5, 16}, g);
  Tensor pad = Tensor::from_vector(std::vector<int64_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, {2, 5});
  ops::sum(t.forward(x, pad)).backward();
  for (auto& [n, p] : t.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << n;
    double s = 0;
    for (float v : p.grad().to_vector<float>()) s += std::abs(v);
    EXPECT_GT(s, 0) << n << " has an all-zero gradient";
  }
}

TEST(Modules, PaddedKeysDoNotChangeOutputs) {
  // Changing the embedding of a padded position must not change any unpadded output.
  Generator g(2);
  nn::Transformer t(small_config(), g);
  Tensor x = Tensor::randn({1, 4, 16}, g);
  Tensor pad = Tensor::from_vector(std::vector<int64_t>{0, 0, 0, 1}, {1, 4});
  auto y1 = t.forward(x, pad).narrow(1, 0, 3).contiguous().to_vector<float>();
  Tensor x2 = x.clone();
  x2.narrow(1, 3, 1).detach().fill_(7.0);
  auto y2 = t.forward(x2, pad).narrow(1, 0, 3).contiguous().to_vector<float>();
  EXPECT_EQ(y1, y2);
}

TEST(Config, JsonRoundTripAndStrictKeys) {
  models::SequenceModelConfig c;
  c.vocab_size = 21;
  c.transformer = small_config();
  c.transformer.attention.causal = true;
  nlohmann::json j = c;
  auto back = j.get<models::SequenceModelConfig>();
  EXPECT_EQ(nlohmann::json(back), j);
  j["transformer"]["n_head"] = 3;  // typo
  try {
    j.get<models::SequenceModelConfig>();
    FAIL() << "a misspelled key was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("n_head"), std::string::npos) << e.what();
  }
  nlohmann::json bad = nlohmann::json(small_config());
  bad["n_heads"] = 3;
  EXPECT_THROW(bad.get<nn::TransformerConfig>(), Error);
}

TEST(Modules, BlockSparseAttentionWithADenseLayoutMatchesDense) {
  // The pluggable kernel: the same weights through kind = block_sparse (dense layout) and
  // kind = dense give the same layer output, with rotary and causal masking on.
  auto cfg = small_config();
  cfg.attention.rotary = true;
  cfg.attention.causal = true;
  Generator g1(3), g2(3), gx(4);
  nn::Transformer dense(cfg, g1);
  cfg.attention.kind = "block_sparse";
  cfg.attention.sparse.kind = "dense";
  cfg.attention.sparse.block = 32;
  nn::Transformer sparse(cfg, g2);
  Tensor x = Tensor::randn({2, 45, 16}, gx);
  Tensor pad = Tensor::zeros({2, 45}, DType::i64);
  pad.narrow(1, 40, 5).narrow(0, 1, 1).fill_(1.0);
  auto a = dense.forward(x, pad).to_vector<float>(), b = sparse.forward(x, pad).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, double(std::abs(a[i] - b[i])));
    scale = std::max(scale, double(std::abs(a[i])));
  }
  EXPECT_LE(err / scale, 1e-5);
}

TEST(Config, BlockSparseSectionRoundTrips) {
  nn::TransformerConfig c = small_config();
  c.attention.kind = "block_sparse";
  c.attention.sparse.kind = "bigbird";
  c.attention.sparse.global_blocks = 2;
  c.attention.sparse.random_blocks = 3;
  nlohmann::json j = c;
  EXPECT_EQ(nlohmann::json(j.get<nn::TransformerConfig>()), j);
  j["attention"]["sparse"]["block"] = 48;  // not 32, 64 or 128
  EXPECT_THROW(j.get<nn::TransformerConfig>(), Error);
}
