// Text generation with a GPT-style model (`wensu text generate`): the prompt is run once through
// the model (prefill), then one token at a time with the KV cache, each token drawn from the
// next-token distribution as llama.cpp and HF transformers shape it:
//
//   logits -> repetition penalty (CTRL: a seen token's logit divided by p when positive, times p
//   when negative) -> temperature -> top-k -> top-p (nucleus) -> a draw.
//
// Temperature 0 is greedy (argmax). Draws come from Philox keyed by (seed, token index), so a
// seed gives the same text on every run and machine. Text is streamed as soon as it is complete
// UTF-8 and cannot be the start of a stop string.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "wensu/models/gpt.h"
#include "wensu/text/tokenizer.h"

namespace wensu::text {

struct SamplingOptions {
  double temperature = 0.8;          // 0: greedy
  int64_t top_k = 40;                // 0: off
  double top_p = 0.95;               // 1: off
  double repetition_penalty = 1.0;   // 1: off; applied to every token of the context
  int64_t max_tokens = 128;          // new tokens at most
  std::vector<std::string> stop;     // stop when the generated text contains one (it is not printed)
  bool stop_at_eos = true;           // stop at the tokenizer's end-of-text token
  uint64_t seed = 0;
  bool use_cache = true;             // false: recompute the whole context for every token (reference, benchmarks)
};

// The next token from a row of logits [V] (modified in place): the pipeline above. `context`:
// the token ids the repetition penalty looks at; `draw`: uniform in [0, 1).
int64_t sample_next(std::vector<float>& logits, const std::vector<int64_t>& context, const SamplingOptions& o,
                    double draw);

struct GenerationStats {
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_s = 0, decode_s = 0;
  double tokens_per_s() const { return decode_s > 0 ? double(new_tokens) / decode_s : 0.0; }
  std::string stop_reason;  // "eos", "stop string", "max tokens" or "context full"
};

// A conversation with a model: each generate() continues the context of the previous ones (the
// KV cache is kept), which is what --interactive uses.
class GenerationSession {
 public:
  GenerationSession(models::Gpt& model, const Tokenizer& tok, SamplingOptions opt);
  // Appends `prompt` to the context and generates; on_text receives the new text piece by piece.
  // Returns the new text (without a stop string that ended it).
  std::string generate(const std::string& prompt, const std::function<void(const std::string&)>& on_text = {});
  const GenerationStats& stats() const { return stats_; }
  const std::vector<int64_t>& context() const { return context_; }
  const std::vector<int64_t>& last_tokens() const { return last_tokens_; }  // of the last generate()

 private:
  Tensor logits_for(const std::vector<int64_t>& new_ids);  // [1, 1, V] at the last new position

  models::Gpt& model_;
  const Tokenizer& tok_;
  SamplingOptions opt_;
  models::Gpt::KvCache cache_;
  std::vector<int64_t> context_, last_tokens_;
  int64_t draws_ = 0;  // tokens drawn so far in this session (the Philox counter)
  GenerationStats stats_;
};

}  // namespace wensu::text
