// wensu train-fold end to end on a tiny shard written by the test: a run stopped after a
// checkpoint and resumed logs the same losses, bit for bit, as one that never stopped.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "test_support.h"
#include "wensu/fold/fold_data.h"

using namespace wensu;
using test::read_text;

namespace {

class TrainFold : public test::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    // Six chains of 20-40 residues: CB on a random walk, random torsions (the losses only need
    // to be well defined and deterministic).
    std::mt19937 rng(4);
    std::normal_distribution<float> normal;
    const std::string aa = "ACDEFGHIKLMNPQRSTVWY";
    fold::FoldShardWriter w(path("train.h5"));
    for (int c = 0; c < 6; ++c) {
      fold::ChainData ch;
      ch.id = "T" + std::to_string(c) + "_A";
      const int L = 20 + int(rng() % 21);
      float x[3] = {0, 0, 0};
      for (int i = 0; i < L; ++i) {
        ch.sequence += aa[rng() % 20];
        for (float& v : x) v += 2.2f * normal(rng);
        for (int a = 0; a < 4; ++a) ch.backbone.insert(ch.backbone.end(), x, x + 3);
        ch.cb.insert(ch.cb.end(), x, x + 3);
        ch.phi_psi.insert(ch.phi_psi.end(), {normal(rng), normal(rng)});
        ch.phi_psi_mask.insert(ch.phi_psi_mask.end(), {uint8_t(i > 0), uint8_t(i + 1 < L)});
        ch.dssp += 'C';
        for (int k = 0; k < 20; ++k) ch.profile.push_back(0.05f);
      }
      w.add(ch);
    }
    w.close();
    std::ofstream(path("tiny.json")) << R"({"features": "onehot", "seq_dim": 16, "pair_dim": 8, "outer_dim": 4,
                                           "blocks": 1, "heads": 2})";
  }
  std::string args(const std::string& out) {
    return "train-fold --config '" + path("tiny.json") + "' --train '" + path("train.h5") + "' --out '" + path(out) +
           "' --steps 8 --crop 24 --warmup 2 --ckpt-every 3 --val-every 0 --quiet --threads 1";
  }
};

}  // namespace

TEST_F(TrainFold, StoppedAndResumedRunLogsTheSameLosses) {
  ASSERT_EQ(run(args("full")), 0) << err();
  ASSERT_EQ(run(args("cut") + " --stop-after 5"), 0) << err();  // checkpoint at step 5
  ASSERT_EQ(run("train-fold --resume --out '" + path("cut") + "' --quiet --threads 1"), 0) << err();
  test::expect_same_losses(path("full/metrics.jsonl"), path("cut/metrics.jsonl"), 8, 0);
}

TEST_F(TrainFold, TheLmFeaturesNeedAnLm) {
  std::ofstream(path("lm.json")) << R"({"features": "lm"})";
  EXPECT_NE(run("train-fold --config '" + path("lm.json") + "' --train '" + path("train.h5") + "' --out '" +
                path("x") + "' --steps 1"),
            0);
  EXPECT_NE(err().find("--lm"), std::string::npos) << err();
}
