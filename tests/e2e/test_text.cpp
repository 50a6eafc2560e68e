// wensu text end to end on a tiny GPT: a SentencePiece tokenizer trained by `tokenizer-train`,
// a stopped and resumed run logging the same losses as an uninterrupted one, two MPI ranks
// logging the losses of one process, generation that is reproducible and the same with and
// without the KV cache, GPT-2 folder conversion, and clear errors for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace fs = std::filesystem;

namespace wensu {
namespace {

class TextCli : public test::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    // Mixed English and Chinese text: the BPE fixture's sample, cut into documents.
    std::ifstream in(test::test_data_dir() + "/text/bpe_sample.txt");
    std::ofstream out(path("corpus.txt")), english(path("english.txt"));
    std::string line;
    for (int n = 0; std::getline(in, line); ++n) {
      out << line << ((n % 4 == 3) ? "\n\n" : "\n");
      if (std::all_of(line.begin(), line.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
        english << line << "\n";
    }
    std::ofstream(path("tiny.json")) << R"({"max_positions": 32, "embed_dim": 32, "num_heads": 2, "num_layers": 2})";
  }
  // A SentencePiece model of the corpus (trained once per test that needs it).
  std::string tokenizer(const std::string& corpus = "corpus.txt", int vocab = 3000) {
    const std::string prefix = path(corpus + ".tok");
    if (!fs::exists(prefix + ".model"))
      EXPECT_EQ(run("text tokenizer-train --data '" + path(corpus) + "' --out '" + prefix + "' --vocab-size " +
                    std::to_string(vocab)),
                0)
          << err();
    return prefix + ".model";
  }
  std::string train_args(const std::string& out, int steps) {
    return "text train --config '" + path("tiny.json") + "' --tokenizer '" + tokenizer() + "' --data '" +
           path("corpus.txt") + "' --out '" + path(out) + "' --steps " + std::to_string(steps) +
           " --batch 4 --seq-len 32 --warmup 2 --lr 3e-3 --ckpt-every 3 --quiet --threads 1";
  }
  std::map<int64_t, double> losses(const std::string& out) { return test::metrics_losses(path(out + "/metrics.jsonl")); }
};

TEST_F(TextCli, StoppedAndResumedRunLogsTheSameLosses) {
  ASSERT_EQ(run(train_args("full", 10)), 0) << err();
  ASSERT_EQ(run(train_args("cut", 10) + " --stop-after 5"), 0) << err();
  ASSERT_EQ(losses("cut").size(), 5u);
  ASSERT_EQ(run("text train --resume --out '" + path("cut") + "' --quiet --threads 1"), 0) << err();
  test::expect_same_losses(path("full/metrics.jsonl"), path("cut/metrics.jsonl"), 10, 0);
  const auto want = losses("full");
  EXPECT_LT(want.rbegin()->second, want.begin()->second);
}

#ifdef WENSU_MPIEXEC
TEST_F(TextCli, TwoRanksLogTheSameLossesAsOneProcess) {
  ASSERT_EQ(run(train_args("one", 4) + " --data-streams 2"), 0) << err();
  ASSERT_EQ(test::run_wensu_mpi(2, train_args("two", 4), path("mpi.txt")), 0) << test::read_text(path("mpi.txt"));
  test::expect_same_losses(path("one/metrics.jsonl"), path("two/metrics.jsonl"), 4, 1e-5);
}
#endif

TEST_F(TextCli, GenerationIsReproducibleAndTheSameWithoutTheCache) {
  ASSERT_EQ(run(train_args("run", 6)), 0) << err();
  const std::string model = path("run/checkpoint.h5");
  for (const char* sampling : {"--temperature 0", "--temperature 0.9 --top-k 20 --top-p 0.9 --seed 3"}) {
    const std::string gen = "text generate --model '" + model + "' --prompt 'The ' --max-tokens 20 --ignore-eos --quiet " +
                            sampling;
    ASSERT_EQ(run(gen), 0) << err();
    const std::string first = out();
    ASSERT_GT(first.size(), 5u);
    ASSERT_EQ(run(gen), 0) << err();
    EXPECT_EQ(out(), first) << sampling;
    ASSERT_EQ(run(gen + " --no-cache"), 0) << err();
    EXPECT_EQ(out(), first) << sampling;
  }
  // A stop string ends the text before its first occurrence: take the second character of a
  // greedy continuation as the stop string.
  const std::string greedy = "text generate --model '" + model + "' --prompt 'The ' --max-tokens 40 --temperature 0 --ignore-eos --quiet";
  ASSERT_EQ(run(greedy), 0) << err();
  const std::string gen = out().substr(4, out().size() - 5);  // without the prompt and the final newline
  size_t a = 1;
  while (a < gen.size() && (static_cast<unsigned char>(gen[a]) & 0xc0) == 0x80) ++a;  // the next character's start
  size_t b = a + 1;
  while (b < gen.size() && (static_cast<unsigned char>(gen[b]) & 0xc0) == 0x80) ++b;
  ASSERT_LT(a, gen.size()) << gen;
  const std::string stop = gen.substr(a, b - a);
  std::string quoted;  // for the shell, inside single quotes
  for (char c : stop) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  ASSERT_EQ(run(greedy + " --stop '" + quoted + "'"), 0) << err();
  EXPECT_EQ(out(), "The " + gen.substr(0, gen.find(stop)) + "\n") << "stop " << stop;
}

// `wensu text eval` computes the trainer's validation loss (same windows, same mean).
TEST_F(TextCli, EvalGivesTheTrainersValidationLoss) {
  ASSERT_EQ(run(train_args("run", 4) + " --val-data '" + path("english.txt") + "'"), 0) << err();
  double val = 0;
  {
    std::ifstream in(path("run/metrics.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("val_loss")) val = j["val_loss"].get<double>();
    }
  }
  ASSERT_GT(val, 0.0);
  ASSERT_EQ(run("text eval --model '" + path("run/checkpoint.h5") + "' --data '" + path("english.txt") +
                "' --seq-len 32 --batch 3 --threads 1"),
            0)
      << err();
  const auto j = nlohmann::json::parse(out());
  EXPECT_NEAR(j.at("loss").get<double>(), val, 1e-5 * val);
  EXPECT_NEAR(j.at("ppl").get<double>(), std::exp(val), 1e-4 * std::exp(val));
}

TEST_F(TextCli, Gpt2FolderConvertsWithItsTokenizer) {
  // No vocab.json in the fixture folder: the error says to give --tokenizer.
  const std::string dir = test::test_data_dir() + "/gpt2_tiny";
  EXPECT_NE(run("convert gpt2 '" + dir + "' '" + path("g.h5") + "'"), 0);
  EXPECT_NE(err().find("--tokenizer"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("g.h5")));
  // The fixture's vocabulary has 512 tokens: an English tokenizer of 400 fits in it.
  ASSERT_EQ(run("convert gpt2 '" + dir + "' '" + path("g.h5") + "' --tokenizer '" + tokenizer("english.txt", 400) + "'"), 0)
      << err();
  ASSERT_EQ(run("text generate --model '" + path("g.h5") + "' --prompt 'hello' --max-tokens 5 --temperature 0 --ignore-eos"), 0)
      << err();
  EXPECT_NE(err().find("tokens/s"), std::string::npos) << err();
}

// Out of the box: no --model, the bundled data/models/wensu-text model writes text.
TEST_F(TextCli, BundledModelGenerates) {
  ASSERT_EQ(run("text generate --prompt '《春夜》' --max-tokens 12 --seed 1 --ignore-eos --threads 1"), 0) << err();
  EXPECT_GT(out().size(), std::string("《春夜》").size() + 1) << out();
  EXPECT_NE(err().find("12 new tokens"), std::string::npos) << err();
}

TEST_F(TextCli, BadInputIsAClearError) {
  // Missing tokenizer files.
  EXPECT_NE(run("text train --config '" + path("tiny.json") + "' --tokenizer '" + path("nope") + "' --data '" +
                path("corpus.txt") + "' --out '" + path("r1") + "' --steps 2 --quiet"),
            0);
  EXPECT_NE(err().find("nope"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("r1/checkpoint.h5")));
  // An empty corpus.
  std::ofstream(path("empty.txt")) << "\n\n";
  EXPECT_NE(run("text train --config '" + path("tiny.json") + "' --tokenizer '" + tokenizer() + "' --data '" +
                path("empty.txt") + "' --out '" + path("r2") + "' --steps 2 --quiet"),
            0);
  EXPECT_NE(err().find("has no text"), std::string::npos) << err();
  EXPECT_FALSE(fs::exists(path("r2/metrics.jsonl")));
  // A checkpoint of another architecture (ESM-2) given as a text model.
  ASSERT_EQ(run("convert esm2 '" + test::test_data_dir() + "/esm2_tiny.safetensors' '" + path("esm.h5") + "'"), 0) << err();
  EXPECT_NE(run("text generate --model '" + path("esm.h5") + "' --prompt x"), 0);
  EXPECT_NE(err().find("esm2"), std::string::npos) << err();
  // A missing model file.
  EXPECT_NE(run("text generate --model '" + path("missing.h5") + "' --prompt x"), 0);
  EXPECT_NE(err().find("missing.h5"), std::string::npos) << err();
}

}  // namespace
}  // namespace wensu
