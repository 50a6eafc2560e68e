#include "wensu/train/mlm_data.h"

#include <algorithm>
#include <numeric>

#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/io/esm_alphabet.h"
#include "wensu/io/fasta.h"

namespace wensu::train {
namespace {

// Independent Philox streams for the four kinds of draws (xor-ed into the seed).
constexpr uint64_t kShardStream = 0x5348415244ull, kCropStream = 0x43524f50ull, kBatchStream = 0x4241544348ull,
                   kMaskStream = 0x4d41534bull;

uint32_t draw(uint64_t seed, uint64_t stream, uint64_t counter, int word = 0) {
  return philox4x32(seed ^ stream, counter)[size_t(word)];
}

// Fisher-Yates with Philox draws keyed by (key, i).
template <typename T>
void shuffle(std::vector<T>& v, uint64_t seed, uint64_t stream, uint64_t key) {
  for (size_t i = v.size(); i > 1; --i) {
    const uint64_t r = (uint64_t(draw(seed, stream, (key << 24) + i, 0)) << 32) | draw(seed, stream, (key << 24) + i, 1);
    std::swap(v[i - 1], v[size_t(r % i)]);
  }
}

}  // namespace

MlmStream::MlmStream(MlmDataConfig cfg) : cfg_(std::move(cfg)) {
  WENSU_CHECK(!cfg_.files.empty(), "pretraining data: no FASTA files given");
  WENSU_CHECK(cfg_.max_len >= 3, "pretraining data: max_len must be at least 3 (<cls>, one residue, <eos>), got ",
              cfg_.max_len);
  WENSU_CHECK(cfg_.tokens_per_batch >= cfg_.max_len, "pretraining data: tokens_per_batch (", cfg_.tokens_per_batch,
              ") must hold at least one sequence of max_len (", cfg_.max_len, ") tokens");
  WENSU_CHECK(cfg_.pool >= 1, "pretraining data: pool must be >= 1");
  WENSU_CHECK(cfg_.mask_prob > 0 && cfg_.mask_prob < 1, "pretraining data: mask_prob must be in (0, 1)");
  WENSU_CHECK(cfg_.streams >= 1 && cfg_.stream >= 0 && cfg_.stream < cfg_.streams, "pretraining data: stream ",
              cfg_.stream, " of ", cfg_.streams);
  WENSU_CHECK(int64_t(cfg_.files.size()) >= cfg_.streams, "pretraining data: ", cfg_.files.size(),
              " FASTA file(s) for ", cfg_.streams,
              " data streams; every stream (MPI rank) reads its own files, so give at least as many shards "
              "(split the FASTA, e.g. with scripts/data/make-corpus.sh) or use fewer streams (--data-streams)");
  start_epoch(0);
}

MlmStream::~MlmStream() = default;

// One stream keeps the run's seed (so a single-stream run draws what it always drew); the others
// draw from seeds of their own.
uint64_t MlmStream::seed() const {
  return cfg_.stream == 0 ? cfg_.seed : philox4x32(cfg_.seed, 0x53545245414dull + uint64_t(cfg_.stream))[0] ^ cfg_.seed;
}

void MlmStream::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  order_.resize(cfg_.files.size());
  std::iota(order_.begin(), order_.end(), size_t(0));
  if (cfg_.shuffle) shuffle(order_, cfg_.seed, kShardStream, uint64_t(epoch));
  // This stream's shards: positions stream, stream + streams, ... of the epoch's common order.
  std::vector<size_t> mine;
  for (size_t i = size_t(cfg_.stream); i < order_.size(); i += size_t(cfg_.streams)) mine.push_back(order_[i]);
  order_ = std::move(mine);
  shard_pos_ = 0;
  record_in_shard_ = 0;
  reader_.reset();
  pool_.clear();
  batches_.clear();
  taken_ = 0;
}

