// Image-caption pairs for the two-tower model: a pairs.tsv file (scripts/data/make-mm-data.sh)
// with the header `split<TAB>image<TAB>caption<TAB>source`, image paths relative to the file's
// folder. Images are decoded once (io/image.h), scaled to [-1, 1] and kept in memory; captions
// are tokenised and end with the tokenizer's end-of-text token (the token the text tower pools).
//
// Batches: each epoch is a Philox permutation of the pairs keyed by (seed, epoch); a step's
// global batch is the next `batch` pairs of it (the epoch's remainder is dropped), and a rank
// takes rows [first, first + count) of it. One process given the whole batch sees the same
// pairs, in the same order, as all ranks together. Deterministic from the count of batches
// served, which is the checkpointed cursor.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "wensu/core/tensor.h"
#include "wensu/io/image.h"

namespace wensu::text {
class Tokenizer;
}

namespace wensu::mm {

struct PairSet {
  std::vector<std::string> images;    // paths as read (resolved against the tsv's folder)
  std::vector<std::string> captions;
  std::vector<std::vector<int64_t>> ids;  // tokenised captions, end-of-text last
  Tensor pixels;                      // float32 [N, 3, S, S] in [-1, 1]
  int64_t skipped = 0;                // pairs whose image could not be read (reported on stderr)
  int64_t size() const { return int64_t(captions.size()); }
};

struct PairOptions {
  std::string split;          // keep rows of this split ("" = every row)
  io::ImageOptions image;     // size and background
  int64_t max_tokens = 32;    // captions are cut to this many tokens (end-of-text included)
  bool strict = false;        // an unreadable image is an error instead of a skipped pair
  bool progress = false;
};

// Reads the pairs of one split. Errors name the file and line: a missing file, a bad header, a
// row without 4 fields, an empty caption, no pair left. With strict = false an unreadable or
// corrupt image is reported by name on stderr and its pair skipped.
PairSet read_pairs(const std::string& tsv, const text::Tokenizer& tok, const PairOptions& opt);

// Images of folders (PNG and JPEG files in them and their subfolders, sorted by path) and files; unreadable ones are
// reported and skipped unless strict. For `wensu mm search` and `wensu mm embed`.
PairSet read_images(const std::vector<std::string>& paths, const io::ImageOptions& image, bool strict);

// Tokenised captions [B, L] (padded with end-of-text) and their lengths [B].
struct TokenBatch {
  Tensor ids;      // int64 [B, L], L = the longest caption
  Tensor lengths;  // int64 [B]
};
TokenBatch pad_captions(const std::vector<std::vector<int64_t>>& ids, int64_t pad_id);
std::vector<int64_t> encode_caption(const text::Tokenizer& tok, const std::string& caption, int64_t max_tokens);

// Data augmentation: image b of pixels [B, C, S, S] ([-1, 1]) moved by dx, dy in
// [-max_shift, max_shift], drawn from Philox keyed by (seed, counter, first_row + b) (first_row:
// the rows' place in the global batch, so ranks draw what one process would); the uncovered
// border becomes the background (+1, white, as the images were composited). A fresh tensor.
Tensor shift_images(const Tensor& pixels, int64_t max_shift, uint64_t seed, uint64_t counter, int64_t first_row = 0);

class PairStream {
 public:
  PairStream(const PairSet& pairs, int64_t batch, uint64_t seed, int64_t first, int64_t count);
  // The next global batch's rows [first, first + count): indices into the pair set.
  std::vector<int64_t> next();
  int64_t served() const { return served_; }  // batches served (the cursor)
  int64_t first_row() const { return first_; }  // this share's first row in the global batch
  void restore(int64_t served) { served_ = served; }
  double epoch() const;                       // pairs served / pairs in the set

 private:
  int64_t n_, batch_, first_, count_;
  uint64_t seed_;
  int64_t served_ = 0;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace wensu::mm
