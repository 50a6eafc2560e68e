// Shared test helpers: where tests find their fixtures and the wensu binary (the paths baked in
// at build time, unless the environment says otherwise: scripts/gpu-check.sh runs the suite on
// another machine from a packed copy), and running the binary with its output captured.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "wensu/core/check.h"

namespace wensu::test {

inline std::string test_data_dir() {
  const char* e = std::getenv("WENSU_TEST_DATA");
  return e ? e : WENSU_TEST_DATA;
}

inline std::string wensu_binary() {
  const char* e = std::getenv("WENSU_BINARY");
  return e ? e : WENSU_BINARY;
}

inline std::string read_text(const std::string& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of the wensu::Error that f() throws, or "" when it throws none (so a test that
// looks for a piece of the message fails when nothing is thrown).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// step -> loss of every training line of a run's metrics.jsonl (validation lines skipped).
inline std::map<int64_t, double> metrics_losses(const std::string& metrics) {
  std::map<int64_t, double> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

// Expects the metrics.jsonl of two runs to log `steps` training losses each, the same to `rel`
// relative: 0 (a resumed run against an uninterrupted one) asks for the same bits; one process
// against several ranks on the same global batch differs in rounding.
inline void expect_same_losses(const std::string& metrics_a, const std::string& metrics_b, size_t steps,
                               double rel) {
  const auto a = metrics_losses(metrics_a), b = metrics_losses(metrics_b);
  ASSERT_EQ(a.size(), steps) << metrics_a;
  ASSERT_EQ(b.size(), steps) << metrics_b;
  for (const auto& [step, loss] : a) {
    ASSERT_TRUE(b.count(step)) << metrics_b << " has no loss at step " << step;
    if (rel == 0)
      EXPECT_EQ(b.at(step), loss) << "step " << step;
    else
      EXPECT_NEAR(b.at(step), loss, rel * std::abs(loss)) << "step " << step;
  }
}

// Runs `wensu ARGS` with stdout and stderr captured in files; returns the exit status.
inline int run_wensu(const std::string& args, const std::string& out, const std::string& err) {
  const std::string cmd = "'" + wensu_binary() + "' " + args + " >'" + out + "' 2>'" + err + "'";
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#ifdef WENSU_MPIEXEC
// Runs `mpiexec -np ranks wensu ARGS` with stdout and stderr together in `log`; the exit status.
inline int run_wensu_mpi(int ranks, const std::string& args, const std::string& log) {
  const std::string cmd = std::string(WENSU_MPIEXEC) + " -np " + std::to_string(ranks) + " '" + wensu_binary() + "' " +
                          args + " >'" + log + "' 2>&1";
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#endif

// A fresh temporary folder per test, removed afterwards: wensu_SUITE_TEST_PID under the system's
// temporary folder ('/' of parameterised names as '_'). Fixtures that need more in SetUp call
// TempDirTest::SetUp() first.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "wensu_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
                       std::to_string(::getpid());
    for (char& c : name)
      if (c == '/') c = '_';
    dir_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }
  // Writes `bytes` to path(name) and returns that path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  // The names in the folder, sorted (to check that nothing but the expected output is left).
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::filesystem::path dir_;
};

// TempDirTest, and the wensu binary run with its stdout and stderr kept in out.txt and err.txt
// there.
class CliTest : public TempDirTest {
 protected:
  int run(const std::string& args) { return run_wensu(args, path("out.txt"), path("err.txt")); }
  std::string out() const { return read_text(path("out.txt")); }
  std::string err() const { return read_text(path("err.txt")); }
};

}  // namespace wensu::test
