// wensu pretrain end to end on a tiny ESM-2: a run killed with SIGKILL and resumed logs the
// same losses, bit for bit, as one that never stopped; two MPI ranks log the same losses as one
// process; bad FASTA input stops with a one-line error naming file, record and line.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "test_support.h"

namespace fs = std::filesystem;
using wensu::test::metrics_losses;
using wensu::test::read_text;
using wensu::test::run_wensu;
using wensu::test::wensu_binary;

namespace {

struct Workspace {
  fs::path dir;
  std::string config, data;
  explicit Workspace(const std::string& tag) {
    dir = fs::temp_directory_path() / ("wensu_pretrain_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    config = (dir / "tiny.json").string();
    std::ofstream(config) << R"({"num_layers": 2, "embed_dim": 32, "attention_heads": 4})";
    std::mt19937 rng(5);
    const std::string aa = "ACDEFGHIKLMNPQRSTVWY";
    for (int s = 0; s < 2; ++s) {
      std::ofstream out(dir / ("train-" + std::to_string(s) + ".fasta"));
      for (int r = 0; r < 80; ++r) {
        out << ">UniRef50_T" << s << "_" << r << " tiny n=1 Tax=none TaxID=0 RepID=T\n";
        const int len = 20 + int(rng() % 100);
        for (int i = 0; i < len; ++i) out << aa[rng() % aa.size()];
        out << "\n";
      }
    }
    data = (dir / "train-*.fasta").string();
  }
  ~Workspace() { fs::remove_all(dir); }
  std::string args(const std::string& out, int steps) const {
    return "pretrain --config '" + config + "' --data '" + data + "' --out '" + out + "' --steps " +
           std::to_string(steps) + " --max-len 64 --tokens-per-batch 512 --warmup 2 --lr 1e-3 --ckpt-every 3 --quiet";
  }
};

}  // namespace

TEST(Pretrain, KilledAndResumedRunLogsTheSameLosses) {
  Workspace w("kill");
  const int steps = 24;
  const std::string full = (w.dir / "full").string(), cut = (w.dir / "cut").string();
  ASSERT_EQ(run_wensu(w.args(full, steps) + " --threads 1", (w.dir / "o1").string(), (w.dir / "e1").string()), 0)
      << read_text((w.dir / "e1").string());
  const auto want = metrics_losses(full + "/metrics.jsonl");
  ASSERT_EQ(want.size(), size_t(steps));

  // The same run, killed with SIGKILL once it has logged 8 steps (its last checkpoint is at 6).
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string cmd = "exec '" + wensu_binary() + "' " + w.args(cut, steps) + " --threads 1 >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  size_t seen = 0;
  for (int i = 0; i < 6000 && seen < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    seen = metrics_losses(cut + "/metrics.jsonl").size();
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_LT(metrics_losses(cut + "/metrics.jsonl").size(), size_t(steps));

  ASSERT_EQ(run_wensu("pretrain --resume --out '" + cut + "' --steps " + std::to_string(steps) + " --quiet --threads 1",
                      (w.dir / "o2").string(), (w.dir / "e2").string()),
            0)
      << read_text((w.dir / "e2").string());
  const auto got = metrics_losses(cut + "/metrics.jsonl");
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [step, loss] : want) EXPECT_EQ(got.at(step), loss) << "step " << step;  // bit for bit
  EXPECT_LT(want.rbegin()->second, want.begin()->second);  // and it learns something
}

#ifdef WENSU_MPIEXEC
TEST(Pretrain, TwoRanksLogTheSameLossesAsOneProcess) {
  Workspace w("mpi");
  const std::string one = (w.dir / "one").string(), two = (w.dir / "two").string();
  // One process running both data streams sees the global batches of two ranks that each read
  // their own shard.
  ASSERT_EQ(run_wensu(w.args(one, 6) + " --threads 1 --data-streams 2", (w.dir / "o1").string(),
                      (w.dir / "e1").string()),
            0)
      << read_text((w.dir / "e1").string());
  ASSERT_EQ(wensu::test::run_wensu_mpi(2, w.args(two, 6) + " --threads 1", (w.dir / "o2").string()), 0)
      << read_text((w.dir / "o2").string());
  wensu::test::expect_same_losses(one + "/metrics.jsonl", two + "/metrics.jsonl", 6, 1e-5);
}
#endif

TEST(Pretrain, BadFastaIsAOneLineErrorAndWritesNothing) {
  Workspace w("bad");
  const std::string bad = (w.dir / "bad.fasta").string();
  std::ofstream(bad) << ">UniRef50_OK fine\nACDEFGHIK\n>UniRef50_BAD broken\nACDE1GHIK\n";
  const std::string out = (w.dir / "run").string();
  const std::string args = "pretrain --config '" + w.config + "' --data '" + bad + "' --out '" + out +
                           "' --steps 3 --max-len 64 --tokens-per-batch 512 --quiet --threads 1";
  EXPECT_NE(run_wensu(args, (w.dir / "o").string(), (w.dir / "e").string()), 0);
  const std::string err = read_text((w.dir / "e").string());
  EXPECT_NE(err.find("bad.fasta"), std::string::npos) << err;
  EXPECT_NE(err.find("UniRef50_BAD"), std::string::npos) << err;
  EXPECT_NE(err.find("line 4"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out + "/checkpoint.h5"));
  EXPECT_FALSE(fs::exists(out + "/metrics.jsonl"));
}

// --skip-invalid: the run goes on, and says how many records it skipped (stdout and metrics).
TEST(Pretrain, SkipInvalidCountsWhatItSkipped) {
  Workspace w("skip");
  const std::string bad = (w.dir / "bad.fasta").string();
  std::ofstream(bad) << ">UniRef50_OK fine\nACDEFGHIKLMNPQ\n>UniRef50_BAD broken\nACDE1GHIK\n>UniRef50_EMPTY\n"
                        ">UniRef50_OK2 fine\nMKVLAAGIVGLLL\n";
  const std::string out = (w.dir / "run").string();
  const std::string args = "pretrain --config '" + w.config + "' --data '" + bad + "' --out '" + out +
                           "' --steps 2 --max-len 64 --tokens-per-batch 512 --quiet --threads 1 --skip-invalid";
  ASSERT_EQ(run_wensu(args, (w.dir / "o").string(), (w.dir / "e").string()), 0) << read_text((w.dir / "e").string());
  EXPECT_NE(read_text((w.dir / "o").string()).find("skipped 2 invalid FASTA record(s)"), std::string::npos)
      << read_text((w.dir / "o").string());
  std::ifstream in(out + "/metrics.jsonl");
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(nlohmann::json::parse(first).at("skipped_records").get<int64_t>(), 2) << first;
}
