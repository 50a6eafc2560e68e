// wensu mm end to end on the committed image-caption fixture (tests/data/mm): training with
// validation metrics, a stopped and resumed run logging the same losses, two MPI ranks logging
// the losses of one process on the same global batch (negatives gathered), eval / search /
// embed on the trained model, unreadable images skipped by name (or fatal with --strict), and
// clear errors for bad input.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.h"
#include "wensu/io/checkpoint.h"

namespace fs = std::filesystem;

namespace wensu {
namespace {

class MmCli : public test::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    std::ofstream(path("tiny.json")) << R"({
      "image": {"image_size": 16, "patch_size": 4, "embed_dim": 16, "num_heads": 2, "num_layers": 1},
      "text": {"max_positions": 16, "embed_dim": 16, "num_heads": 2, "num_layers": 1},
      "embed_dim": 8})";
  }
  static std::string data(const std::string& f) { return test::test_data_dir() + "/mm/" + f; }
  // A small SentencePiece model of the text fixture's English lines.
  std::string tokenizer() {
    const std::string prefix = path("tok");
    if (!fs::exists(prefix + ".model")) {
      std::ifstream in(test::test_data_dir() + "/text/bpe_sample.txt");
      std::ofstream english(path("english.txt"));
      for (std::string line; std::getline(in, line);)
        if (std::all_of(line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
          english << line << "\n";
      english.close();
      EXPECT_EQ(run("text tokenizer-train --data '" + path("english.txt") + "' --out '" + prefix + "' --vocab-size 400"),
                0)
          << err();
    }
    return prefix + ".model";
  }
  std::string train_args(const std::string& out, int steps, const std::string& pairs = "pairs.tsv") {
    return "mm train --config '" + path("tiny.json") + "' --tokenizer '" + tokenizer() + "' --data '" + data(pairs) +
           "' --out '" + path(out) + "' --steps " + std::to_string(steps) +
           " --batch 8 --warmup 2 --lr 3e-3 --ckpt-every 3 --val-every 3 --val-split test --shift 2 --quiet --threads 1";
  }
  std::map<int64_t, double> losses(const std::string& out) { return test::metrics_losses(path(out + "/metrics.jsonl")); }
  // The validation lines of a run's metrics.jsonl, in order.
  std::vector<nlohmann::json> validations(const std::string& out) {
    std::vector<nlohmann::json> v;
    std::ifstream in(path(out + "/metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("val_loss")) v.push_back(j);
    }
    return v;
  }
};

TEST_F(MmCli, TrainsLogsValidationAndResumesExactly) {
  ASSERT_EQ(run(train_args("full", 8)), 0) << err();
  ASSERT_EQ(run(train_args("cut", 8) + " --stop-after 4"), 0) << err();
  ASSERT_EQ(run("mm train --resume --out '" + path("cut") + "' --quiet --threads 1"), 0) << err();
  test::expect_same_losses(path("full/metrics.jsonl"), path("cut/metrics.jsonl"), 8, 0);
  const auto want = losses("full");
  EXPECT_LT(want.rbegin()->second, want.begin()->second);
  // Step lines carry the temperature, validation lines the held-out loss and recall.
  std::ifstream in(path("full/metrics.jsonl"));
  std::string line;
  int steps = 0, vals = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) {
      ++steps;
      EXPECT_TRUE(j.contains("logit_scale")) << line;
      EXPECT_FALSE(j.contains("ppl")) << line;
    }
    if (j.contains("val_loss")) {
      ++vals;
      EXPECT_TRUE(j.contains("val_i2t_r1") && j.contains("val_t2i_r5") && j.contains("val_pairs")) << line;
    }
  }
  EXPECT_EQ(steps, 8);
  EXPECT_EQ(vals, 3);  // steps 3 and 6, and the end
  // wensu plot draws the validation recall, not a perplexity.
  ASSERT_EQ(run("plot '" + path("full/metrics.jsonl") + "' -o '" + path("curves.png") + "'"), 0) << err();
  EXPECT_NE(out().find("validation recall"), std::string::npos) << out();
  EXPECT_EQ(out().find("perplexity"), std::string::npos) << out();
}

