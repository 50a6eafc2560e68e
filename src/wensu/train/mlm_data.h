// Masked-language-model batches from FASTA shards, the ESM-2 recipe: sequences streamed from
// many .fasta / .fasta.gz files, cropped at random to the model's length, grouped by length into
// batches under a token budget (less padding), and masked BERT-style (15% of residues: 80%
// <mask>, 10% a random amino acid, 10% unchanged).
//
// Deterministic from a seed, with no hidden state: the shard order of each epoch, each
// sequence's crop, each pool's batch order and every mask are drawn from counter-based Philox
// keyed by (epoch, record, batch, position). The stream's position is seven integers (cursor());
// restoring them rebuilds exactly the batches an uninterrupted stream would have produced.
//
// Data parallelism: the shards are dealt to `streams` independent streams (stream s reads
// positions s, s + streams, ... of each epoch's shard order), so each MPI rank opens and parses
// only its own files. A step's global batch is one batch from every stream; a rank runs its
// streams (MlmShare), and one process given all the streams sees the same global batch.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wensu/core/tensor.h"

namespace wensu::io {
class FastaReader;
}

namespace wensu::train {

struct MlmDataConfig {
  std::vector<std::string> files;   // shard paths (io::expand_paths)
  int64_t max_len = 1024;           // tokens per sequence with <cls> and <eos>; longer ones are cropped
  int64_t tokens_per_batch = 8192;  // padded tokens (sequences x longest) per batch, at most
  int64_t pool = 2048;              // sequences read ahead, sorted by length, cut into batches
  double mask_prob = 0.15;
  uint64_t seed = 0;
  bool shuffle = true;              // false (validation): files in order, crops from the start, batches in order
  bool repeat = true;               // false: next() returns false after one pass
  bool skip_invalid = false;        // skip (and count) invalid FASTA records instead of failing
  int64_t stream = 0, streams = 1;  // this stream's share of the shards (see above)
};

struct MlmBatch {
  Tensor tokens;            // int64 [B, L]: <cls> residues <eos> <pad>..., with the masks applied
  Tensor targets;           // int64 [B, L]: the original token where masked, -100 elsewhere
  int64_t sequences = 0;    // B
  int64_t real_tokens = 0;  // tokens that are not padding
  int64_t masked = 0;       // positions with a target
  int64_t index = 0;        // global batch number since the start of the stream
};

class MlmStream {
 public:
  explicit MlmStream(MlmDataConfig cfg);
  ~MlmStream();
  // The next batch; false only when repeat is off and the pass is over.
  bool next(MlmBatch& batch);
  // Where the stream is: int64 [6] (epoch, shard position, record in shard and global record at
  // the start of the current pool, pool number, batches taken from the pool).
  Tensor cursor() const;
  void restore(const Tensor& cursor);  // reopens files and rebuilds the pool
  int64_t epoch() const { return epoch_; }
  // Invalid records skipped (skip_invalid) in the first pass over the files, since this stream was
  // made or restored.
  int64_t skipped_records() const { return skipped_; }

 private:
  struct Sequence {
    std::vector<int64_t> tokens;  // <cls> residues <eos>
  };
  void start_epoch(int64_t epoch);
  uint64_t seed() const;  // of the crops, batch orders and masks: one per stream
  bool fill_pool();  // reads up to cfg.pool sequences; false when the epoch has no more
  bool read_record(Sequence& s);
  void open_shard();
  MlmBatch make_batch(const std::vector<size_t>& members, int64_t index) const;

  MlmDataConfig cfg_;
  std::vector<size_t> order_;  // shard order of this epoch
  int64_t epoch_ = 0, shard_pos_ = 0, record_in_shard_ = 0, global_record_ = 0;
  int64_t pool_start_shard_ = 0, pool_start_record_ = 0, pool_start_global_ = 0;
  int64_t pool_index_ = 0, taken_ = 0, batch_index_ = 0, skipped_ = 0;
  std::unique_ptr<io::FastaReader> reader_;
  std::vector<Sequence> pool_;
  std::vector<std::vector<size_t>> batches_;  // of the current pool, in the order they are served
};

// The streams [first, first + count) of `streams`, as one batch per step: their batches stacked
// (rows padded to the longest, or to at least min_len). Every stream holds the global
// tokens_per_batch / streams.
class MlmShare {
 public:
  MlmShare(const MlmDataConfig& cfg, int64_t streams, int64_t first, int64_t count);
  // The next batch of each stream (not yet stacked), so that ranks can agree on a length first.
  std::vector<MlmBatch> next_parts();
  static MlmBatch stack(const std::vector<MlmBatch>& parts, int64_t min_len = 0);
  // int64 [streams, 7]: this share's rows filled, the others 0 (sum over ranks for the whole).
  Tensor cursors() const;
  // From [streams, 7] (or a one-stream cursor [7] when streams == 1).
  void restore(const Tensor& cursors);
  int64_t epoch() const;  // of the first stream
  int64_t skipped_records() const;

 private:
  int64_t streams_, first_;
  std::vector<std::unique_ptr<MlmStream>> parts_;
};

// Rank `rank`'s share of a global batch (rows rank, rank + world, ...), for data parallelism;
// the caller normalises its loss by the global number of masked positions.
MlmBatch rank_rows(const MlmBatch& global, int rank, int world);

}  // namespace wensu::train
