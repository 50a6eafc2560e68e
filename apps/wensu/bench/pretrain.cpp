// wensu bench pretrain: training steps of an ESM-2-shaped model (masked LM, AdamW) on a random
// token batch, against fair-esm's ESM-2 of the same shape trained by PyTorch in the same run
// (scripts/bench/torch_esm.py).
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/cases.h"
#include "bench/common.h"
#include "commands.h"
#include "wensu/core/generator.h"
#include "wensu/core/parallel.h"
#include "wensu/models/esm2.h"
#include "wensu/ops/loss.h"
#include "wensu/optim/adamw.h"

namespace po = boost::program_options;

namespace wensu::app::bench {

int bench_pretrain(const Args& args) {
  models::Esm2Config cfg;  // ESM-2 8M: 6 layers, 320 wide, 20 heads
  int64_t batch = 16, seq = 256;
  int threads = 0, warmup = 2, repeats = 5;
  std::string python = default_python(), script = "scripts/bench/torch_esm.py";
  po::options_description desc(
      "usage: wensu bench pretrain [options]\n\n"
      "Masked-LM training steps (forward, cross-entropy on 15% masked residues, backward, AdamW)\n"
      "of an ESM-2-shaped model on one random batch, float32. Prints one JSON line: median step\n"
      "time, training tokens/s, GFLOP/s (6 x parameters x tokens plus attention) against ~160\n"
      "GFLOP/s per core, and fair-esm's ESM-2 of the same shape in PyTorch in the same run.\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("layers", po::value(&cfg.num_layers)->default_value(cfg.num_layers), "layers")
      ("dim", po::value(&cfg.embed_dim)->default_value(cfg.embed_dim), "model width")
      ("heads", po::value(&cfg.attention_heads)->default_value(cfg.attention_heads), "attention heads")
      ("batch", po::value(&batch)->default_value(batch), "sequences per step")
      ("seq", po::value(&seq)->default_value(seq), "tokens per sequence")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed steps")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed steps")
      ("torch-python", po::value(&python), "Python with torch and fair-esm for the peer (default: $WENSU_TORCH_PYTHON or .venv/bin/python; empty = no peer)")
      ("torch-script", po::value(&script)->default_value(script), "the peer script");
  if (!parse_options(desc, args)) return 0;
  set_num_threads(threads);
  cfg.validate();
  Generator gen(0);
  models::Esm2 model(cfg, gen);
  model.train();
  optim::AdamW adamw(model.named_parameters(), {});
  // Random residues between <cls> and <eos>; 15% of them masked (as the peer does).
  Generator dg(1);
  const auto r = Tensor::rand({batch, seq}, dg, DType::f64).to_vector<double>();
  const auto a = Tensor::rand({batch, seq}, dg, DType::f64).to_vector<double>();
  std::vector<int64_t> tokens(size_t(batch * seq)), targets(size_t(batch * seq), -100);
  for (int64_t i = 0; i < batch * seq; ++i) {
    const int64_t c = i % seq;
    tokens[size_t(i)] = c == 0 ? 0 : c == seq - 1 ? 2 : 4 + int64_t(a[size_t(i)] * 20);
    if (c > 0 && c < seq - 1 && r[size_t(i)] < 0.15) {
      targets[size_t(i)] = tokens[size_t(i)];
      tokens[size_t(i)] = 32;  // <mask>
    }
  }
  Tensor tok = Tensor::from_vector(tokens, {batch, seq}), tgt = Tensor::from_vector(targets, {batch, seq});
  std::vector<double> times;
  for (int i = 0; i < warmup + repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    adamw.zero_grad();
    ops::cross_entropy(model.forward(tok), tgt).backward();
    adamw.step(1e-4);
    if (i >= warmup) times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double t = median(times);
  // Training FLOPs: 6 per parameter and token for the matrices (forward 2, backward 4), plus
  // attention's two products per layer (QK^T and PV: 4 * L * D per token forward, x3).
  int64_t matrix_params = 0;
  for (auto& [name, p] : model.named_parameters())
    if (p.dim() == 2 && name.find("embed_tokens") == std::string::npos) matrix_params += p.numel();
  const double tokens_step = double(batch * seq);
  const double flops = 6.0 * double(matrix_params) * tokens_step +
                       3.0 * 4.0 * double(cfg.num_layers) * tokens_step * double(seq) * double(cfg.embed_dim) +
                       6.0 * tokens_step * double(cfg.embed_dim) * 33.0;  // the tied vocabulary projection
  nlohmann::json line = {{"case", "pretrain"}, {"layers", cfg.num_layers}, {"dim", cfg.embed_dim},
                         {"heads", cfg.attention_heads}, {"batch", batch}, {"seq", seq}, {"threads", num_threads()},
                         {"ms", t}, {"min_ms", *std::min_element(times.begin(), times.end())},
                         {"tokens_per_s", tokens_step / (t * 1e-3)}, {"gflops", flops / (t * 1e6)},
                         {"peak_fraction", flops / (t * 1e6) / (kPeakGflopsPerCore * num_threads())},
                         {"gemm", gemm_library()}};
  std::ostringstream pa;
  pa << "--threads " << num_threads() << " --layers " << cfg.num_layers << " --dim " << cfg.embed_dim << " --heads "
     << cfg.attention_heads << " --batch " << batch << " --seq " << seq << " --warmup " << warmup << " --repeats "
     << repeats;
  nlohmann::json peer = run_peer(python, script, pa.str());
  line["fair_esm_ms"] = peer.is_null() ? nlohmann::json() : peer.at("median_ms");
  line["fair_esm_tokens_per_s"] =
      peer.is_null() ? nlohmann::json() : nlohmann::json(tokens_step / (peer.at("median_ms").get<double>() * 1e-3));
  line["speedup_vs_fair_esm"] = peer.is_null() ? nlohmann::json() : nlohmann::json(peer.at("median_ms").get<double>() / t);
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace wensu::app::bench
