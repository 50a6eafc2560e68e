// wensu bench layer: one pre-LN transformer layer against PyTorch CPU.
#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/common.h"
#include "commands.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/autograd/node.h"
#include "wensu/core/allocator.h"
#include "wensu/core/generator.h"
#include "wensu/core/parallel.h"
#include "wensu/nn/transformer.h"
#include "wensu/ops/reduce.h"

namespace po = boost::program_options;

namespace wensu::app::bench {
namespace {

struct LayerShape {
  int64_t batch = 8, seq = 512, d_model = 512, heads = 8, d_ff = 2048;
  // Forward FLOPs: the six projections (q, k, v, out, fc1, fc2) and the two attention GEMMs.
  double forward_flops() const {
    double M = double(batch * seq);
    return 2.0 * M * (4.0 * d_model * d_model + 2.0 * d_model * d_ff) + 4.0 * batch * double(seq) * seq * d_model;
  }
};

std::vector<double> time_wensu_layer(const LayerShape& s, bool backward, int warmup, int repeats, bool profile) {
  nn::TransformerConfig cfg;
  cfg.d_model = s.d_model;
  cfg.n_heads = s.heads;
  cfg.ffn.d_ff = s.d_ff;
  Generator gen(0);
  nn::TransformerLayer layer(cfg, gen);
  Tensor x = Tensor::randn({s.batch, s.seq, s.d_model}, gen);
  if (backward) x.set_requires_grad(true);
  std::vector<double> times;
  for (int i = 0; i < warmup + repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (backward) {
      layer.zero_grad();
      x.zero_grad();
      ops::sum(layer.forward(x)).backward();
    } else {
      NoGradGuard ng;
      layer.forward(x);
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(ms);
  }
  if (profile && backward) {  // one more pass with the backward nodes timed, to stderr
    autograd::BackwardProfile prof;
    layer.zero_grad();
    x.zero_grad();
    auto t0 = std::chrono::steady_clock::now();
    Tensor y = layer.forward(x);
    double fwd = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    autograd::set_backward_profile(&prof);
    ops::sum(y).backward();
    autograd::set_backward_profile(nullptr);
    std::fprintf(stderr, "profile: forward %.1f ms; backward by node:\n", fwd);
    for (auto& [name, t] : prof)
      std::fprintf(stderr, "  %-12s %8.1f ms  (%lld calls)\n", name.c_str(), t.seconds * 1e3, (long long)t.calls);
  }
  return times;
}

nlohmann::json run_torch_layer(const std::string& python, const std::string& script, const LayerShape& s,
                               bool backward, int threads, int warmup, int repeats) {
  std::ostringstream a;
  a << "--threads " << threads << " --batch " << s.batch << " --seq " << s.seq << " --d-model " << s.d_model
    << " --heads " << s.heads << " --d-ff " << s.d_ff << " --warmup " << warmup << " --repeats " << repeats
    << " --mode " << (backward ? "fwdbwd" : "fwd");
  return run_peer(python, script, a.str());
}

}  // namespace

int bench_layer(const Args& args) {
  LayerShape s;
  std::string threads_s = "1,2", python = default_python(), script = "scripts/bench/torch_layer.py";
  int warmup = 2, repeats = 7;
  bool profile = false;
  po::options_description desc(
      "usage: wensu bench layer [options]\n\n"
      "One pre-LN transformer layer (float32, exact GELU, no dropout), forward and\n"
      "forward+backward, against PyTorch CPU running the same layer in the same call.\n"
      "Prints one JSON line per case: wensu and torch medians (ms), their ratio\n"
      "(wensu/torch, lower is better), and GFLOP/s against ~160 GFLOP/s per core.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("threads", po::value(&threads_s)->default_value(threads_s), "thread counts to run, comma-separated")
      ("batch", po::value(&s.batch)->default_value(s.batch), "sequences")
      ("seq", po::value(&s.seq)->default_value(s.seq), "tokens per sequence")
      ("d-model", po::value(&s.d_model)->default_value(s.d_model), "model width")
      ("heads", po::value(&s.heads)->default_value(s.heads), "attention heads")
      ("d-ff", po::value(&s.d_ff)->default_value(s.d_ff), "feed-forward width")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed iterations")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed iterations")
      ("profile", po::bool_switch(&profile), "print the time of each backward node to stderr")
      ("torch-python", po::value(&python), "Python with torch for the peer (default: $WENSU_TORCH_PYTHON or .venv/bin/python; empty = no peer)")
      ("torch-script", po::value(&script)->default_value(script), "the peer script");
  if (!parse_options(desc, args)) return 0;
  if (python.empty())
    std::fprintf(stderr, "bench: no Python with torch found (run scripts/setup-python.sh or pass --torch-python); "
                         "reporting wensu alone\n");
  for (int t : parse_threads(threads_s)) {
    for (bool bwd : {false, true}) {
      set_num_threads(t);
      reset_peak_memory();
      auto times = time_wensu_layer(s, bwd, warmup, repeats, profile);
      double w = median(times);
      double flops = s.forward_flops() * (bwd ? 3.0 : 1.0);
      nlohmann::json torch = run_torch_layer(python, script, s, bwd, t, warmup, repeats);
      nlohmann::json line = {{"case", std::string("layer_") + (bwd ? "fwdbwd" : "fwd") + "_t" + std::to_string(t)},
                             {"threads", t},
                             {"wensu_ms", w},
                             {"wensu_min_ms", *std::min_element(times.begin(), times.end())},
                             {"wensu_gflops", flops / (w * 1e6)},
                             {"peak_fraction", flops / (w * 1e6) / (kPeakGflopsPerCore * t)},
                             {"wensu_peak_mb", double(cpu_allocator_stats().peak_bytes) / (1 << 20)},
                             {"gemm", gemm_library()}};
      if (!torch.is_null()) {
        double tm = torch.at("median_ms").get<double>();
        line["torch_ms"] = tm;
        line["ratio"] = w / tm;
        line["torch_gflops"] = flops / (tm * 1e6);
        line["torch_version"] = torch.value("torch_version", "");
      } else {
        line["torch_ms"] = nullptr;
        line["ratio"] = nullptr;
      }
      std::printf("%s\n", line.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace wensu::app::bench
