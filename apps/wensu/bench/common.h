// Shared by the `wensu bench` cases: timing, the PyTorch peer, the machine's sgemm rate.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wensu::app::bench {

// fp32 sgemm rate per core on this machine class (the guide's figure; each case also measures
// the rate in its own run where the comparison matters).
constexpr double kPeakGflopsPerCore = 160.0;

double median(std::vector<double> v);
// "oneDNN 2.6.3": the GEMM library the CPU kernels call.
std::string gemm_library();
// GFLOP/s of a square float32 matmul of size n on the current threads (median of a few runs),
// through the same GEMM the kernels use: the "dense sgemm rate" kernel figures are held to.
double sgemm_gflops(int64_t n = 2048);
// Runs a PyTorch peer script with `args` and returns its JSON line (null when unavailable).
nlohmann::json run_peer(const std::string& python, const std::string& script, const std::string& args);
// $WENSU_TORCH_PYTHON, else .venv/bin/python when present, else "" (no peer).
std::string default_python();
// "1,2" -> {1, 2}.
std::vector<int> parse_threads(const std::string& s);

}  // namespace wensu::app::bench
