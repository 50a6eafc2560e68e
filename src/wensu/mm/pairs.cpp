#include "wensu/mm/pairs.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "wensu/core/check.h"
#include "wensu/core/generator.h"
#include "wensu/text/tokenizer.h"
#include "wensu/train/progress.h"

namespace wensu::mm {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

// Decodes the image at `path` into pixels row `row` ([-1, 1]); false (and a message on stderr,
// after `where`: the pairs file and line, when there is one) when it cannot.
bool load_into(const std::string& path, const std::string& where, const io::ImageOptions& opt, bool strict,
               const Tensor& pixels, int64_t row) {
  Tensor img;
  try {
    img = io::load_image(path, opt);  // [3, S, S] in [0, 1]
  } catch (const Error& e) {
    if (strict) throw Error(where + e.what() + " (drop --strict to skip unreadable images)");
    std::fprintf(stderr, "warning: skipping %s%s\n", where.c_str(), e.what());
    return false;
  }
  const float* src = img.contiguous().data<float>();
  float* dst = pixels.data<float>() + row * img.numel();
  for (int64_t k = 0; k < img.numel(); ++k) dst[k] = 2.f * src[k] - 1.f;
  return true;
}

// Keeps the first `rows` rows of pixels.
Tensor first_rows(const Tensor& pixels, int64_t rows) { return pixels.narrow(0, 0, rows).contiguous(); }

}  // namespace

std::vector<int64_t> encode_caption(const text::Tokenizer& tok, const std::string& caption, int64_t max_tokens) {
  std::vector<int64_t> ids = tok.encode(caption);
  if (int64_t(ids.size()) > max_tokens - 1) ids.resize(size_t(max_tokens - 1));
  ids.push_back(tok.eos_id());
  return ids;
}

PairSet read_pairs(const std::string& tsv, const text::Tokenizer& tok, const PairOptions& opt) {
  WENSU_CHECK(tok.eos_id() >= 0, "mm pairs: the tokenizer has no end-of-text token; the text tower pools at it");
  WENSU_CHECK(opt.max_tokens >= 2, "mm pairs: max_tokens must be >= 2, got ", opt.max_tokens);
  std::ifstream in(tsv);
  WENSU_CHECK(in, "cannot read ", tsv, ": no such file or not readable (make the pairs with scripts/data/make-mm-data.sh)");
  const fs::path dir = fs::path(tsv).parent_path();
  std::string line;
  WENSU_CHECK(std::getline(in, line) && line.rfind("split\timage\tcaption", 0) == 0, tsv,
              " line 1: expected the header 'split<TAB>image<TAB>caption<TAB>source'");
  struct Row {
    std::string image, caption;
    int64_t line;
  };
  std::vector<Row> rows;
  for (int64_t ln = 2; std::getline(in, line); ++ln) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto f = split_tabs(line);
    WENSU_CHECK(f.size() >= 3, tsv, " line ", ln, ": expected split, image, caption and source separated by tabs, got ",
                f.size(), " field(s)");
    WENSU_CHECK(!f[2].empty(), tsv, " line ", ln, ": empty caption");
    WENSU_CHECK(!f[1].empty(), tsv, " line ", ln, ": empty image path");
    if (!opt.split.empty() && f[0] != opt.split) continue;
    rows.push_back({(dir / f[1]).string(), f[2], ln});
  }
  WENSU_CHECK(!rows.empty(), tsv, ": no pairs", opt.split.empty() ? "" : " in split '" + opt.split + "'");

  PairSet set;
  const int64_t S = opt.image.size;
  Tensor pixels = Tensor::empty({int64_t(rows.size()), 3, S, S});
  train::ProgressBar bar("images", int64_t(rows.size()), "image");
  int64_t kept = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string where = tsv + " line " + std::to_string(rows[i].line) + ": ";
    if (load_into(rows[i].image, where, opt.image, opt.strict, pixels, kept)) {
      set.images.push_back(rows[i].image);
      set.captions.push_back(rows[i].caption);
      set.ids.push_back(encode_caption(tok, rows[i].caption, opt.max_tokens));
      ++kept;
    } else {
      ++set.skipped;
    }
    if (opt.progress) bar.update(int64_t(i) + 1);
  }
  if (opt.progress) bar.finish();
  WENSU_CHECK(kept > 0, tsv, ": none of the ", rows.size(), " images could be read");
  set.pixels = first_rows(pixels, kept);
  return set;
}

