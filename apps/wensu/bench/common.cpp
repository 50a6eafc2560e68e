#include "bench/common.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/ops/matmul.h"

namespace wensu::app::bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string gemm_library() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

double sgemm_gflops(int64_t n) {
  NoGradGuard ng;
  Generator gen(0);
  Tensor a = Tensor::randn({n, n}, gen), b = Tensor::randn({n, n}, gen);
  std::vector<double> times;
  for (int i = 0; i < 4; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    ops::matmul(a, b);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) times.push_back(s);
  }
  return 2.0 * double(n) * double(n) * double(n) / median(times) / 1e9;
}

// Runs a PyTorch peer script with `args` and returns its JSON line (null when unavailable).
nlohmann::json run_peer(const std::string& python, const std::string& script, const std::string& args) {
  if (python.empty()) return nullptr;
  const std::string cmd = "'" + python + "' '" + script + "' " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (pclose(p) != 0) {
    std::fprintf(stderr, "bench: the PyTorch peer failed (%s)\n", cmd.c_str());
    return nullptr;
  }
  try {
    return nlohmann::json::parse(out.substr(out.find('{')));
  } catch (const std::exception&) {
    std::fprintf(stderr, "bench: could not parse the PyTorch peer's output: %s\n", out.c_str());
    return nullptr;
  }
}

std::string default_python() {
  if (const char* e = std::getenv("WENSU_TORCH_PYTHON")) return e;
  for (const char* p : {".venv/bin/python", "../.venv/bin/python"})
    if (std::filesystem::exists(p)) return p;
  return "";
}

std::vector<int> parse_threads(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  WENSU_CHECK(!out.empty(), "--threads: give a comma-separated list such as 1,2");
  return out;
}

}  // namespace wensu::app::bench
