// The two-tower image-text model: patchify against plain loops, ViT and dual-encoder configs,
// finite-difference gradients of the contrastive objective through both towers (transformer
// and bag-of-words text), caption padding that changes nothing, recall@k against a brute-force
// count, top-k, and the pair stream's global batches across ranks, epochs and restores.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "gradcheck.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/mm/pairs.h"
#include "wensu/mm/retrieval.h"
#include "wensu/models/dual_encoder.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/contrastive.h"

namespace wensu {
namespace {

// "transformer" (pooled at the last token), "transformer-mean" or "bow".
models::DualEncoderConfig tiny(const std::string& tower) {
  models::DualEncoderConfig c;
  c.text_pool = tower == "transformer-mean" ? "mean" : "last";
  c.image.image_size = 4;
  c.image.patch_size = 2;
  c.image.embed_dim = 8;
  c.image.num_heads = 2;
  c.image.num_layers = 1;
  c.text_tower = tower == "bow" ? "bow" : "transformer";
  c.text.vocab_size = 13;
  c.text.max_positions = 6;
  c.text.embed_dim = 8;
  c.text.num_heads = 2;
  c.text.num_layers = 1;
  c.embed_dim = 5;
  return c;
}

TEST(Vit, PatchifyMatchesLoops) {
  Generator gen(3);
  const int64_t B = 2, C = 3, H = 6, W = 4, p = 2;
  Tensor img = Tensor::randn({B, C, H, W}, gen);
  Tensor got = models::patchify(img, p);
  ASSERT_EQ(got.shape(), (Shape{B, (H / p) * (W / p), C * p * p}));
  const auto x = img.to_vector<float>(), y = got.contiguous().to_vector<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t gy = 0; gy < H / p; ++gy)
      for (int64_t gx = 0; gx < W / p; ++gx)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t dy = 0; dy < p; ++dy)
            for (int64_t dx = 0; dx < p; ++dx) {
              const int64_t patch = gy * (W / p) + gx, k = (c * p + dy) * p + dx;
              EXPECT_EQ(y[size_t((b * (H / p) * (W / p) + patch) * C * p * p + k)],
                        x[size_t(((b * C + c) * H + gy * p + dy) * W + gx * p + dx)]);
            }
}

TEST(Vit, ConfigIsStrictAndValidated) {
  models::VitConfig c;
  nlohmann::json j = c;
  EXPECT_EQ(j.get<models::VitConfig>().image_size, c.image_size);
  j["patch_size"] = 5;
  EXPECT_THROW(j.get<models::VitConfig>(), Error);  // does not divide 32
  j = c;
  j["patchsize"] = 4;
  EXPECT_THROW(j.get<models::VitConfig>(), Error);  // unknown key
  models::DualEncoderConfig d = tiny("transformer");
  nlohmann::json dj = d;
  const auto back = dj.get<models::DualEncoderConfig>();
  EXPECT_EQ(nlohmann::json(back), dj);
  dj["text_tower"] = "lstm";
  EXPECT_THROW(dj.get<models::DualEncoderConfig>(), Error);
}

TEST(Vit, OutputShapeAndPooling) {
  for (std::string pool : {"cls", "mean"}) {
    models::VitConfig c = tiny("bow").image;
    c.pool = pool;
    Generator gen(1);
    models::Vit vit(c, gen);
    Tensor y = vit.forward(Tensor::randn({3, 3, 4, 4}, gen));
    EXPECT_EQ(y.shape(), (Shape{3, 8}));
    EXPECT_THROW(vit.forward(Tensor::randn({3, 3, 8, 8}, gen)), Error);
  }
}

// Captions of lengths 1..L padded to L with different pad ids.
struct Captions {
  Tensor ids, lengths;
};
Captions captions(int64_t B, int64_t L, int64_t vocab, int64_t pad, uint64_t seed) {
  std::vector<int64_t> ids(static_cast<size_t>(B * L)), len(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    len[size_t(b)] = 1 + (b % L);
    for (int64_t t = 0; t < L; ++t)
      ids[size_t(b * L + t)] = t < len[size_t(b)] ? int64_t(philox4x32(seed, uint64_t(b * L + t))[0] % uint32_t(vocab)) : pad;
  }
  return {Tensor::from_vector(ids, {B, L}), Tensor::from_vector(len, {B})};
}

