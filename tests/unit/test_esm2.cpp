// Esm2 beyond the fair-esm fixture (tests/golden/test_esm2_fixture.cpp): its config (JSON,
// strict keys, the shipped data/configs), block-sparse attention with a dense layout computing
// what dense attention computes, MoE layers where moe_every puts them, padding invariance, and
// errors for bad tokens.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/models/esm2.h"
#include "wensu/nn/moe.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/reduce.h"

using namespace wensu;
namespace fs = std::filesystem;

namespace {

models::Esm2Config tiny_config() {
  models::Esm2Config c;
  c.num_layers = 2;
  c.embed_dim = 16;
  c.attention_heads = 2;
  return c;
}

// Random ESM tokens [B, L]: <cls>, amino acids (4..28) with some <mask>, <eos>, then <pad> up
// to L; sequence b has lengths[b] tokens in total.
Tensor random_tokens(const std::vector<int64_t>& lengths, int64_t L, uint64_t seed) {
  Generator gen(seed);
  const auto u = Tensor::rand({int64_t(lengths.size()), L}, gen, DType::f64).to_vector<double>();
  std::vector<int64_t> ids;
  for (size_t b = 0; b < lengths.size(); ++b)
    for (int64_t l = 0; l < L; ++l) {
      const double r = u[b * size_t(L) + size_t(l)];
      if (l == 0) ids.push_back(0);
      else if (l == lengths[b] - 1) ids.push_back(2);
      else if (l >= lengths[b]) ids.push_back(1);
      else ids.push_back(r < 0.15 ? 32 : 4 + int64_t(r * 25) % 25);
    }
  return Tensor::from_vector(ids, {int64_t(lengths.size()), L});
}

double rel_error(const Tensor& a, const Tensor& b) {
  auto x = a.to(DType::f64).to_vector<double>(), y = b.to(DType::f64).to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num = std::max(num, std::abs(x[i] - y[i]));
    den = std::max(den, std::abs(y[i]));
  }
  return num / den;
}

void copy_parameters(const nn::Module& from, nn::Module& to) {
  NoGradGuard ng;
  auto src = from.named_parameters(), dst = to.named_parameters();
  ASSERT_EQ(src.size(), dst.size());
  for (size_t i = 0; i < src.size(); ++i) {
    ASSERT_EQ(src[i].first, dst[i].first);
    dst[i].second.copy_(src[i].second);
  }
}

}  // namespace

TEST(Esm2Config, JsonRoundTripAndDefaults) {
  models::Esm2Config c = nlohmann::json::parse(R"({"num_layers": 3, "embed_dim": 24, "attention_heads": 3})")
                             .get<models::Esm2Config>();
  EXPECT_TRUE(c.attention.rotary);  // the ESM-2 default, not nn::AttentionConfig's
  EXPECT_TRUE(c.token_dropout);
  EXPECT_EQ(c.d_ff(), 96);          // 4 * embed_dim
  nlohmann::json j = c;
  EXPECT_EQ(j.at("ffn").at("d_ff"), 96);  // written resolved
  models::Esm2Config back = j.get<models::Esm2Config>();
  EXPECT_EQ(nlohmann::json(back), j);
}

TEST(Esm2Config, StrictKeysAndValidation) {
  auto parse = [](const char* text) { return nlohmann::json::parse(text).get<models::Esm2Config>(); };
  EXPECT_THROW(parse(R"({"num_layer": 3})"), Error);
  EXPECT_THROW(parse(R"({"attention": {"rotery": true}})"), Error);
  EXPECT_THROW(parse(R"({"embed_dim": 30, "attention_heads": 4})"), Error);
  EXPECT_THROW(parse(R"({"moe_every": 2})"), Error);  // needs ffn.kind = moe
  EXPECT_THROW(parse(R"({"num_layers": 2, "moe_every": 3, "ffn": {"kind": "moe"}})"), Error);
  try {
    parse(R"({"moe_every": 2})");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ffn.kind"), std::string::npos) << e.what();
  }
}

TEST(Esm2Config, ShippedConfigsParse) {
  const fs::path dir = fs::path(wensu::test::test_data_dir()) / ".." / ".." / "data" / "configs";
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("esm2_", 0) != 0 || entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    SCOPED_TRACE(name);
    models::Esm2Config c = nlohmann::json::parse(in).get<models::Esm2Config>();
    EXPECT_EQ(c.d_ff(), 4 * c.embed_dim);
    ++n;
  }
  EXPECT_GE(n, 3);  // esm2_8m, esm2_35m, esm2_tiny
}

