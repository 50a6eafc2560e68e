// wensu bench generate: greedy token-by-token generation with the KV cache, float32 and bfloat16
// weights, against Hugging Face transformers generating with the same model (exported to a
// GPT-2 folder) in the same run (scripts/bench/torch_generate.py); and the KV cache against
// recomputing the whole context for every token.
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "bench/cases.h"
#include "bench/common.h"
#include "commands.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/core/generator.h"
#include "wensu/core/parallel.h"
#include "wensu/models/gpt2_convert.h"
#include "wensu/text/text_model.h"

namespace po = boost::program_options;

namespace wensu::app::bench {
namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int64_t argmax_last(const Tensor& logits) {  // [1, T, V] -> argmax of the last row
  const auto v = logits.narrow(1, logits.size(1) - 1, 1).contiguous().to_vector<float>();
  return int64_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// Median ms per generated token of greedy decoding with the cache (prefill not counted).
double cached_ms_per_token(models::Gpt& m, const std::vector<int64_t>& prompt, int64_t n, int repeats, double* prefill_ms) {
  std::vector<double> per_token, prefill;
  auto cache = m.make_cache(1, int64_t(prompt.size()) + n);
  for (int r = 0; r < repeats + 1; ++r) {  // the first run warms up
    cache.clear();
    auto t0 = std::chrono::steady_clock::now();
    int64_t next = argmax_last(m.forward_cached(Tensor::from_vector(prompt, {1, int64_t(prompt.size())}), cache, 1));
    const double p = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    for (int64_t i = 1; i < n; ++i) next = argmax_last(m.forward_cached(Tensor::from_vector(std::vector<int64_t>{next}, {1, 1}), cache, 1));
    if (r > 0) per_token.push_back(ms_since(t0) / double(n - 1)), prefill.push_back(p);
  }
  *prefill_ms = median(prefill);
  return median(per_token);
}

// Median ms per token when every token recomputes the whole context (no cache).
double uncached_ms_per_token(models::Gpt& m, std::vector<int64_t> context, int64_t n, int repeats) {
  std::vector<double> times;
  const size_t start = context.size();
  for (int r = 0; r < repeats + 1; ++r) {
    context.resize(start);
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; ++i)
      context.push_back(argmax_last(m.forward(Tensor::from_vector(context, {1, int64_t(context.size())}))));
    if (r > 0) times.push_back(ms_since(t0) / double(n));
  }
  return median(times);
}

std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  const auto u = Tensor::rand({n}, g, DType::f64).to_vector<double>();
  std::vector<int64_t> ids;
  for (double x : u) ids.push_back(std::min<int64_t>(int64_t(x * double(vocab)), vocab - 1));
  return ids;
}

}  // namespace