void MlmStream::open_shard() {
  io::FastaOptions opt;
  opt.skip_invalid = cfg_.skip_invalid;
  reader_ = std::make_unique<io::FastaReader>(cfg_.files[order_[size_t(shard_pos_)]], opt);
  record_in_shard_ = 0;
}

// The next record of the epoch (crossing into the next shard when one ends), tokenized and
// cropped; false at the end of the epoch.
bool MlmStream::read_record(Sequence& s) {
  io::FastaRecord rec;
  while (true) {
    if (shard_pos_ >= int64_t(order_.size())) return false;
    if (!reader_) open_shard();
    const int64_t before = reader_->skipped();
    const bool got = reader_->next(rec);
    if (epoch_ == 0) skipped_ += reader_->skipped() - before;  // later epochs meet the same records again
    if (got) {
      ++record_in_shard_;
      break;
    }
    reader_.reset();
    ++shard_pos_;
  }
  const auto& alphabet = io::EsmAlphabet::get();
  const int64_t keep = cfg_.max_len - 2, n = int64_t(rec.sequence.size());
  int64_t start = 0;
  if (n > keep && cfg_.shuffle)  // a random window, as ESM-2 crops long sequences
    start = int64_t(draw(seed(), kCropStream, uint64_t(global_record_)) % uint64_t(n - keep + 1));
  ++global_record_;
  s.tokens = alphabet.encode(std::string_view(rec.sequence).substr(size_t(start), size_t(std::min(n, keep))), true);
  return true;
}

bool MlmStream::fill_pool() {
  pool_.clear();
  batches_.clear();
  taken_ = 0;
  pool_start_shard_ = shard_pos_;
  pool_start_record_ = record_in_shard_;
  pool_start_global_ = global_record_;
  Sequence s;
  while (int64_t(pool_.size()) < cfg_.pool && read_record(s)) pool_.push_back(std::move(s));
  if (pool_.empty()) return false;
  // Longest first within the pool, then greedy batches under the token budget.
  std::vector<size_t> by_len(pool_.size());
  std::iota(by_len.begin(), by_len.end(), size_t(0));
  std::stable_sort(by_len.begin(), by_len.end(),
                   [&](size_t a, size_t b) { return pool_[a].tokens.size() > pool_[b].tokens.size(); });
  std::vector<size_t> cur;
  int64_t longest = 0;
  for (size_t i : by_len) {
    const int64_t len = int64_t(pool_[i].tokens.size());
    if (!cur.empty() && int64_t(cur.size() + 1) * std::max(longest, len) > cfg_.tokens_per_batch) {
      batches_.push_back(cur);
      cur.clear();
      longest = 0;
    }
    cur.push_back(i);
    longest = std::max(longest, len);
  }
  if (!cur.empty()) batches_.push_back(cur);
  if (cfg_.shuffle) shuffle(batches_, seed(), kBatchStream, (uint64_t(epoch_) << 20) + uint64_t(pool_index_));
  return true;
}

MlmBatch MlmStream::make_batch(const std::vector<size_t>& members, int64_t index) const {
  const auto& alphabet = io::EsmAlphabet::get();
  const int64_t B = int64_t(members.size());
  int64_t L = 0;
  for (size_t i : members) L = std::max(L, int64_t(pool_[i].tokens.size()));
  std::vector<int64_t> tokens(size_t(B * L), alphabet.pad()), targets(size_t(B * L), -100);
  MlmBatch b;
  b.sequences = B;
  b.index = index;
  // The 20 standard amino acids are the random replacements (ids of "LAGVSERTIDPKQNFYMHWC").
  static const std::string kStandard = "LAGVSERTIDPKQNFYMHWC";
  for (int64_t r = 0; r < B; ++r) {
    const auto& seq = pool_[members[size_t(r)]].tokens;
    const int64_t n = int64_t(seq.size());
    b.real_tokens += n;
    for (int64_t c = 0; c < n; ++c) {
      int64_t tok = seq[size_t(c)];
      if (c > 0 && c < n - 1) {  // residues only: never <cls> or <eos>
        const auto bits = philox4x32(seed() ^ kMaskStream, (uint64_t(index) << 32) + uint64_t(r * L + c));
        if (uniform_from_bits(bits[0]) < cfg_.mask_prob) {
          targets[size_t(r * L + c)] = tok;
          ++b.masked;
          const float u = uniform_from_bits(bits[1]);
          if (u < 0.8f)
            tok = alphabet.mask();
          else if (u < 0.9f)
            tok = alphabet.token(kStandard[bits[2] % kStandard.size()]);
        }
      }
      tokens[size_t(r * L + c)] = tok;
    }
  }
  b.tokens = Tensor::from_vector(tokens, {B, L});
  b.targets = Tensor::from_vector(targets, {B, L});
  return b;
}