TEST(Esm2, BlockSparseWithDenseLayoutEqualsDenseAttention) {
  models::Esm2Config dense = tiny_config(), sparse = tiny_config();
  sparse.attention.kind = "block_sparse";
  sparse.attention.sparse.kind = "dense";
  sparse.attention.sparse.block = 32;
  Generator g1(7), g2(7);
  models::Esm2 a(dense, g1), b(sparse, g2);
  copy_parameters(a, b);
  // L = 70: three blocks of 32, the last partial; padding in two sequences.
  Tensor tokens = random_tokens({70, 41, 9}, 70, 3);
  Tensor ra, rb;
  Tensor la = a.forward(tokens, &ra), lb = b.forward(tokens, &rb);
  EXPECT_LE(rel_error(lb, la), 1e-5);
  EXPECT_LE(rel_error(rb, ra), 1e-5);

  // Gradients too: both kernels' backward passes.
  Generator gw(11);
  Tensor w = Tensor::randn(la.shape(), gw);
  ops::sum(la * w).backward();
  ops::sum(lb * w).backward();
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    SCOPED_TRACE(pa[i].first);
    ASSERT_TRUE(pa[i].second.grad().defined());
    EXPECT_LE(rel_error(pb[i].second.grad(), pa[i].second.grad()), 1e-4);
  }
}

TEST(Esm2, MoeEveryPlacesMixtureOfExpertsLayers) {
  models::Esm2Config c = tiny_config();
  c.num_layers = 6;
  c.ffn.kind = "moe";
  c.ffn.d_ff = 24;
  c.ffn.moe.num_experts = 4;
  c.ffn.moe.top_k = 2;
  auto moe_layers = [](const models::Esm2& m) {
    std::vector<int64_t> out;
    for (size_t i = 0; i < m.layers.size(); ++i) {
      const bool moe = std::dynamic_pointer_cast<nn::MoE>(m.layers[i]->ffn) != nullptr;
      if (!moe) EXPECT_NE(std::dynamic_pointer_cast<nn::FeedForward>(m.layers[i]->ffn), nullptr) << i;
      if (moe) out.push_back(int64_t(i));
    }
    return out;
  };
  Generator gen(1);
  c.moe_every = 2;
  models::Esm2 every2(c, gen);
  EXPECT_EQ(moe_layers(every2), (std::vector<int64_t>{1, 3, 5}));
  c.moe_every = 3;
  EXPECT_EQ(moe_layers(models::Esm2(c, gen)), (std::vector<int64_t>{2, 5}));
  c.moe_every = 0;  // every layer is ffn.kind
  EXPECT_EQ(moe_layers(models::Esm2(c, gen)), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  c.ffn.kind = "dense";
  models::Esm2 none(c, gen);
  EXPECT_TRUE(moe_layers(none).empty());

  // Dense layers keep d_ff; the aux loss exists exactly when there are MoE layers.
  EXPECT_EQ(every2.layers[0]->ffn->named_parameters().front().second.size(0), 24);
  Tensor tokens = random_tokens({12, 8}, 12, 5);
  Tensor logits = every2.forward(tokens);
  EXPECT_EQ(logits.shape(), (Shape{2, 12, 33}));
  ASSERT_TRUE(every2.aux_loss().defined());
  EXPECT_GT(every2.aux_loss().item(), 0.0);
  none.forward(tokens);
  EXPECT_FALSE(none.aux_loss().defined());
}

// Extra padding columns change nothing at the real positions: padded keys are masked and
// rotary positions count from the start of each sequence.
TEST(Esm2, PaddingDoesNotChangeRealPositions) {
  Generator gen(2);
  models::Esm2 m(tiny_config(), gen);
  m.eval();
  NoGradGuard ng;
  Tensor short_batch = random_tokens({10, 6}, 10, 9);
  auto ids = short_batch.to_vector<int64_t>();
  std::vector<int64_t> wide;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t l = 0; l < 10; ++l) wide.push_back(ids[size_t(b * 10 + l)]);
    for (int64_t l = 0; l < 7; ++l) wide.push_back(1);
  }
  Tensor a = m.forward(short_batch);                                    // [2, 10, 33]
  Tensor b = m.forward(Tensor::from_vector(wide, {2, 17})).narrow(1, 0, 10);  // [2, 10, 33]
  // Sequence 0 has no padding in the short batch; compare the real tokens of both.
  EXPECT_LE(rel_error(b.narrow(0, 0, 1), a.narrow(0, 0, 1)), 1e-5);
  EXPECT_LE(rel_error(b.narrow(0, 1, 1).narrow(1, 0, 6), a.narrow(0, 1, 1).narrow(1, 0, 6)), 1e-5);
}

TEST(Esm2, BadTokensAreErrors) {
  Generator gen(3);
  models::Esm2 m(tiny_config(), gen);
  EXPECT_THROW(m.forward(Tensor::from_vector(std::vector<int64_t>{0, 5, 33, 2}, {1, 4})), Error);
  EXPECT_THROW(m.forward(Tensor::from_vector(std::vector<int64_t>{1, 1, 1}, {1, 3})), Error);
  EXPECT_THROW(m.forward(Tensor::from_vector(std::vector<int64_t>{32, 32, 1}, {1, 3})), Error);
  EXPECT_THROW(m.forward(Tensor::zeros({2, 3})), Error);  // float, not int64 ids
}
