// wensu fold end to end with a small random FoldNet written by the test: every output file of a
// record, pLDDT in the B-factor column, invalid records named and skipped (or fatal with
// --strict), sequences beyond --max-memory refused, and wensu score reading what fold wrote.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "wensu/core/generator.h"
#include "wensu/fold/structure.h"
#include "wensu/models/fold_net.h"
#include "wensu/train/state.h"

namespace fs = std::filesystem;
using namespace wensu;
using test::read_text;

namespace {

class Fold : public test::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    models::FoldConfig c;
    c.features = "onehot";
    c.seq_dim = 16, c.pair_dim = 8, c.outer_dim = 4, c.blocks = 1, c.heads = 2;
    Generator g(3);
    models::FoldNet net(c, g);
    train::TrainingState st;
    st.model_config = nlohmann::json(c).dump();
    model = path("model.h5");
    train::save_training_state(model, net, nullptr, st);
  }
  std::string model;
};

}  // namespace

TEST_F(Fold, WritesEveryFileOfEveryRecord) {
  std::ofstream(path("in.fasta")) << ">seq1 first\nMKVLAAGIVGLLLAWQEGDKLRST\n>seq/2 second\nGSHMTTPQDLAEKLA\n";
  ASSERT_EQ(run("fold '" + path("in.fasta") + "' -o '" + path("out") + "' --model '" + model + "' --starts 2"), 0)
      << err();
  for (const std::string stem : {"seq1", "seq_2"}) {
    for (const std::string ext : {".pdb", ".cif", ".json", ".contacts.png", ".distogram.h5"})
      EXPECT_TRUE(fs::exists(path("out/" + stem + ext))) << stem << ext;
    const auto j = nlohmann::json::parse(read_text(path("out/" + stem + ".json")));
    EXPECT_EQ(j.at("model_sha256").get<std::string>().size(), 64u);
    const fold::Backbone bb = fold::read_backbone(path("out/" + stem + ".pdb"));
    EXPECT_EQ(int64_t(bb.size()), j.at("length").get<int64_t>());
    double mean = 0;
    for (float c : bb.confidence) {
      EXPECT_GE(c, 0.0f);
      EXPECT_LE(c, 100.0f);
      mean += c / double(bb.confidence.size());
    }
    EXPECT_NEAR(mean, j.at("mean_plddt").get<double>(), 0.05);
  }
  EXPECT_NE(out().find("[2/2] seq/2"), std::string::npos) << out();
  // wensu score reads the prediction (against itself: TM-score 1).
  ASSERT_EQ(run("score '" + path("out/seq1.pdb") + "' '" + path("out/seq1.cif") + "'"), 0) << err();
  EXPECT_NEAR(nlohmann::json::parse(out()).at("tm_score").get<double>(), 1.0, 1e-3);
}

TEST_F(Fold, InvalidRecordsAreNamedAndTheOthersFolded) {
  std::ofstream(path("in.fasta")) << ">good1\nMKVLAAGIVGLLLAW\n>bad1\nMKV1LAAG\n>empty1\n>good2\nGSHMTTPQDL\n";
  EXPECT_EQ(run("fold '" + path("in.fasta") + "' -o '" + path("out") + "' --model '" + model + "' --starts 1"), 1);
  EXPECT_NE(err().find("bad1"), std::string::npos) << err();
  EXPECT_NE(err().find("empty1"), std::string::npos) << err();
  EXPECT_TRUE(fs::exists(path("out/good1.pdb")));
  EXPECT_TRUE(fs::exists(path("out/good2.pdb")));
  EXPECT_FALSE(fs::exists(path("out/bad1.pdb")));

  EXPECT_NE(run("fold '" + path("in.fasta") + "' -o '" + path("strict") + "' --model '" + model + "' --strict"), 0);
  EXPECT_NE(err().find("bad1"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("strict/good1.pdb")));
}

TEST_F(Fold, SequencesBeyondMaxMemoryAreRefused) {
  std::ofstream(path("in.fasta")) << ">long1\n" << std::string(3000, 'A') << "\n>short1\nMKVLAAGIVG\n";
  EXPECT_EQ(run("fold '" + path("in.fasta") + "' -o '" + path("out") + "' --model '" + model +
                "' --max-memory 0.5 --starts 1"),
            1);
  EXPECT_NE(err().find("long1"), std::string::npos) << err();
  EXPECT_NE(err().find("--max-memory"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("out/long1.pdb")));
  EXPECT_TRUE(fs::exists(path("out/short1.pdb")));
}

TEST_F(Fold, AMissingModelSaysHowToGetOne) {
  std::ofstream(path("in.fasta")) << ">a\nMKV\n";
  EXPECT_NE(run("fold '" + path("in.fasta") + "' --model '" + path("nope.h5") + "'"), 0);
  EXPECT_NE(err().find("train-fold"), std::string::npos) << err();
}

// The README's first command: the bundled model folds the bundled example.
TEST_F(Fold, TheBundledModelFoldsTheBundledExample) {
  const std::string example = std::string(WENSU_TEST_DATA) + "/../../data/examples/fold-example.fasta";
  ASSERT_EQ(run("fold '" + example + "' -o '" + path("out") + "' --starts 2"), 0) << err();
  for (const std::string id : {"1AHS_A", "1CC5_A"}) {
    const fold::Backbone bb = fold::read_backbone(path("out/" + id + ".cif"));
    EXPECT_GT(bb.size(), 60u) << id;
    const auto j = nlohmann::json::parse(read_text(path("out/" + id + ".json")));
    EXPECT_NE(j.at("model").get<std::string>().find("wensu-fold/model.h5"), std::string::npos);
  }
}
