#include "wensu/train/text_data.h"

#include <zlib.h>

#include <algorithm>
#include <memory>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/dist/comm.h"
#include "wensu/io/fasta.h"
#include "wensu/ops/loss.h"
#include "wensu/text/tokenizer.h"
#include "wensu/train/progress.h"

namespace wensu::train {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (overlong
// forms, surrogates and code points above U+10FFFF included).
size_t utf8_char_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return n;
}

bool blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};

// Stream id and counter of row r of batch b: Philox keyed by (seed, stream), counter (b, r).
int64_t row_offset(uint64_t seed, int64_t stream, int64_t batch, int64_t row, int64_t range) {
  const auto w = philox4x32(seed ^ (0x5445585444415441ull + uint64_t(stream) * 0x9e3779b97f4a7c15ull),
                            (uint64_t(batch) << 24) | uint64_t(row));
  const uint64_t r = (uint64_t(w[0]) << 32) | w[1];
  return int64_t(r % uint64_t(range));
}

// Rows starting at the given token offsets: tokens ids[o, o + L), targets ids[o + 1, o + L].
LmBatch rows_at(const TokenCorpus& c, const std::vector<int64_t>& offsets, int64_t L) {
  const int64_t rows = int64_t(offsets.size());
  LmBatch b;
  b.tokens = Tensor::empty({rows, L}, DType::i64);
  b.targets = Tensor::empty({rows, L}, DType::i64);
  int64_t* t = b.tokens.data<int64_t>();
  int64_t* y = b.targets.data<int64_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < L; ++j) {
      t[r * L + j] = c.ids[size_t(offsets[size_t(r)] + j)];
      y[r * L + j] = c.ids[size_t(offsets[size_t(r)] + j + 1)];
    }
  b.targets_count = b.real_tokens = rows * L;
  return b;
}

}  // namespace

std::vector<std::string> read_documents(const std::vector<std::string>& files) {
  std::vector<std::string> docs;
  for (const auto& path : files) {
    std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));  // reads plain files too
    WENSU_CHECK(f, "cannot open text file ", path, " (check the path given to --data / --val-data)");
    std::string line, doc;
    int64_t line_no = 0;
    auto end_doc = [&]() {
      if (!doc.empty()) docs.push_back(std::move(doc));
      doc.clear();
    };
    auto take_line = [&]() {
      ++line_no;
      for (size_t i = 0; i < line.size();) {
        const size_t n = utf8_char_length(line, i);
        WENSU_CHECK(n > 0, path, ": line ", line_no, ", byte ", i + 1, ": invalid UTF-8; corpus files must be UTF-8 text",
                    " (convert them, e.g. with iconv)");
        i += n;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (blank(line)) {
        end_doc();
      } else {
        if (!doc.empty()) doc += '\n';
        doc += line;
      }
      line.clear();
    };
    char buf[1 << 16];
    for (;;) {
      const int n = gzread(f.get(), buf, sizeof buf);
      if (n < 0) {
        int err = 0;
        const char* msg = gzerror(f.get(), &err);
        WENSU_CHECK(false, path, ": read error after line ", line_no, ": ", msg, " (a truncated or corrupt .gz file?)");
      }
      if (n == 0) break;
      for (int i = 0; i < n; ++i) {
        if (buf[i] == '\n') take_line();
        else line += buf[i];
      }
    }
    if (!line.empty()) take_line();
    end_doc();
  }
  return docs;
}

TokenCorpus tokenize_corpus(const std::vector<std::string>& patterns, const text::Tokenizer& tok,
                            const std::string& what, bool progress) {
  const auto files = io::expand_paths(patterns);
  WENSU_CHECK(!files.empty(), what, ": no files given");
  WENSU_CHECK(tok.eos_id() >= 0, "the ", tok.kind(), " tokenizer has no end-of-text token; text training needs one",
              " to separate documents");
  const auto docs = read_documents(files);
  WENSU_CHECK(!docs.empty(), what, " (", files.front(), files.size() > 1 ? ", ..." : "",
              ") has no text: give a corpus with at least one non-blank line");
  TokenCorpus c;
  c.documents = int64_t(docs.size());
  ProgressBar bar("tokenize " + what, c.documents, "doc");
  for (size_t d = 0; d < docs.size(); ++d) {
    for (int64_t id : tok.encode(docs[d])) c.ids.push_back(int32_t(id));
    c.ids.push_back(int32_t(tok.eos_id()));
    if (progress && (d % 256 == 0)) bar.update(int64_t(d) + 1);
  }
  if (progress) bar.finish(std::to_string(c.ids.size()) + " tokens");
  return c;
}

