// Shared test helpers: where tests find their fixtures and the wensu binary (the paths baked in
// at build time, unless the environment says otherwise: scripts/gpu-check.sh runs the suite on
// another machine from a packed copy), and running the binary with its output captured.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

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

// A fresh temporary folder per test, removed afterwards, and the wensu binary run with its
// stdout and stderr kept in out.txt and err.txt there.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("wensu_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }
  int run(const std::string& args) { return run_wensu(args, path("out.txt"), path("err.txt")); }
  std::string out() const { return read_text(path("out.txt")); }
  std::string err() const { return read_text(path("err.txt")); }
  std::filesystem::path dir_;
};

}  // namespace wensu::test