// --accumulate 2: each step runs two micro-batches of 8 pairs (each its own set of negatives).
TEST_F(MmCli, AccumulationRunsEveryMicroBatch) {
  ASSERT_EQ(run(train_args("acc", 2) + " --accumulate 2"), 0) << err();
  std::ifstream in(path("acc/metrics.jsonl"));
  int steps = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    ++steps;
    EXPECT_EQ(j.at("step_tokens"), 16) << line;  // pairs of the step
    EXPECT_GT(j.at("loss").get<double>(), 0.0);
  }
  EXPECT_EQ(steps, 2);
}

#ifdef WENSU_MPIEXEC
TEST_F(MmCli, TwoRanksLogTheSameLossesAsOneProcess) {
  ASSERT_EQ(run(train_args("one", 4)), 0) << err();
  ASSERT_EQ(test::run_wensu_mpi(2, train_args("two", 4), path("mpi.txt")), 0) << test::read_text(path("mpi.txt"));
  test::expect_same_losses(path("one/metrics.jsonl"), path("two/metrics.jsonl"), 4, 1e-5);
  // Validation, with each rank embedding half of the held-out pairs, gives the same figures too.
  const auto a = validations("one"), b = validations("two");
  ASSERT_EQ(a.size(), 2u);  // steps 3 and 4
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].at("step"), a[i].at("step"));
    EXPECT_EQ(b[i].at("val_pairs"), 8);
    EXPECT_NEAR(b[i].at("val_loss").get<double>(), a[i].at("val_loss").get<double>(), 1e-5 * a[i].at("val_loss").get<double>());
    for (const char* k : {"val_i2t_r1", "val_i2t_r5", "val_t2i_r1", "val_t2i_r5"}) EXPECT_EQ(b[i].at(k), a[i].at(k)) << k;
  }
}
#endif