bool MlmStream::next(MlmBatch& batch) {
  while (taken_ >= int64_t(batches_.size())) {
    if (!batches_.empty()) ++pool_index_;
    if (fill_pool()) continue;
    if (!cfg_.repeat) return false;
    WENSU_CHECK(global_record_ > 0, "pretraining data: the FASTA files hold no usable sequence");
    start_epoch(epoch_ + 1);
  }
  batch = make_batch(batches_[size_t(taken_)], batch_index_);
  ++taken_;
  ++batch_index_;
  return true;
}

Tensor MlmStream::cursor() const {
  return Tensor::from_vector(std::vector<int64_t>{epoch_, pool_start_shard_, pool_start_record_, pool_start_global_,
                                                  pool_index_, taken_, batch_index_},
                             {7});
}

void MlmStream::restore(const Tensor& cursor) {
  const auto c = cursor.to_vector<int64_t>();
  WENSU_CHECK(c.size() == 7, "pretraining data: a data cursor has 7 integers, got ", c.size());
  start_epoch(c[0]);
  shard_pos_ = c[1];
  global_record_ = c[3];
  pool_index_ = c[4];
  if (shard_pos_ < int64_t(order_.size())) {
    open_shard();
    io::FastaRecord skip;
    for (int64_t i = 0; i < c[2]; ++i)
      WENSU_CHECK(reader_->next(skip), "pretraining data: ", cfg_.files[order_[size_t(shard_pos_)]],
                  " has fewer records than the checkpoint's data cursor (", c[2],
                  "): the data changed since the checkpoint was written");
    record_in_shard_ = c[2];
  }
  if (fill_pool()) {
    taken_ = c[5];
    batch_index_ = c[6];
  }
}

MlmShare::MlmShare(const MlmDataConfig& cfg, int64_t streams, int64_t first, int64_t count)
    : streams_(streams), first_(first) {
  WENSU_CHECK(first >= 0 && count >= 1 && first + count <= streams, "pretraining data: streams [", first, ", ",
              first + count, ") of ", streams);
  WENSU_CHECK(cfg.tokens_per_batch / streams >= cfg.max_len, "pretraining data: tokens_per_batch (",
              cfg.tokens_per_batch, ") split over ", streams, " data streams leaves less than max_len (", cfg.max_len,
              ") per stream; raise tokens_per_batch to at least ", streams * cfg.max_len);
  for (int64_t s = first; s < first + count; ++s) {
    MlmDataConfig c = cfg;
    c.stream = s;
    c.streams = streams;
    c.tokens_per_batch = cfg.tokens_per_batch / streams;
    parts_.push_back(std::make_unique<MlmStream>(c));
  }
}

std::vector<MlmBatch> MlmShare::next_parts() {
  std::vector<MlmBatch> out(parts_.size());
  for (size_t i = 0; i < parts_.size(); ++i)
    WENSU_CHECK(parts_[i]->next(out[i]), "pretraining data: stream ", first_ + int64_t(i), " ended");
  return out;
}

