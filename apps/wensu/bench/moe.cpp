// wensu bench moe: one mixture-of-experts layer (naive top-k gate, dropless, FFN experts with
// GELU) forward or forward+backward, the expert GEMMs alone, and the loop-over-experts PyTorch
// layer of scripts/bench/torch_moe.py as the peer, all in one run.
#include <sys/resource.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/cases.h"
#include "bench/common.h"
#include "commands.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/core/generator.h"
#include "wensu/core/parallel.h"
#include "wensu/nn/moe.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/moe.h"
#include "wensu/ops/reduce.h"

namespace po = boost::program_options;

namespace wensu::app::bench {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The expert GEMMs of one layer on the routing `r` of a real gate: two grouped matmuls forward
// (fc1, fc2) and their backward kernels (grad input and grad weights), called directly so that
// nothing but the GEMMs is timed. Returns the median ms of forward+backward (or forward).
double time_expert_gemms(const nn::MoE& moe, const ops::MoeRouting& r, int64_t D, int64_t H, bool backward,
                         int warmup, int repeats) {
  const int64_t N = r.rows();
  Generator gen(5);
  Tensor xs = Tensor::randn({N, D}, gen), h = Tensor::randn({N, H}, gen), y = Tensor::empty({N, D});
  Tensor gy = Tensor::randn({N, D}, gen), gh = Tensor::empty({N, H}), gx = Tensor::empty({N, D});
  std::vector<Tensor> w1, b1, w2, b2, gw1, gb1, gw2, gb2;
  for (auto& e : moe.experts) {
    auto& f = dynamic_cast<nn::FeedForward&>(*e);
    w1.push_back(f.fc1->weight), b1.push_back(f.fc1->bias), w2.push_back(f.fc2->weight), b2.push_back(f.fc2->bias);
    gw1.push_back(Tensor::empty(f.fc1->weight.shape())), gb1.push_back(Tensor::empty(f.fc1->bias.shape()));
    gw2.push_back(Tensor::empty(f.fc2->weight.shape())), gb2.push_back(Tensor::empty(f.fc2->bias.shape()));
  }
  std::vector<double> times;
  for (int i = 0; i < warmup + repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    ops::cpu::grouped_matmul_forward(xs, w1, r.offsets, b1, h);
    ops::cpu::grouped_matmul_forward(h, w2, r.offsets, b2, y);
    if (backward) {
      ops::cpu::grouped_matmul_backward(gy, h, w2, r.offsets, gh, gw2, gb2);
      ops::cpu::grouped_matmul_backward(gh, xs, w1, r.offsets, gx, gw1, gb1);
    }
    if (i >= warmup) times.push_back(ms_since(t0));
  }
  return median(times);
}

}  // namespace

int bench_moe(const Args& args) {
  int64_t E = 16, K = 2, D = 512, H = 2048, T = 8192;
  bool backward = false;
  int threads = 0, warmup = 1, repeats = 3;
  std::string python = default_python(), script = "scripts/bench/torch_moe.py";
  po::options_description desc(
      "usage: wensu bench moe [options]\n\n"
      "One mixture-of-experts layer, float32: naive top-k gate (softmax over the k chosen\n"
      "logits), dropless, FFN experts (Linear, GELU, Linear, with biases). Prints one JSON line:\n"
      "median time and tokens/s of the layer, the GFLOP/s of its expert GEMMs timed alone with\n"
      "the dense sgemm rate of the same run (\"expert_gemm_fraction_of_sgemm\"), and the\n"
      "loop-over-experts PyTorch layer (scripts/bench/torch_moe.py) on the same shape.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("experts", po::value(&E)->default_value(E), "experts")
      ("top-k", po::value(&K)->default_value(K), "experts per token")
      ("d-model", po::value(&D)->default_value(D), "model width")
      ("hidden", po::value(&H)->default_value(H), "expert hidden size")
      ("tokens", po::value(&T)->default_value(T), "tokens per batch")
      ("backward", po::bool_switch(&backward), "time forward+backward")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed iterations")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed iterations")
      ("torch-python", po::value(&python), "Python with torch for the peer (default: $WENSU_TORCH_PYTHON or .venv/bin/python; empty = no peer)")
      ("torch-script", po::value(&script)->default_value(script), "the peer script");
  if (!parse_options(desc, args)) return 0;
  WENSU_CHECK(E >= 1 && K >= 1 && K <= E && D > 0 && H > 0 && T > 0,
              "bench moe: need experts >= 1, 1 <= top-k <= experts, and positive sizes");
  set_num_threads(threads);

  nn::FeedForwardConfig cfg;
  cfg.kind = "moe";
  cfg.d_ff = H;
  cfg.activation = "gelu";
  cfg.moe.num_experts = E;
  cfg.moe.top_k = K;
  cfg.moe.gate = "naive";
  Generator gen(0);
  nn::MoE moe(D, cfg, /*bias=*/true, gen);
  Tensor x = Tensor::randn({T, D}, gen), w = Tensor::randn({T, D}, gen);
  if (backward) x.set_requires_grad(true);
  std::vector<double> times;
  for (int i = 0; i < warmup + repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (backward) {
      moe.zero_grad();
      x.zero_grad();
      ops::sum(ops::mul(moe.forward(x), w)).backward();
    } else {
      NoGradGuard ng;
      moe.forward(x);
    }
    if (i >= warmup) times.push_back(ms_since(t0));
  }
  const double t = median(times);

  ops::MoeRouting routing;
  {
    NoGradGuard ng;
    routing = ops::moe_routing(moe.gate->forward(x, {}).expert_index, E, 0);
  }
  const double gemm_ms = time_expert_gemms(moe, routing, D, H, backward, warmup, repeats);
  const double gemm_flops = 4.0 * double(routing.rows()) * double(D) * double(H) * (backward ? 3.0 : 1.0);
  const double sgemm = sgemm_gflops();
  int64_t most = 0;
  for (int64_t c : routing.counts) most = std::max(most, c);

  nlohmann::json line = {{"case", "moe"}, {"experts", E}, {"top_k", K}, {"d_model", D}, {"hidden", H},
                         {"tokens", T}, {"backward", backward}, {"threads", num_threads()},
                         {"ms", t}, {"min_ms", *std::min_element(times.begin(), times.end())},
                         {"tokens_per_s", double(T) / (t * 1e-3)},
                         {"layer_gflops", gemm_flops / (t * 1e6)},
                         {"expert_gemm_ms", gemm_ms}, {"expert_gemm_gflops", gemm_flops / (gemm_ms * 1e6)},
                         {"sgemm_gflops", sgemm}, {"expert_gemm_fraction_of_sgemm", gemm_flops / (gemm_ms * 1e6) / sgemm},
                         {"largest_expert_rows", most}, {"gemm", gemm_library()}};
  std::ostringstream pa;
  pa << "--threads " << num_threads() << " --experts " << E << " --top-k " << K << " --d-model " << D << " --hidden "
     << H << " --tokens " << T << " --warmup " << warmup << " --repeats " << repeats << " --mode "
     << (backward ? "fwdbwd" : "fwd");
  nlohmann::json torch = run_peer(python, script, pa.str());
  line["torch_loop_ms"] = torch.is_null() ? nlohmann::json() : torch.at("median_ms");
  line["speedup_vs_torch_loop"] =
      torch.is_null() ? nlohmann::json() : nlohmann::json(torch.at("median_ms").get<double>() / t);
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace wensu::app::bench