TEST(DualEncoder, PaddingChangesNothing) {
  for (std::string tower : {"transformer", "transformer-mean", "bow"}) {
    SCOPED_TRACE(tower);
    Generator gen(5);
    models::DualEncoder m(tiny(tower), gen);
    m.eval();
    Captions a = captions(4, 5, 13, 0, 9), b = captions(4, 5, 13, 7, 9);
    Tensor ya = m.encode_texts(a.ids, a.lengths), yb = m.encode_texts(b.ids, b.lengths);
    const auto va = ya.to_vector<float>(), vb = yb.to_vector<float>();
    for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], 1e-6);
    // The first caption alone (no padding) is the same as in the batch.
    Tensor one = m.encode_texts(a.ids.narrow(0, 0, 1).narrow(1, 0, 1).contiguous(), Tensor::from_vector(std::vector<int64_t>{1}, {1}));
    const auto v1 = one.to_vector<float>();
    for (size_t i = 0; i < v1.size(); ++i) EXPECT_NEAR(v1[i], va[i], 1e-6);
    EXPECT_THROW(m.encode_texts(a.ids, Tensor::from_vector(std::vector<int64_t>{1, 2, 6, 1}, {4})), Error);
  }
}

// Central differences (float64) of the contrastive loss through both towers against autograd,
// for three entries of every parameter (the temperature included).
TEST(DualEncoder, GradientsMatchFiniteDifferences) {
  for (std::string tower : {"transformer", "transformer-mean", "bow"}) {
    SCOPED_TRACE(tower);
    Generator gen(7);
    models::DualEncoder m(tiny(tower), gen);
    m.convert_(DType::f64);
    Tensor images = Tensor::randn({4, 3, 4, 4}, gen, DType::f64);
    Captions c = captions(4, 5, 13, 0, 11);
    auto loss = [&] {
      return ops::contrastive_loss(m.encode_images(images), m.encode_texts(c.ids, c.lengths), m.log_scale);
    };
    const int checked = test::expect_gradients_match_finite_differences(m, loss);
    EXPECT_GT(checked, 30);
  }
}

TEST(Retrieval, RecallMatchesABruteForceCount) {
  Generator gen(21);
  const int64_t N = 40, E = 6;
  Tensor img = ops::l2_normalize(Tensor::randn({N, E}, gen));
  // Texts near their images for some rows, random for the rest.
  Tensor noise = Tensor::randn({N, E}, gen);
  Tensor txt = ops::l2_normalize(img + noise * 0.8);
  const auto r = mm::recall_at_k(img, txt, {1, 5, 10});
  const auto a = img.to_vector<float>(), b = txt.to_vector<float>();
  auto dot = [&](const std::vector<float>& u, int64_t i, const std::vector<float>& v, int64_t j) {
    double d = 0;
    for (int64_t e = 0; e < E; ++e) d += double(u[size_t(i * E + e)]) * double(v[size_t(j * E + e)]);
    return d;
  };
  for (int64_t k : {1, 5, 10}) {
    int hits_i2t = 0, hits_t2i = 0;
    for (int64_t i = 0; i < N; ++i) {
      int above_i2t = 0, above_t2i = 0;
      for (int64_t j = 0; j < N; ++j) {
        if (j == i) continue;
        above_i2t += dot(a, i, b, j) >= dot(a, i, b, i);
        above_t2i += dot(a, j, b, i) >= dot(a, i, b, i);
      }
      hits_i2t += above_i2t < k;
      hits_t2i += above_t2i < k;
    }
    EXPECT_DOUBLE_EQ(r.at("i2t_r" + std::to_string(k)), double(hits_i2t) / N) << k;
    EXPECT_DOUBLE_EQ(r.at("t2i_r" + std::to_string(k)), double(hits_t2i) / N) << k;
  }
  EXPECT_GT(r.at("i2t_r10"), 10.0 / N);  // the noisy matches are found more often than chance
  // Identical embeddings: every match first.
  const auto same = mm::recall_at_k(img, img, {1});
  EXPECT_EQ(same.at("i2t_r1"), 1.0);
  EXPECT_EQ(same.at("t2i_r1"), 1.0);
}

