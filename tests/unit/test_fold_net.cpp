// FoldNet (models/fold_net.h) and its training loss (fold/train_fold.h): output shapes, a
// symmetric distogram, the bin functions against their definitions, contact precision against a
// direct count, and a few steps of training on one chain lower its loss.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "wensu/core/generator.h"
#include "wensu/fold/train_fold.h"
#include "wensu/io/esm_alphabet.h"
#include "wensu/models/fold_net.h"
#include "wensu/ops/softmax.h"
#include "wensu/optim/adamw.h"

using namespace wensu;

namespace {

models::FoldConfig tiny(const std::string& features = "onehot") {
  models::FoldConfig c;
  c.features = features;
  c.seq_dim = 16, c.pair_dim = 8, c.outer_dim = 4, c.blocks = 1, c.heads = 2, c.max_relpos = 8;
  if (features == "lm") c.lm.num_layers = 1, c.lm.embed_dim = 16, c.lm.attention_heads = 2;
  return c;
}

// A chain of L residues with CB atoms on a random walk of 3.8 A steps and random torsions.
fold::ChainData random_chain(int64_t L, uint64_t seed) {
  std::mt19937 rng{static_cast<uint32_t>(seed)};
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> angle(-3.1f, 3.1f);
  const std::string aa = "ACDEFGHIKLMNPQRSTVWY";
  fold::ChainData c;
  c.id = "TEST_A";
  float x[3] = {0, 0, 0};
  for (int64_t i = 0; i < L; ++i) {
    c.sequence += aa[rng() % 20];
    float v[3] = {normal(rng), normal(rng), normal(rng)};
    const float n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int k = 0; k < 3; ++k) x[k] += 3.8f * v[k] / n;
    c.cb.insert(c.cb.end(), x, x + 3);
    c.phi_psi.push_back(angle(rng));
    c.phi_psi.push_back(angle(rng));
    c.phi_psi_mask.push_back(i > 0);
    c.phi_psi_mask.push_back(i + 1 < L);
  }
  c.backbone.assign(size_t(L * 12), 0.0f);
  return c;
}

Tensor tokens(const std::string& seq) {
  return Tensor::from_vector(io::EsmAlphabet::get().encode(seq, true), {int64_t(seq.size()) + 2});
}

}  // namespace

TEST(FoldNet, BinsFollowTheirDefinitions) {
  EXPECT_EQ(models::distance_bin(1.0), 0);
  EXPECT_EQ(models::distance_bin(2.0), 0);
  EXPECT_EQ(models::distance_bin(2.49), 0);
  EXPECT_EQ(models::distance_bin(2.5), 1);
  EXPECT_EQ(models::distance_bin(19.99), 35);
  EXPECT_EQ(models::distance_bin(20.0), 36);
  EXPECT_EQ(models::distance_bin(80.0), 36);
  for (int64_t k = 0; k < 36; ++k) EXPECT_EQ(models::distance_bin(models::distance_bin_centre(k)), k);
  for (int64_t k = 0; k < 36; ++k) EXPECT_EQ(models::torsion_bin(models::torsion_bin_centre(k)), k);
  EXPECT_EQ(models::distance_bins_below(8.0), 12);  // [2, 2.5) ... [7.5, 8)
  EXPECT_EQ(models::distance_bins_below(100.0), 36);  // never the open last bin
  EXPECT_EQ(models::torsion_bin(-std::numbers::pi), 0);
  EXPECT_EQ(models::torsion_bin(std::numbers::pi), 0);  // the same angle as -pi
  EXPECT_EQ(models::torsion_bin(std::numbers::pi - 1e-6), 35);
}

TEST(FoldNet, ShapesAndASymmetricDistogram) {
  for (const std::string features : {"onehot", "lm"}) {
    Generator g(1);
    models::FoldNet net(tiny(features), g);
    auto out = net.forward(tokens("MKVLAAGIVGLLLAW"));
    const int64_t L = 15;
    EXPECT_EQ(out.distogram.shape(), (Shape{L, L, 37})) << features;
    EXPECT_EQ(out.torsions.shape(), (Shape{L, 2, 36}));
    EXPECT_EQ(out.plddt.shape(), (Shape{L, 50}));
    const auto d = out.distogram.to_vector<float>();
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j)
        for (int64_t k = 0; k < 37; ++k)
          ASSERT_NEAR(d[size_t((i * L + j) * 37 + k)], d[size_t((j * L + i) * 37 + k)], 1e-5);
  }
}

TEST(FoldNet, ContactPrecisionCountsTheTopPairs) {
  // L = 30, contacts (CB < 8 A) only between i and i + 25 (and the rest far apart); probabilities
  // put all mass in bin 0 for pairs (0, 25), (1, 26) and in the far bin elsewhere.
  const int64_t L = 30, B = 37;
  std::vector<float> cb(size_t(L * 3));
  for (int64_t i = 0; i < L; ++i) cb[size_t(3 * i)] = float(i % 25) * 20.0f;  // i and i + 25 coincide
  std::vector<float> p(size_t(L * L * B), 0.0f);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) p[size_t((i * L + j) * B + B - 1)] = 1.0f;
  for (int64_t i : {0, 1}) {
    p[size_t((i * L + i + 25) * B + B - 1)] = 0.0f;
    p[size_t((i * L + i + 25) * B)] = 1.0f;
  }
  Tensor probs = Tensor::from_vector(p, {L, L, B});
  EXPECT_DOUBLE_EQ(fold::contact_precision(probs, cb, 2), 1.0);
  // The top 5 hold the two true predictions and three of the other contacts by tie order, or not:
  // count directly how many of all pairs |i-j| >= 24 are contacts (5: i = 0..4) and check bounds.
  const double p5 = fold::contact_precision(probs, cb, 5);
  EXPECT_GE(p5, 2.0 / 5.0);
  EXPECT_LE(p5, 1.0);
}

TEST(FoldNet, TrainingStepsLowerTheLossOnOneChain) {
  Generator g(2);
  models::FoldNet net(tiny(), g);
  const fold::ChainData chain = random_chain(24, 3);
  optim::AdamW opt(net.named_parameters(), {});
  double first = 0, last = 0;
  for (int step = 0; step < 25; ++step) {
    fold::FoldLoss l = fold::fold_loss(net, chain, 0, 24, 0.5, 0.1);
    ASSERT_TRUE(std::isfinite(l.parts.total));
    if (step == 0) first = l.parts.distogram;
    last = l.parts.distogram;
    l.total.backward();
    opt.step(1e-2);
    opt.zero_grad();
  }
  EXPECT_LT(last, 0.8 * first) << "distogram loss " << first << " -> " << last;
}
