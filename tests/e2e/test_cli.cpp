// The wensu binary as a user meets it: --help everywhere, a demo run that writes a checkpoint,
// and resuming from a bad checkpoint (corrupt, a tensor missing, a tensor of the wrong shape)
// failing with one line that names the file and the tensor, exit code != 0.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_support.h"
#include "wensu/io/checkpoint.h"

using namespace wensu;
using wensu::test::read_text;
using wensu::test::run_wensu;
namespace fs = std::filesystem;

namespace {

class Cli : public wensu::test::CliTest {
 protected:
  // A real checkpoint from a 2-step demo run.
  std::string demo_checkpoint() {
    EXPECT_EQ(run("demo --steps 2 --batch 2 --length 8 --threads 1 -o '" + path("run") + "'"), 0) << err();
    return path("run/checkpoint.h5");
  }
};

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_F(Cli, HelpOnEveryCommand) {
  for (const char* cmd : {"--help", "demo --help", "ckpt --help", "ckpt info --help", "bench --help",
                          "bench layer --help", "bench attention --help", "bench moe --help", "bench pretrain --help",
                          "pretrain --help", "eval-ppl --help", "embed --help", "plot --help", "convert --help",
                          "convert esm2 --help", "ckpt weights --help", "score --help", "train-fold --help", "fold --help", "structdb --help", "eval-fold --help",
                          "text --help", "text train --help", "text generate --help", "text tokenizer-train --help",
                          "text tokenize --help", "text eval --help", "convert gpt2 --help", "bench generate --help"})
    EXPECT_EQ(run(cmd), 0) << cmd << ": " << err();
  EXPECT_EQ(run("frobnicate"), 2);
}

TEST_F(Cli, DemoWritesMetricsAndACheckpoint) {
  std::string ck = demo_checkpoint();
  EXPECT_TRUE(fs::exists(ck));
  EXPECT_EQ(lines(read_text(path("run/metrics.jsonl"))), 2);
  ASSERT_EQ(run("ckpt info '" + ck + "'"), 0) << err();
  EXPECT_NE(read_text(path("out.txt")).find("step"), std::string::npos);
}

TEST_F(Cli, ResumeFromCorruptCheckpointFailsCleanly) {
  { std::ofstream(path("bad.h5")) << "this is not HDF5"; }
  EXPECT_EQ(run("demo --steps 2 --threads 1 -o '" + path("r") + "' --resume '" + path("bad.h5") + "'"), 1);
  EXPECT_EQ(lines(err()), 1) << err();
  EXPECT_NE(err().find(path("bad.h5")), std::string::npos) << err();
}

TEST_F(Cli, ResumeWithMissingOrMisshapenTensorNamesIt) {
  io::Checkpoint ck = io::load_checkpoint(demo_checkpoint());
  const std::string victim = ck.params[3].name;
  io::Checkpoint missing = ck;
  missing.params.erase(missing.params.begin() + 3);
  io::save_checkpoint(path("missing.h5"), missing);
  EXPECT_EQ(run("demo --steps 4 --threads 1 -o '" + path("r1") + "' --resume '" + path("missing.h5") + "'"), 1);
  EXPECT_EQ(lines(err()), 1) << err();
  EXPECT_NE(err().find("'" + victim + "'"), std::string::npos) << err();
  EXPECT_NE(err().find(path("missing.h5")), std::string::npos) << err();

  io::Checkpoint shaped = ck;
  shaped.params[3].tensor = Tensor::zeros({7, 3});
  io::save_checkpoint(path("shape.h5"), shaped);
  EXPECT_EQ(run("demo --steps 4 --threads 1 -o '" + path("r2") + "' --resume '" + path("shape.h5") + "'"), 1);
  EXPECT_EQ(lines(err()), 1) << err();
  EXPECT_NE(err().find("'" + victim + "'"), std::string::npos) << err();
  EXPECT_NE(err().find("[7, 3]"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("r2/checkpoint.h5"))) << "a failed resume must not write a checkpoint";
}

TEST_F(Cli, CkptWeightsKeepsParametersOnly) {
  const std::string ck = demo_checkpoint(), w = path("weights.h5");
  ASSERT_EQ(run("ckpt weights '" + ck + "' '" + w + "'"), 0) << err();
  const io::CheckpointInfo full = io::inspect_checkpoint(ck), only = io::inspect_checkpoint(w);
  EXPECT_FALSE(full.optimizer.empty());
  EXPECT_TRUE(only.optimizer.empty());
  EXPECT_TRUE(only.rng.empty());
  ASSERT_EQ(only.params.size(), full.params.size());
  for (size_t i = 0; i < full.params.size(); ++i) EXPECT_EQ(only.params[i].name, full.params[i].name);
  EXPECT_EQ(only.model_config, full.model_config);
  EXPECT_EQ(only.step, full.step);
  EXPECT_NE(run("ckpt weights '" + ck + "'"), 0);
  // --dtype bf16: matrices in bfloat16 (their values rounded), vectors as they were.
  const std::string h = path("half.h5");
  ASSERT_EQ(run("ckpt weights '" + ck + "' '" + h + "' --dtype bf16"), 0) << err();
  const io::Checkpoint a = io::load_checkpoint(ck), b = io::load_checkpoint(h);
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    const Tensor& x = a.params[i].tensor;
    const Tensor& y = b.params[i].tensor;
    EXPECT_EQ(y.dtype(), x.dim() >= 2 ? DType::bf16 : x.dtype()) << a.params[i].name;
    EXPECT_EQ(y.to(DType::f64).to_vector<double>(), x.to(y.dtype()).to(DType::f64).to_vector<double>()) << a.params[i].name;
  }
  EXPECT_NE(run("ckpt weights '" + ck + "' '" + path("x.h5") + "' --dtype f16"), 0);
}