TEST(Retrieval, TopKIsSortedAndBestFirst) {
  Generator gen(2);
  Tensor cand = ops::l2_normalize(Tensor::randn({20, 4}, gen));
  Tensor q = cand.narrow(0, 13, 1).contiguous();
  const auto top = mm::top_k(q, cand, 5);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[0].first, 13);
  EXPECT_NEAR(top[0].second, 1.0, 1e-5);
  for (size_t i = 1; i < top.size(); ++i) EXPECT_GE(top[i - 1].second, top[i].second);
  EXPECT_EQ(mm::top_k(q, cand, 50).size(), 20u);
}

TEST(PairStream, RanksComposeTheGlobalBatchAndEpochsArePermutations) {
  mm::PairSet set;
  set.captions.resize(23);
  const int64_t batch = 6;
  mm::PairStream whole(set, batch, 4, 0, batch), r0(set, batch, 4, 0, 3), r1(set, batch, 4, 3, 3);
  std::set<int64_t> epoch0;
  std::vector<std::vector<int64_t>> seen;
  for (int step = 0; step < 7; ++step) {  // 3 batches per epoch (23 / 6): 7 steps cross two epochs
    auto w = whole.next(), a = r0.next(), b = r1.next();
    a.insert(a.end(), b.begin(), b.end());
    EXPECT_EQ(a, w) << "step " << step;
    if (step < 3) epoch0.insert(w.begin(), w.end());
    seen.push_back(w);
  }
  EXPECT_EQ(epoch0.size(), 18u);  // no pair twice within an epoch
  EXPECT_NE(seen[0], seen[3]);    // a new order in the next epoch
  mm::PairStream resumed(set, batch, 4, 0, batch);
  resumed.restore(4);
  EXPECT_EQ(resumed.next(), seen[4]);
  EXPECT_EQ(resumed.next(), seen[5]);
  EXPECT_THROW(mm::PairStream(set, 24, 4, 0, 24), Error);  // a batch larger than the set
}

TEST(PairStream, PadCaptionsKeepsLengths) {
  const auto tb = mm::pad_captions({{5, 6, 1}, {7, 1}}, 1);
  EXPECT_EQ(tb.ids.shape(), (Shape{2, 3}));
  EXPECT_EQ(tb.ids.to_vector<int64_t>(), (std::vector<int64_t>{5, 6, 1, 7, 1, 1}));
  EXPECT_EQ(tb.lengths.to_vector<int64_t>(), (std::vector<int64_t>{3, 2}));
}

}  // namespace
}  // namespace wensu

namespace wensu {
namespace {

// One lit pixel per image: after the shift it is the only one, at most max_shift away, and the
// rest is background; the same key gives the same shifts.
TEST(PairStream, ShiftImagesMovesWithinTheLimit) {
  const int64_t B = 16, S = 9, s = 2;
  Tensor px = Tensor::full({B, 3, S, S}, 1.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < 3; ++c) px.data<float>()[((b * 3 + c) * S + 4) * S + 4] = -0.5f;
  Tensor a = mm::shift_images(px, s, 7, 3), again = mm::shift_images(px, s, 7, 3), other = mm::shift_images(px, s, 7, 4);
  EXPECT_EQ(a.to_vector<float>(), again.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), other.to_vector<float>());
  std::set<std::pair<int64_t, int64_t>> seen;
  for (int64_t b = 0; b < B; ++b) {
    int lit = 0;
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        const float v = a.data<float>()[((b * 3 + 1) * S + i) * S + j];
        if (v == 1.0f) continue;
        EXPECT_EQ(v, -0.5f);
        EXPECT_LE(std::abs(i - 4), s);
        EXPECT_LE(std::abs(j - 4), s);
        seen.insert({i, j});
        ++lit;
      }
    EXPECT_EQ(lit, 1) << "image " << b;
  }
  EXPECT_GT(seen.size(), 3u);  // the shifts vary
  EXPECT_EQ(mm::shift_images(px, 0, 7, 3).to_vector<float>(), px.to_vector<float>());
}

}  // namespace
}  // namespace wensu