MlmBatch MlmShare::stack(const std::vector<MlmBatch>& parts, int64_t min_len) {
  int64_t L = min_len, B = 0;
  for (const auto& p : parts) {
    L = std::max(L, p.tokens.size(1));
    B += p.sequences;
  }
  if (parts.size() == 1 && parts[0].tokens.size(1) == L) return parts[0];
  const int64_t pad = io::EsmAlphabet::get().pad();
  std::vector<int64_t> tokens(size_t(B * L), pad), targets(size_t(B * L), -100);
  MlmBatch out;
  out.index = parts.front().index;
  for (const auto& p : parts) {
    const auto t = p.tokens.to_vector<int64_t>(), g = p.targets.to_vector<int64_t>();
    const int64_t l = p.tokens.size(1);
    for (int64_t r = 0; r < p.sequences; ++r) {
      std::copy_n(t.begin() + r * l, l, tokens.begin() + (out.sequences + r) * L);
      std::copy_n(g.begin() + r * l, l, targets.begin() + (out.sequences + r) * L);
    }
    out.sequences += p.sequences;
    out.real_tokens += p.real_tokens;
    out.masked += p.masked;
  }
  out.tokens = Tensor::from_vector(tokens, {B, L});
  out.targets = Tensor::from_vector(targets, {B, L});
  return out;
}

Tensor MlmShare::cursors() const {
  std::vector<int64_t> all(size_t(streams_ * 7), 0);
  for (size_t i = 0; i < parts_.size(); ++i) {
    const auto c = parts_[i]->cursor().to_vector<int64_t>();
    std::copy(c.begin(), c.end(), all.begin() + (first_ + int64_t(i)) * 7);
  }
  return Tensor::from_vector(all, {streams_, 7});
}

void MlmShare::restore(const Tensor& cursors) {
  if (cursors.dim() == 1) {  // a checkpoint from before data streams: one stream
    WENSU_CHECK(streams_ == 1, "pretraining data: the checkpoint has one data stream, this run ", streams_);
    return parts_[0]->restore(cursors);
  }
  WENSU_CHECK(cursors.dim() == 2 && cursors.size(0) == streams_ && cursors.size(1) == 7,
              "pretraining data: the checkpoint's data cursor is for ", cursors.size(0), " data streams, this run has ",
              streams_, " (resume with the run's own --data-streams)");
  for (size_t i = 0; i < parts_.size(); ++i) parts_[i]->restore(cursors.narrow(0, first_ + int64_t(i), 1).reshape({7}));
}

int64_t MlmShare::epoch() const { return parts_.front()->epoch(); }

int64_t MlmShare::skipped_records() const {
  int64_t n = 0;
  for (const auto& p : parts_) n += p->skipped_records();
  return n;
}

MlmBatch rank_rows(const MlmBatch& global, int rank, int world) {
  if (world == 1) return global;
  const int64_t B = global.sequences, L = global.tokens.size(1);
  WENSU_CHECK(B >= world, "pretraining data: batch ", global.index, " has ", B, " sequences for ", world,
              " ranks; raise tokens_per_batch to at least ", world, " x max_len so every rank gets a sequence");
  const auto tok = global.tokens.to_vector<int64_t>(), tgt = global.targets.to_vector<int64_t>();
  std::vector<int64_t> t, g;
  MlmBatch b;
  b.index = global.index;
  for (int64_t r = rank; r < B; r += world) {
    t.insert(t.end(), tok.begin() + r * L, tok.begin() + (r + 1) * L);
    g.insert(g.end(), tgt.begin() + r * L, tgt.begin() + (r + 1) * L);
    ++b.sequences;
  }
  for (size_t i = 0; i < t.size(); ++i) {
    b.real_tokens += t[i] != 1 ? 1 : 0;  // <pad> = 1
    b.masked += g[i] != -100 ? 1 : 0;
  }
  b.tokens = Tensor::from_vector(t, {b.sequences, L});
  b.targets = Tensor::from_vector(g, {b.sequences, L});
  return b;
}

}  // namespace wensu::train