TEST_F(MmCli, EvalSearchAndEmbedUseTheTrainedModel) {
  ASSERT_EQ(run(train_args("run", 4)), 0) << err();
  const std::string model = path("run/checkpoint.h5");
  ASSERT_EQ(run("mm eval --model '" + model + "' --data '" + data("pairs.tsv") + "' --split test --json --threads 1"), 0)
      << err();
  const auto j = nlohmann::json::parse(out());
  EXPECT_EQ(j.at("pairs"), 8);
  for (const char* k : {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"}) {
    EXPECT_GE(j.at(k).get<double>(), 0.0);
    EXPECT_LE(j.at(k).get<double>(), 1.0);
  }
  EXPECT_DOUBLE_EQ(j.at("chance_r5").get<double>(), 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(j.at("i2t_r10").get<double>(), 1.0);  // 8 pairs: every match is in the top 10

  ASSERT_EQ(run("mm search --model '" + model + "' --query 'red heart' --images '" + data("images") + "' -k 3"), 0)
      << err();
  EXPECT_NE(out().find("query: red heart  (24 images)"), std::string::npos) << out();
  EXPECT_NE(out().find("  3  "), std::string::npos) << out();
  ASSERT_EQ(run("mm search --model '" + model + "' --image '" + data("images/emoji/1f4d8.png") + "' --texts '" +
                data("pairs.tsv") + "' -k 2"),
            0)
      << err();
  EXPECT_NE(out().find("  2  "), std::string::npos) << out();

  ASSERT_EQ(run("mm embed --model '" + model + "' --texts '" + data("pairs.tsv") + "' -o '" + path("t.h5") + "'"), 0)
      << err();
  hid_t f = H5Fopen(path("t.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t d = H5Dopen2(f, "embeddings", H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(s, dims, nullptr);
  EXPECT_EQ(dims[0], 24u);  // every caption of the file
  EXPECT_EQ(dims[1], 8u);   // the shared space
  std::vector<float> v(dims[0] * dims[1]);
  H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  double norm = 0;
  for (size_t e = 0; e < dims[1]; ++e) norm += double(v[e]) * v[e];
  EXPECT_NEAR(norm, 1.0, 1e-5);  // unit rows
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  ASSERT_EQ(run("mm embed --model '" + model + "' --images '" + data("images") + "' -o '" + path("i.h5") + "'"), 0)
      << err();
  EXPECT_TRUE(fs::exists(path("i.h5")));
}

TEST_F(MmCli, UnreadableImagesAreSkippedByNameOrFatalWithStrict) {
  ASSERT_EQ(run(train_args("skip", 2, "pairs_with_broken.tsv")), 0) << err();
  EXPECT_NE(err().find("broken.png"), std::string::npos) << err();
  EXPECT_NE(err().find("missing.png"), std::string::npos) << err();
  EXPECT_NE(err().find("pairs_with_broken.tsv line "), std::string::npos) << err();  // and where it is listed
  EXPECT_NE(run(train_args("strict", 2, "pairs_with_broken.tsv") + " --strict"), 0);
  EXPECT_NE(err().find("broken.png"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("strict")));  // no run folder, no checkpoint, no metrics
  // A bad option is refused before any image is read or any folder made.
  EXPECT_NE(run(train_args("lr", 2) + " --text-lr-scale 0"), 0);
  EXPECT_NE(err().find("--text-lr-scale"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("lr")));
}

// --text-init: the transformer tower takes every weight of the text model, the bag of words its
// token embeddings (a step at learning rate 0 leaves them as loaded).
TEST_F(MmCli, TextInitLoadsTheTextModel) {
  std::ofstream(path("gpt.json")) << R"({"max_positions": 16, "embed_dim": 16, "num_heads": 2, "num_layers": 1})";
  ASSERT_EQ(run("text train --config '" + path("gpt.json") + "' --tokenizer '" + tokenizer() + "' --data '" +
                path("english.txt") + "' --out '" + path("text") + "' --steps 2 --batch 2 --quiet --threads 1"),
            0)
      << err();
  const io::Checkpoint text = io::load_checkpoint(path("text/checkpoint.h5"));
  auto param = [](const io::Checkpoint& ck, const std::string& name) {
    for (const auto& nt : ck.params)
      if (nt.name == name) return nt.tensor.to(DType::f32).to_vector<float>();
    ADD_FAILURE() << "no " << name;
    return std::vector<float>{};
  };
  for (std::string tower : {"transformer", "bow"}) {
    SCOPED_TRACE(tower);
    ASSERT_EQ(run("mm train --config '" + path("tiny.json") + "' --text-init '" + path("text/checkpoint.h5") +
                  "' --text-tower " + tower + " --data '" + data("pairs.tsv") + "' --out '" + path(tower) +
                  "' --steps 1 --batch 8 --lr 0 --val-split test --quiet --threads 1"),
              0)
        << err();
    const io::Checkpoint mm = io::load_checkpoint(path(tower + "/checkpoint.h5"));
    const auto want = param(text, "embed_tokens.weight");
    EXPECT_EQ(param(mm, tower == "bow" ? "text_bow.weight" : "text.embed_tokens.weight"), want);
    if (tower == "transformer")
      EXPECT_EQ(param(mm, "text.layers.0.ffn.fc1.weight"), param(text, "layers.0.ffn.fc1.weight"));
  }
}

TEST_F(MmCli, BadInputIsAClearError) {
  EXPECT_NE(run("mm train --config '" + path("tiny.json") + "' --tokenizer '" + tokenizer() + "' --data '" +
                path("none.tsv") + "' --out '" + path("r") + "' --quiet"),
            0);
  EXPECT_NE(err().find("none.tsv"), std::string::npos) << err();
  std::ofstream(path("bad.tsv")) << "split\timage\tcaption\tsource\ntrain\tx.png\n";
  EXPECT_NE(run("mm train --config '" + path("tiny.json") + "' --tokenizer '" + tokenizer() + "' --data '" +
                path("bad.tsv") + "' --out '" + path("r") + "' --quiet"),
            0);
  EXPECT_NE(err().find("bad.tsv line 2"), std::string::npos) << err();
  EXPECT_NE(run("mm train --config '" + path("tiny.json") + "' --text-init '" + data("pairs.tsv") + "' --data '" +
                data("pairs.tsv") + "' --out '" + path("r") + "' --quiet"),
            0);
  EXPECT_NE(run("mm eval --model '" + path("nothing.h5") + "' --data '" + data("pairs.tsv") + "'"), 0);
  EXPECT_NE(err().find("nothing.h5"), std::string::npos) << err();
  EXPECT_NE(run("mm search --query x"), 0);
  EXPECT_NE(run("mm"), 0);
  EXPECT_EQ(run("mm train --help"), 0);
  EXPECT_NE(out().find("InfoNCE"), std::string::npos);
}

}  // namespace
}  // namespace wensu
