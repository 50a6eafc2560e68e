// wensu bench attention: block-sparse attention at long sequence lengths, with PyTorch's dense
// SDPA as the peer.
#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/common.h"
#include "commands.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/core/allocator.h"
#include "wensu/core/device.h"
#include "wensu/core/generator.h"
#include "wensu/core/parallel.h"
#include "wensu/ops/block_layout.h"
#include "wensu/ops/block_sparse_attention.h"
#include "wensu/ops/cpu/attention_tiles.h"

namespace po = boost::program_options;

namespace wensu::app::bench {

int bench_attention(const Args& args) {
  int64_t L = 4096, B = 1, H = 8, D = 64;
  ops::BlockLayoutConfig lc;
  lc.kind = "bigbird";
  lc.global_blocks = 2;
  lc.random_blocks = 3;
  bool backward = false, causal = false;
  std::string schedule = "auto", device = "cpu", dtype = "f32", gemm = "auto";
  int threads = 0, warmup = 1, repeats = 3;
  std::string python = default_python(), script = "scripts/bench/torch_attention.py";
  po::options_description desc(
      "usage: wensu bench attention [options]\n\n"
      "Block-sparse attention (float32) on one sequence batch. Prints one JSON line: median\n"
      "time, peak memory (wensu tensors and the process's max RSS) and GFLOP/s counted over the\n"
      "computed blocks only (forward: 4*block^2*D per block and head; forward+backward, which\n"
      "recomputes the scores: 3.5x that), with the dense sgemm rate measured in the same run\n"
      "and their ratio (\"fraction_of_sgemm\").\n\noptions");
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
      ("schedule", po::value(&schedule)->default_value(schedule), "CPU backward schedule: auto, per-head, split")
      ("gemm", po::value(&gemm)->default_value(gemm), "CPU tile GEMMs: auto (AVX-512 tiles where the CPU has them), tiles, or onednn")
      ("device", po::value(&device)->default_value(device), "cpu or cuda (GPU builds; the peer then runs on the GPU too)")
      ("dtype", po::value(&dtype)->default_value(dtype), "f32, or bf16 (cuda only: bfloat16 with float32 accumulation)")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed iterations")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed iterations")
      ("torch-python", po::value(&python), "Python with torch: also time PyTorch's dense SDPA on the same shape (default: $WENSU_TORCH_PYTHON or .venv/bin/python; empty = no peer)")
      ("torch-script", po::value(&script)->default_value(script), "the peer script");
  if (!parse_options(desc, args)) return 0;
  set_num_threads(threads);
  WENSU_CHECK(schedule == "auto" || schedule == "per-head" || schedule == "split",
              "--schedule: expected auto, per-head or split, got '", schedule, "'");
  ops::cpu::set_backward_schedule(schedule == "per-head" ? ops::cpu::BackwardSchedule::kPerHead
                                  : schedule == "split"  ? ops::cpu::BackwardSchedule::kSplit
                                                         : ops::cpu::BackwardSchedule::kAuto);
  WENSU_CHECK(gemm == "auto" || gemm == "tiles" || gemm == "onednn", "--gemm: expected auto, tiles or onednn, got '",
              gemm, "'");
  ops::cpu::tiles::set_enabled(gemm != "onednn");
  WENSU_CHECK(gemm != "tiles" || ops::cpu::tiles::enabled(), "--gemm tiles: this CPU has no AVX-512F; use --gemm onednn");
  WENSU_CHECK(device == "cpu" || device == "cuda", "--device: expected cpu or cuda, got '", device, "'");
  WENSU_CHECK(device != "cuda" || cuda_available(), "--device cuda: no usable GPU (or a build without -DWENSU_CUDA=ON)");
  WENSU_CHECK(dtype == "f32" || (dtype == "bf16" && device == "cuda"), "--dtype: f32, or bf16 with --device cuda; got '",
              dtype, "'");
  const Device dev = device == "cuda" ? Device::cuda : Device::cpu;
  const DType dt = dtype == "bf16" ? DType::bf16 : DType::f32;
  lc.causal = causal;
  auto layout = ops::make_block_layout(lc, L, L);
  Generator gen(0);
  auto input = [&] { return Tensor::randn({B, L, H, D}, gen).to(dt).to(dev); };  // [B, L, H, D]
  Tensor q = input(), k = input(), v = input(), w = input();
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
  const double sgemm = dev == Device::cpu ? sgemm_gflops() : 0.0;  // the CPU's rate; a GPU run reports TFLOP/s
  const double fwd_flops = double(layout->nnz()) * B * H * 4.0 * double(lc.block * lc.block) * D;
  const double flops = fwd_flops * (backward ? 3.5 : 1.0);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json line = {{"case", "attention"}, {"seq", L}, {"batch", B}, {"heads", H}, {"head_dim", D},
                         {"layout", lc.kind}, {"block", lc.block}, {"causal", causal}, {"backward", backward},
                         {"threads", num_threads()}, {"nnz_blocks", layout->nnz()},
                         {"density", double(layout->nnz()) / double(layout->n_row_blocks * layout->n_col_blocks)},
                         {"ms", t}, {"min_ms", *std::min_element(times.begin(), times.end())},
                         {"gflops", flops / (t * 1e6)}, {"device", device}, {"dtype", dtype},
                         {"sgemm_gflops", dev == Device::cpu ? nlohmann::json(sgemm) : nlohmann::json()},
                         {"fraction_of_sgemm", dev == Device::cpu ? nlohmann::json(flops / (t * 1e6) / sgemm) : nlohmann::json()},
                         {"schedule", schedule},
                         {"peak_tensor_mb", double(cpu_allocator_stats().peak_bytes) / (1 << 20)},
                         {"max_rss_mb", double(ru.ru_maxrss) / 1024.0}, {"gemm", dev == Device::cpu && ops::cpu::tiles::enabled() && D % 16 == 0 ? "AVX-512 tiles" : gemm_library()}};
  std::ostringstream pa;
  pa << "--threads " << num_threads() << " --batch " << B << " --seq " << L << " --heads " << H << " --head-dim " << D
     << " --warmup " << warmup << " --repeats " << repeats << " --mode " << (backward ? "fwdbwd" : "fwd")
     << (causal ? " --causal" : "") << " --device " << device << " --dtype " << dtype;
  nlohmann::json torch = run_peer(python, script, pa.str());
  line["torch_dense_ms"] = torch.is_null() ? nlohmann::json() : torch.at("median_ms");
  line["speedup_vs_torch_dense"] = torch.is_null() ? nlohmann::json() : nlohmann::json(torch.at("median_ms").get<double>() / t);
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace wensu::app::bench
