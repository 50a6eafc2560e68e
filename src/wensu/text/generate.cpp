#include "wensu/text/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"

namespace wensu::text {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Uniform in [0, 1) with 53 random bits: draw number `index` of the seed.
double uniform_draw(uint64_t seed, int64_t index) {
  const auto w = philox4x32(seed ^ 0x47454e4552415445ull, uint64_t(index));
  return double(((uint64_t(w[0]) << 32) | w[1]) >> 11) * 0x1.0p-53;
}

// Bytes at the end of `text` that could begin one of the stop strings (held back from the stream).
size_t stop_prefix_hold(const std::string& text, const std::vector<std::string>& stop) {
  size_t hold = 0;
  for (const auto& s : stop)
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  return hold;
}

}  // namespace

int64_t sample_next(std::vector<float>& logits, const std::vector<int64_t>& context, const SamplingOptions& o,
                    double draw) {
  const int64_t V = int64_t(logits.size());
  WENSU_CHECK(V > 0, "sample_next: empty logits");
  if (o.repetition_penalty != 1.0) {
    std::unordered_set<int64_t> seen(context.begin(), context.end());
    const float p = float(o.repetition_penalty);
    for (int64_t id : seen)
      if (id >= 0 && id < V) logits[size_t(id)] = logits[size_t(id)] > 0 ? logits[size_t(id)] / p : logits[size_t(id)] * p;
  }
  if (o.temperature <= 0) return int64_t(std::max_element(logits.begin(), logits.end()) - logits.begin());

  // Candidates by logit, highest first (ties: lower id first, so the order is deterministic).
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  auto higher = [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b); };
  const int64_t k = (o.top_k > 0 && o.top_k < V) ? o.top_k : V;
  if (k < V) {
    std::nth_element(idx.begin(), idx.begin() + k, idx.end(), higher);
    idx.resize(size_t(k));
  }
  std::sort(idx.begin(), idx.end(), higher);

  // Softmax of logits / T over the candidates, then the nucleus: the fewest whose mass >= top_p.
  const double inv_t = 1.0 / o.temperature, top = logits[size_t(idx[0])];
  std::vector<double> p(idx.size());
  double total = 0;
  for (size_t i = 0; i < idx.size(); ++i) total += p[i] = std::exp((logits[size_t(idx[i])] - top) * inv_t);
  size_t keep = idx.size();
  if (o.top_p < 1.0) {
    double mass = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      mass += p[i] / total;
      if (mass >= o.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += p[i];
  double target = draw * kept, acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (target < acc) return idx[i];
  }
  return idx[keep - 1];
}

GenerationSession::GenerationSession(models::Gpt& model, const Tokenizer& tok, SamplingOptions opt)
    : model_(model), tok_(tok), opt_(std::move(opt)) {
  WENSU_CHECK(tok.vocab_size() <= model.config().vocab_size, "the tokenizer has ", tok.vocab_size(),
              " tokens but the model only ", model.config().vocab_size, ": they do not belong together");
  for (const auto& stop : opt_.stop) WENSU_CHECK(!stop.empty(), "generate: a stop string must not be empty");
  if (opt_.use_cache) cache_ = model_.make_cache(1, model_.config().max_positions);
}

Tensor GenerationSession::logits_for(const std::vector<int64_t>& new_ids) {
  NoGradGuard ng;
  if (opt_.use_cache) {
    Tensor ids = Tensor::from_vector(new_ids, {1, int64_t(new_ids.size())});
    Tensor logits = model_.forward_cached(ids, cache_, 1);  // [1, 1, V]
    return logits.narrow(1, logits.size(1) - 1, 1).contiguous();
  }
  Tensor ids = Tensor::from_vector(context_, {1, int64_t(context_.size())});
  Tensor logits = model_.forward(ids);
  return logits.narrow(1, logits.size(1) - 1, 1).contiguous();
}

std::string GenerationSession::generate(const std::string& prompt, const std::function<void(const std::string&)>& on_text) {
  const int64_t context_limit = model_.config().max_positions;
  std::vector<int64_t> ids = tok_.encode(prompt);
  if (context_.empty() && ids.empty() && tok_.eos_id() >= 0) ids.push_back(tok_.eos_id());  // start of a document
  WENSU_CHECK(!ids.empty() || !context_.empty(), "generate: the prompt is empty and the tokenizer has no end-of-text",
              " token to start from; give a prompt");
  WENSU_CHECK(int64_t(context_.size() + ids.size()) < context_limit, "generate: the prompt has ", ids.size(),
              " tokens and the context ", context_.size(), " more; the model's context is ", context_limit,
              " tokens (shorten the prompt)");
  stats_ = GenerationStats{};
  stats_.prompt_tokens = int64_t(ids.size());
  last_tokens_.clear();
  // The model sees what the cache lacks: the last token of the previous generate() (drawn, never
  // run) and the new prompt.
  std::vector<int64_t> feed(context_.begin() + (opt_.use_cache ? cache_.length : int64_t(context_.size())),
                            context_.end());
  feed.insert(feed.end(), ids.begin(), ids.end());
  context_.insert(context_.end(), ids.begin(), ids.end());

  // The new text continues the prompt (a SentencePiece token keeps its space), unless there is none.
  Utf8Stream stream(tok_, /*at_start=*/prompt.empty() && context_.size() == ids.size());
  std::string out;
  size_t emitted = 0;
  auto emit_upto = [&](size_t n) {
    if (n > emitted && on_text) on_text(out.substr(emitted, n - emitted));
    emitted = std::max(emitted, n);
  };

  auto t0 = std::chrono::steady_clock::now();
  Tensor logits = logits_for(feed);
  stats_.prefill_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  std::vector<float> row;
  stats_.stop_reason = "max tokens";
  for (int64_t n = 0; n < opt_.max_tokens; ++n) {
    row = logits.to_vector<float>();
    row.resize(size_t(tok_.vocab_size()));  // a model's padded vocabulary rows have no text
    const int64_t next = sample_next(row, context_, opt_, uniform_draw(opt_.seed, draws_++));
    if (opt_.stop_at_eos && next == tok_.eos_id()) {
      stats_.stop_reason = "eos";
      break;
    }
    context_.push_back(next);
    last_tokens_.push_back(next);
    ++stats_.new_tokens;
    out += stream.push(next);
    size_t cut = std::string::npos;
    for (const auto& s : opt_.stop) cut = std::min(cut, out.find(s));
    if (cut != std::string::npos) {
      out.resize(cut);
      stats_.stop_reason = "stop string";
      break;
    }
    emit_upto(out.size() - stop_prefix_hold(out, opt_.stop));
    if (int64_t(context_.size()) >= context_limit) {
      stats_.stop_reason = "context full";
      break;
    }
    if (n + 1 < opt_.max_tokens) logits = logits_for({next});
  }
  if (stats_.stop_reason != "stop string") out += stream.flush();
  emit_upto(out.size());
  stats_.decode_s = seconds_since(t0);
  return out;
}

}  // namespace wensu::text