TextShare::TextShare(const TokenCorpus& corpus, const TextDataConfig& cfg, int64_t first, int64_t count)
    : corpus_(corpus), cfg_(cfg), first_(first), count_(count) {
  WENSU_CHECK(cfg.streams >= 1 && first >= 0 && count >= 1 && first + count <= cfg.streams, "text data: streams [",
              first, ", ", first + count, ") of ", cfg.streams);
  WENSU_CHECK(cfg.batch_rows % cfg.streams == 0, "text data: ", cfg.batch_rows, " rows per batch do not divide over ",
              cfg.streams, " data streams; use a batch size that is a multiple of the number of processes");
  WENSU_CHECK(int64_t(corpus.ids.size()) > cfg.seq_len + 1, "the training corpus has ", corpus.ids.size(),
              " tokens, too few for rows of ", cfg.seq_len, " + 1: lower --seq-len or give more text");
  rows_per_stream_ = cfg.batch_rows / cfg.streams;
}

LmBatch TextShare::next() {
  const int64_t range = int64_t(corpus_.ids.size()) - cfg_.seq_len;  // row starts 0 .. N - L - 1
  std::vector<int64_t> offsets;
  for (int64_t s = first_; s < first_ + count_; ++s)
    for (int64_t r = 0; r < rows_per_stream_; ++r) offsets.push_back(row_offset(cfg_.seed, s, batches_, r, range));
  ++batches_;
  return rows_at(corpus_, offsets, cfg_.seq_len);
}

Tensor TextShare::cursors() const {
  Tensor c = Tensor::zeros({cfg_.streams, 1}, DType::i64);
  for (int64_t s = first_; s < first_ + count_; ++s) c.data<int64_t>()[s] = batches_;
  return c;
}

void TextShare::restore(const Tensor& cursors) {
  WENSU_CHECK(cursors.dtype() == DType::i64 && cursors.dim() == 2 && cursors.size(0) == cfg_.streams &&
                  cursors.size(1) == 1,
              "text data: the checkpoint's data cursor has shape ", shape_str(cursors.shape()), ", expected [",
              cfg_.streams, ", 1] (was the run started with another number of data streams?)");
  Tensor c = cursors.contiguous();
  batches_ = c.data<int64_t>()[first_];
}

int64_t TextShare::epoch() const {
  return batches_ * cfg_.batch_rows * cfg_.seq_len / int64_t(corpus_.ids.size());
}

std::pair<double, int64_t> causal_lm_loss(const std::function<Tensor(const Tensor&)>& forward,
                                          const TokenCorpus& corpus, int64_t seq_len, int64_t rows_per_batch,
                                          int64_t max_windows) {
  const dist::Communicator& world = dist::Communicator::world();
  int64_t windows = (int64_t(corpus.ids.size()) - 1) / seq_len;
  if (max_windows > 0) windows = std::min(windows, max_windows);
  NoGradGuard ng;
  double loss_sum = 0, count = 0;
  // Window w covers tokens [w L, w L + L]; rank k takes windows k, k + world, ...
  std::vector<int64_t> mine;
  for (int64_t w = world.rank(); w < windows; w += world.size()) mine.push_back(w * seq_len);
  for (size_t i = 0; i < mine.size(); i += size_t(rows_per_batch)) {
    std::vector<int64_t> offsets(mine.begin() + long(i), mine.begin() + long(std::min(mine.size(), i + size_t(rows_per_batch))));
    LmBatch b = rows_at(corpus, offsets, seq_len);
    loss_sum += ops::cross_entropy(forward(b.tokens), b.targets).item() * double(b.targets_count);
    count += double(b.targets_count);
  }
  loss_sum = all_ranks_sum(loss_sum);
  count = all_ranks_sum(count);
  return {count > 0 ? loss_sum / count : 0.0, windows};
}

}  // namespace wensu::train