int bench_generate(const Args& args) {
  std::string model_path = "gpt2-124m", python = default_python(), script = "scripts/bench/torch_generate.py";
  int64_t prompt_tokens = 32, new_tokens = 128, context = 512, uncached_tokens = 16;
  int threads = 0, repeats = 3;
  po::options_description desc(
      "usage: wensu bench generate [options]\n\n"
      "Greedy generation, one token at a time with the KV cache, with float32 and bfloat16 weights;\n"
      "PyTorch/transformers generating with the same model (exported to a GPT-2 folder) in float32\n"
      "and bfloat16 in the same run; and, at --context tokens, the cache against recomputing the\n"
      "context for every token. Prints a table and one JSON line (medians).\n\noptions");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model_path)->default_value(model_path), "gpt2-124m (GPT-2 small's shape, random weights), bundled (data/models/wensu-text), or a text model checkpoint")
      ("prompt-tokens", po::value(&prompt_tokens)->default_value(prompt_tokens), "prompt length")
      ("new-tokens", po::value(&new_tokens)->default_value(new_tokens), "tokens generated per run")
      ("context", po::value(&context)->default_value(context), "context length of the cache / no-cache comparison (capped by the model's)")
      ("uncached-tokens", po::value(&uncached_tokens)->default_value(uncached_tokens), "tokens timed without the cache")
      ("threads", po::value(&threads)->default_value(threads), "CPU threads (0 = all cores)")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed runs (median)")
      ("torch-python", po::value(&python), "Python with torch and transformers for the peer (default: $WENSU_TORCH_PYTHON or .venv/bin/python; empty = no peer)")
      ("torch-script", po::value(&script)->default_value(script), "the peer script");
  if (!parse_options(desc, args)) return 0;
  set_num_threads(threads);
  // Decode time is measured from the second token on (the first comes from the prefill).
  WENSU_CHECK(new_tokens >= 2 && uncached_tokens >= 2, "bench generate: --new-tokens and --uncached-tokens must be >= 2");
  NoGradGuard ng;
  std::shared_ptr<models::Gpt> model;
  if (model_path == "gpt2-124m") {
    Generator gen(0);
    model = std::make_shared<models::Gpt>(models::GptConfig{}, gen);  // the defaults are GPT-2 small
  } else {
    model = text::load_text_model(model_path == "bundled" ? text::default_text_model_path() : model_path).model;
  }
  model->eval();
  const auto& cfg = model->config();
  WENSU_CHECK(prompt_tokens + new_tokens <= cfg.max_positions, "bench generate: --prompt-tokens + --new-tokens exceed",
              " the model's context ", cfg.max_positions);
  context = std::min(context, cfg.max_positions - std::max(uncached_tokens, int64_t(2)));
  const auto prompt = random_ids(prompt_tokens, cfg.vocab_size, 1);

  // The peer's copy of the model, before the weights turn bf16.
  const std::string dir = (std::filesystem::temp_directory_path() / ("wensu-bench-gpt2-" + std::to_string(getpid()))).string();
  nlohmann::json peer_f32, peer_bf16;
  if (!python.empty()) {
    models::save_gpt2_hf(*model, dir);
    std::ostringstream ids;
    for (size_t i = 0; i < prompt.size(); ++i) ids << (i ? "," : "") << prompt[i];
    std::ostringstream pa;
    pa << "--threads " << num_threads() << " --repeats " << repeats << " --warmup 1 --model-dir '" << dir
       << "' --prompt-ids " << ids.str() << " --new-tokens " << new_tokens;
    peer_f32 = run_peer(python, script, pa.str() + " --dtype fp32");
    peer_bf16 = run_peer(python, script, pa.str() + " --dtype bf16");
    std::filesystem::remove_all(dir);
  }

  double prefill_f32 = 0, prefill_bf16 = 0;
  const double f32 = cached_ms_per_token(*model, prompt, new_tokens, repeats, &prefill_f32);
  const auto long_prompt = random_ids(context, cfg.vocab_size, 2);
  double prefill_long = 0;
  const double cached_long = cached_ms_per_token(*model, long_prompt, uncached_tokens, repeats, &prefill_long);
  const double uncached_long = uncached_ms_per_token(*model, long_prompt, uncached_tokens, repeats);
  model->convert_matrices_(DType::bf16);
  const double bf16 = cached_ms_per_token(*model, prompt, new_tokens, repeats, &prefill_bf16);

  auto peer_ms = [](const nlohmann::json& p) { return p.is_null() ? 0.0 : p.at("median_ms_per_token").get<double>(); };
  const double best_peer = std::min(peer_ms(peer_f32) > 0 ? peer_ms(peer_f32) : 1e30, peer_ms(peer_bf16) > 0 ? peer_ms(peer_bf16) : 1e30);
  nlohmann::json line = {{"case", "generate"}, {"model", model_path}, {"parameters", model->num_parameters()},
                         {"threads", num_threads()}, {"prompt_tokens", prompt_tokens}, {"new_tokens", new_tokens},
                         {"wensu_f32_ms_per_token", f32}, {"wensu_bf16_ms_per_token", bf16},
                         {"wensu_f32_tokens_per_s", 1e3 / f32}, {"wensu_bf16_tokens_per_s", 1e3 / bf16},
                         {"wensu_prefill_ms", prefill_f32},
                         {"torch_fp32_ms_per_token", peer_f32.is_null() ? nlohmann::json() : nlohmann::json(peer_ms(peer_f32))},
                         {"torch_bf16_ms_per_token", peer_bf16.is_null() ? nlohmann::json() : nlohmann::json(peer_ms(peer_bf16))},
                         {"speedup_bf16_vs_best_torch", best_peer < 1e30 ? nlohmann::json(best_peer / bf16) : nlohmann::json()},
                         {"speedup_f32_vs_torch_fp32", peer_f32.is_null() ? nlohmann::json() : nlohmann::json(peer_ms(peer_f32) / f32)},
                         {"context", context}, {"cached_ms_per_token_at_context", cached_long},
                         {"uncached_ms_per_token_at_context", uncached_long},
                         {"cache_speedup", uncached_long / cached_long}};
  std::printf("%-34s %12s %10s\n", "generate (greedy, decode only)", "ms/token", "tokens/s");
  auto row = [](const char* what, double ms) {
    if (ms > 0) std::printf("%-34s %12.2f %10.1f\n", what, ms, 1e3 / ms);
  };
  row("wensu, float32 weights", f32);
  row("wensu, bfloat16 weights", bf16);
  row("transformers, float32", peer_ms(peer_f32));
  row("transformers, bfloat16", peer_ms(peer_bf16));
  std::printf("at %lld tokens of context, float32: cache %.2f ms/token, no cache %.2f ms/token (%.1fx)\n",
              (long long)context, cached_long, uncached_long, uncached_long / cached_long);
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace wensu::app::bench