PairSet read_images(const std::vector<std::string>& paths, const io::ImageOptions& image, bool strict) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    if (fs::is_directory(p)) {
      std::vector<std::string> in_dir;
      for (const auto& e : fs::recursive_directory_iterator(p)) {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) in_dir.push_back(e.path().string());
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(p);
    }
  }
  WENSU_CHECK(!files.empty(), "no images: give PNG or JPEG files or folders that hold some");
  PairSet set;
  Tensor pixels = Tensor::empty({int64_t(files.size()), 3, image.size, image.size});
  int64_t kept = 0;
  for (const auto& f : files) {
    if (load_into(f, "", image, strict, pixels, kept)) {
      set.images.push_back(f);
      ++kept;
    } else {
      ++set.skipped;
    }
  }
  WENSU_CHECK(kept > 0, "none of the ", files.size(), " images could be read");
  set.pixels = first_rows(pixels, kept);
  return set;
}

TokenBatch pad_captions(const std::vector<std::vector<int64_t>>& ids, int64_t pad_id) {
  const int64_t B = int64_t(ids.size());
  int64_t L = 1;
  for (const auto& v : ids) L = std::max<int64_t>(L, int64_t(v.size()));
  std::vector<int64_t> flat(size_t(B * L), pad_id);
  std::vector<int64_t> len(size_t(B), 0);
  for (int64_t b = 0; b < B; ++b) {
    std::copy(ids[size_t(b)].begin(), ids[size_t(b)].end(), flat.begin() + b * L);
    len[size_t(b)] = int64_t(ids[size_t(b)].size());
  }
  return {Tensor::from_vector(flat, {B, L}), Tensor::from_vector(len, {B})};
}

Tensor shift_images(const Tensor& pixels, int64_t max_shift, uint64_t seed, uint64_t counter, int64_t first_row) {
  WENSU_CHECK(pixels.dim() == 4 && pixels.dtype() == DType::f32, "shift_images: pixels must be float32 [B, C, S, S]");
  const Tensor src = pixels.to(Device::cpu).contiguous();
  const int64_t B = src.size(0), C = src.size(1), H = src.size(2), W = src.size(3);
  Tensor out = Tensor::full({B, C, H, W}, 1.0);
  const float* x = src.data<float>();
  float* y = out.data<float>();
  const uint32_t span = uint32_t(2 * max_shift + 1);
  for (int64_t b = 0; b < B; ++b) {
    const auto r = philox4x32(seed ^ 0x5bd1e9955bd1e995ull, (counter << 20) + uint64_t(first_row + b));
    const int64_t dx = int64_t(r[0] % span) - max_shift, dy = int64_t(r[1] % span) - max_shift;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = std::max<int64_t>(0, dy); i < std::min(H, H + dy); ++i)
        for (int64_t j = std::max<int64_t>(0, dx); j < std::min(W, W + dx); ++j)
          y[((b * C + c) * H + i) * W + j] = x[((b * C + c) * H + i - dy) * W + j - dx];
  }
  return out;
}

PairStream::PairStream(const PairSet& pairs, int64_t batch, uint64_t seed, int64_t first, int64_t count)
    : n_(pairs.size()), batch_(batch), first_(first), count_(count), seed_(seed) {
  WENSU_CHECK(batch >= 1 && batch <= n_, "mm train: the batch of ", batch, " pairs must be between 1 and the ", n_,
              " training pairs; lower --batch");
  WENSU_CHECK(first >= 0 && count >= 1 && first + count <= batch, "PairStream: rows [", first, ", ", first + count,
              ") are outside the batch of ", batch);
}

std::vector<int64_t> PairStream::next() {
  const int64_t per_epoch = n_ / batch_;
  const int64_t epoch = served_ / per_epoch, k = served_ % per_epoch;
  if (epoch != cached_epoch_) {
    // Fisher-Yates with Philox draws keyed by (seed, epoch, i): the same on every rank.
    perm_.resize(size_t(n_));
    std::iota(perm_.begin(), perm_.end(), int64_t(0));
    for (int64_t i = n_ - 1; i > 0; --i) {
      const auto r = philox4x32(seed_ ^ (0x9e3779b97f4a7c15ull * uint64_t(epoch + 1)), uint64_t(i));
      const uint64_t x = (uint64_t(r[0]) << 32) | r[1];
      std::swap(perm_[size_t(i)], perm_[size_t(x % uint64_t(i + 1))]);
    }
    cached_epoch_ = epoch;
  }
  ++served_;
  const auto begin = perm_.begin() + k * batch_ + first_;
  return std::vector<int64_t>(begin, begin + count_);
}

double PairStream::epoch() const { return double(served_ * batch_) / double(n_); }

}  // namespace wensu::mm
