// wensu bench: benchmarks as a program, never as tests. Each case prints one JSON line with
// medians; where a peer exists (PyTorch CPU via scripts/bench/) it runs in the same call so
// the ratio compares like with like on the same machine state.
#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/autograd/node.h"
#include "wensu/core/allocator.h"
#include "wensu/core/generator.h"
#include "wensu/core/parallel.h"
#include "wensu/nn/transformer.h"
#include "wensu/ops/block_layout.h"
#include "wensu/ops/block_sparse_attention.h"
#include <oneapi/dnnl/dnnl.h>
#include "wensu/ops/reduce.h"

namespace po = boost::program_options;

namespace wensu::app {
namespace {

constexpr double kPeakGflopsPerCore = 160.0;  // fp32 sgemm rate per core measured on this machine class

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct LayerShape {
  int64_t batch = 8, seq = 512, d_model = 512, heads = 8, d_ff = 2048;
  // Forward FLOPs: the six projections (q, k, v, out, fc1, fc2) and the two attention GEMMs.
  double forward_flops() const {
    double M = double(batch * seq);
    return 2.0 * M * (4.0 * d_model * d_model + 2.0 * d_model * d_ff) + 4.0 * batch * double(seq) * seq * d_model;
  }
};

std::string gemm_library() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

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

nlohmann::json run_torch_layer(const std::string& python, const std::string& script, const LayerShape& s,
                               bool backward, int threads, int warmup, int repeats) {
  std::ostringstream a;
  a << "--threads " << threads << " --batch " << s.batch << " --seq " << s.seq << " --d-model " << s.d_model
    << " --heads " << s.heads << " --d-ff " << s.d_ff << " --warmup " << warmup << " --repeats " << repeats
    << " --mode " << (backward ? "fwdbwd" : "fwd");
  return run_peer(python, script, a.str());
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

int bench_attention(const Args& args) {
  int64_t L = 4096, B = 1, H = 8, D = 64;
  ops::BlockLayoutConfig lc;
  lc.kind = "bigbird";
  lc.global_blocks = 2;
  lc.random_blocks = 3;
  bool backward = false, causal = false;
  int threads = 0, warmup = 1, repeats = 3;
  std::string python = default_python(), script = "scripts/bench/torch_attention.py";
  po::options_description desc(
      "usage: wensu bench attention [options]\n\n"
      "Block-sparse attention (float32) on one sequence batch. Prints one JSON line: median\n"
      "time, peak memory (wensu tensors and the process's max RSS) and GFLOP/s counted over the\n"
      "computed blocks only (forward: 4*block^2*D per block and head; forward+backward, which\n"
      "recomputes the scores: 3.5x that).\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("seq", po::value(&L)->default_value(L), "sequence length")
      ("batch", po::value(&B)->default_value(B), "sequences")
      ("heads", po::value(&H)->default_value(H), "heads")
      ("head-dim", po::value(&D)->default_value(D), "head size")
      ("layout", po::value(&lc.kind)->default_value(lc.kind), "dense, window, bigbird, strided, dilated")
      ("block", po::value(&lc.block)->default_value(lc.block), "block size (32, 64, 128)")
      ("window", po::value(&lc.window)->default_value(lc.window), "window: tokens on each side")
      ("global", po::value(&lc.global_blocks)->default_value(lc.global_blocks), "bigbird: global blocks")
      ("random", po::value(&lc.random_blocks)->default_value(lc.random_blocks), "bigbird: random blocks per row")
      ("stride", po::value(&lc.stride)->default_value(lc.stride), "strided: period in blocks")
      ("dilation", po::value(&lc.dilation)->default_value(lc.dilation), "dilated: keep every n-th block")
      ("causal", po::bool_switch(&causal), "causal variant of the layout")
      ("backward", po::bool_switch(&backward), "time forward+backward")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed iterations")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed iterations")
      ("torch-python", po::value(&python), "Python with torch: also time PyTorch's dense SDPA on the same shape (default: $WENSU_TORCH_PYTHON or .venv/bin/python; empty = no peer)")
      ("torch-script", po::value(&script)->default_value(script), "the peer script");
  if (!parse_options(desc, args)) return 0;
  set_num_threads(threads);
  lc.causal = causal;
  auto layout = ops::make_block_layout(lc, L, L);
  Generator gen(0);
  Tensor q = Tensor::randn({B, L, H, D}, gen), k = Tensor::randn({B, L, H, D}, gen), v = Tensor::randn({B, L, H, D}, gen);
  Tensor w = Tensor::randn({B, L, H, D}, gen);
  if (backward)
    for (Tensor* t : {&q, &k, &v}) t->set_requires_grad(true);
  reset_peak_memory();
  std::vector<double> times;
  for (int i = 0; i < warmup + repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (backward) {
      for (Tensor* t : {&q, &k, &v}) t->zero_grad();
      ops::block_sparse_attention(q, k, v, *layout).backward(w);
    } else {
      NoGradGuard ng;
      ops::block_sparse_attention(q, k, v, *layout);
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(ms);
  }
  const double t = median(times);
  const double fwd_flops = double(layout->nnz()) * B * H * 4.0 * double(lc.block * lc.block) * D;
  const double flops = fwd_flops * (backward ? 3.5 : 1.0);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json line = {{"case", "attention"}, {"seq", L}, {"batch", B}, {"heads", H}, {"head_dim", D},
                         {"layout", lc.kind}, {"block", lc.block}, {"causal", causal}, {"backward", backward},
                         {"threads", num_threads()}, {"nnz_blocks", layout->nnz()},
                         {"density", double(layout->nnz()) / double(layout->n_row_blocks * layout->n_col_blocks)},
                         {"ms", t}, {"min_ms", *std::min_element(times.begin(), times.end())},
                         {"gflops", flops / (t * 1e6)},
                         {"peak_tensor_mb", double(cpu_allocator_stats().peak_bytes) / (1 << 20)},
                         {"max_rss_mb", double(ru.ru_maxrss) / 1024.0}, {"gemm", gemm_library()}};
  std::ostringstream pa;
  pa << "--threads " << num_threads() << " --batch " << B << " --seq " << L << " --heads " << H << " --head-dim " << D
     << " --warmup " << warmup << " --repeats " << repeats << " --mode " << (backward ? "fwdbwd" : "fwd")
     << (causal ? " --causal" : "");
  nlohmann::json torch = run_peer(python, script, pa.str());
  line["torch_dense_ms"] = torch.is_null() ? nlohmann::json() : torch.at("median_ms");
  line["speedup_vs_torch_dense"] = torch.is_null() ? nlohmann::json() : nlohmann::json(torch.at("median_ms").get<double>() / t);
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace

int cmd_bench(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("usage: wensu bench CASE [options]\n\ncases:\n  layer       one pre-LN transformer layer against PyTorch CPU\n"
                "  attention   block-sparse attention at long sequence lengths\n\n"
                "'wensu bench CASE --help' describes each case.\n");
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  if (args[0] == "layer") return bench_layer(rest);
  if (args[0] == "attention") return bench_attention(rest);
  std::fprintf(stderr, "wensu bench: unknown case '%s' (available: layer, attention)\n", args[0].c_str());
  return 2;
}

}  // namespace wensu::app
