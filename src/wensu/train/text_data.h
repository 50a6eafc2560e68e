// Causal-LM batches from plain-text corpora, the GPT recipe: every document is tokenised and
// followed by the end-of-text token, the documents are concatenated into one token stream, and
// a batch is rows of seq_len + 1 consecutive tokens taken at random offsets (inputs are the first
// seq_len, targets the last seq_len).
//
// Corpus files are UTF-8 text (.txt, or gzipped); a document is a run of lines ended by a blank
// line or the end of the file. Invalid UTF-8 is an error naming the file, line and byte.
//
// Deterministic with no hidden state: row r of batch b of stream s starts at an offset drawn
// from Philox keyed by (seed, s, b, r), so a stream's position is the number of batches it has
// served, and restoring it gives exactly the batches an uninterrupted run would have seen.
// Data parallelism as in mlm_data.h: `streams` streams each give batch_rows / streams rows of a
// step's global batch; a rank runs its share, and one process given all streams sees the same
// global batch.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "wensu/core/tensor.h"
#include "wensu/train/lm_trainer.h"

namespace wensu::text {
class Tokenizer;
}

namespace wensu::train {

// The documents of text files, in file order. Throws naming the file (and line and byte for bad
// UTF-8) when a file cannot be read.
std::vector<std::string> read_documents(const std::vector<std::string>& files);

struct TokenCorpus {
  std::vector<int32_t> ids;  // every document's tokens followed by end-of-text
  int64_t documents = 0;
};

// Tokenises the documents of `files` (io::expand_paths patterns). `what` names the corpus in
// errors; an empty corpus is an error, as is a tokenizer without an end-of-text token.
TokenCorpus tokenize_corpus(const std::vector<std::string>& files, const text::Tokenizer& tok,
                            const std::string& what, bool progress);

struct TextDataConfig {
  int64_t seq_len = 256;     // tokens per row (the model's context or less)
  int64_t batch_rows = 32;   // rows per micro-batch, all streams together
  uint64_t seed = 0;
  int64_t streams = 1;       // see above
};

// Streams [first, first + count) of cfg.streams over one corpus.
class TextShare {
 public:
  TextShare(const TokenCorpus& corpus, const TextDataConfig& cfg, int64_t first, int64_t count);
  LmBatch next();          // rows of this share, stream by stream
  Tensor cursors() const;  // int64 [streams, 1]: batches served, this share's rows (others 0)
  void restore(const Tensor& cursors);
  int64_t epoch() const;   // tokens served / corpus tokens, for the logs

 private:
  const TokenCorpus& corpus_;
  TextDataConfig cfg_;
  int64_t first_, count_, rows_per_stream_;
  int64_t batches_ = 0;  // served by each stream of this share (they advance together)
};

// Mean next-token cross-entropy of `forward` over the corpus in consecutive windows of seq_len
// (each token predicted once, with at least the context of its window), rows split over the
// ranks; {loss, windows}. max_windows <= 0: all.
// forward: int64 [B, L] -> logits [B, L, V], run without autograd.
std::pair<double, int64_t> causal_lm_loss(const std::function<Tensor(const Tensor&)>& forward,
                                          const TokenCorpus& corpus, int64_t seq_len, int64_t rows_per_batch,
                                          int64_t max_windows);

}  // namespace wensu::train
