// Block-sparse attention layouts. The exact rules (B = block, d = Lk - Lq):
//
// Blocks. Query block r holds tokens [r*B, qhi(r)] with qhi(r) = min(Lq, (r+1)*B) - 1; key block
// c holds [c*B, khi(c)] with khi(c) = min(Lk, (c+1)*B) - 1; n_row_blocks = ceil(Lq / B),
// n_col_blocks = ceil(Lk / B). Queries and keys are aligned at the end (as in flash-attention):
// query i sits at key position i + d, so with Lq == Lk query i sits at key i, and a short query
// chunk (decode, chunked prefill) sees the last keys.
//
// Diagonal block. dc(r) = floor((qhi(r) + d) / B): the key block holding the aligned position of
// the last query of block r (dc(r) = r when Lq == Lk). Block-granular rules measure offsets
// from it. dc(r) < 0 only when Lq > Lk and block r lies entirely before the first key.
//
// Families (a row block may end up empty; its queries then get zero output):
//   dense    keep every c.
//   window   keep c iff some i in block r and some j in block c have |i + d - j| <= window, i.e.
//            iff c*B <= qhi(r) + d + window and khi(c) >= r*B + d - window.
//   bigbird  window, plus global: rows r < global_blocks keep every c, and every row keeps
//            c < global_blocks; plus random: each row r draws min(random_blocks, #candidates)
//            distinct key blocks uniformly from the candidates, the c in [0, n_col_blocks) not
//            already kept (window or global) and, when causal, with c <= dc(r). The draws use
//            Philox with key seed ^ kRandomStream and counter (r << 32) + t for the t-th group
//            of four 32-bit words, so row r's picks are a pure function of (seed, r, its
//            candidate set): independent of call order, of the other rows and of the thread
//            count (add_random_blocks documents how words become picks).
//   strided  fixed pattern of the Sparse Transformer (Child et al. 2019) at block granularity:
//            keep c iff (causal: 0 <= dc(r) - c < stride; otherwise |dc(r) - c| < stride)
//            or c % stride == stride - 1 (the summary columns).
//   dilated  keep c iff c passes the window rule and (dc(r) - c) is a multiple of dilation; the
//            diagonal block dc(r) is therefore always kept (when 0 <= dc(r) < n_col_blocks).
// causal (applies last, to every family and to layout_from_block_mask): drop c unless
// c*B <= qhi(r) + d, i.e. unless c <= dc(r), so no kept block lies wholly above the diagonal;
// inside kept blocks the kernels (and layout_element_mask) mask j > i + d. When Lq > Lk, queries
// i < Lq - Lk see no key at all under causal masking and get zero output.
//
// Building is O(nnz + n_row_blocks + n_col_blocks) in memory and O(nnz log nnz) in time: no
// step visits all n_row_blocks x n_col_blocks pairs unless the family keeps them (dense, global
// rows). Only layout_element_mask is O(Lq * Lk), and it is for tests.
#include "wensu/ops/block_layout.h"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "wensu/core/check.h"
#include "wensu/core/generator.h"

namespace wensu::ops {

namespace {

constexpr size_t kCacheCapacity = 64;
// Mixed into the seed so a layout seed never replays the stream of a generator (dropout, init)
// that happens to share the same seed value.
constexpr uint64_t kRandomStream = 0xB10C5A7E1A10u;
// Caps block counts at 2^31 so the 64-bit products below (random index scaling, the row in the
// high half of a Philox counter) cannot overflow; no attention is anywhere near this long.
constexpr int64_t kMaxLength = int64_t(1) << 36;

int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t pos_mod(int64_t a, int64_t m) {  // m > 0, result in [0, m)
  int64_t r = a % m;
  return r < 0 ? r + m : r;
}

void check_block_and_lengths(const char* fn, int64_t block, int64_t Lq, int64_t Lk) {
  WENSU_CHECK(block == 32 || block == 64 || block == 128, fn, ": block must be 32, 64 or 128 tokens, got ",
              block);
  WENSU_CHECK(Lq >= 0 && Lk >= 0 && Lq <= kMaxLength && Lk <= kMaxLength, fn,
              ": sequence lengths must be in [0, 2^36], got Lq=", Lq, ", Lk=", Lk);
}

void check_config(const BlockLayoutConfig& cfg, int64_t Lq, int64_t Lk) {
  static const char* fn = "make_block_layout";
  WENSU_CHECK(cfg.kind == "dense" || cfg.kind == "window" || cfg.kind == "bigbird" || cfg.kind == "strided" ||
                  cfg.kind == "dilated",
              fn, ": unknown kind '", cfg.kind, "' (valid: dense, window, bigbird, strided, dilated)");
  check_block_and_lengths(fn, cfg.block, Lq, Lk);
  // Every field is checked whatever the kind: a negative count is a mistake even where unused.
  WENSU_CHECK(cfg.window >= 0, fn, ": window must be >= 0 tokens, got ", cfg.window);
  WENSU_CHECK(cfg.global_blocks >= 0, fn, ": global_blocks must be >= 0, got ", cfg.global_blocks);
  WENSU_CHECK(cfg.random_blocks >= 0, fn, ": random_blocks must be >= 0, got ", cfg.random_blocks);
  WENSU_CHECK(cfg.stride >= 1, fn, ": stride must be >= 1 block, got ", cfg.stride);
  WENSU_CHECK(cfg.dilation >= 1, fn, ": dilation must be >= 1, got ", cfg.dilation);
}

// Block geometry shared by every rule.
struct Geometry {
  int64_t B, Lq, Lk, d, nr, nc;
  Geometry(int64_t block, int64_t lq, int64_t lk)
      : B(block), Lq(lq), Lk(lk), d(lk - lq), nr(ceil_div(lq, block)), nc(ceil_div(lk, block)) {}
  int64_t qlo(int64_t r) const { return r * B; }
  int64_t qhi(int64_t r) const { return std::min(Lq, (r + 1) * B) - 1; }
  int64_t diag(int64_t r) const { return floor_div(qhi(r) + d, B); }  // dc(r)
  // Key blocks [first, last] passing the window rule (first > last when none).
  std::pair<int64_t, int64_t> window_range(int64_t r, int64_t w) const {
    // c*B <= qhi + d + w  and  khi(c) >= qlo + d - w; khi(c) >= x holds iff c >= floor(x / B)
    // for x < Lk (and the c >= 0 bound covers x < 0).
    int64_t hi = floor_div(qhi(r) + d + w, B), lo = floor_div(qlo(r) + d - w, B);
    return {std::max<int64_t>(lo, 0), std::min(hi, nc - 1)};
  }
};

// Uniform index in [0, n), n < 2^32, from 32 random bits (multiply-shift).
int64_t uniform_index(uint32_t bits, int64_t n) { return int64_t((uint64_t(bits) * uint64_t(n)) >> 32); }

// Philox words for one row, drawn in order: word t comes from counter (row << 32) + t / 4.
class RowStream {
 public:
  RowStream(uint64_t seed, int64_t row) : key_(seed ^ kRandomStream), base_(uint64_t(row) << 32) {}
  uint32_t next() {
    if (used_ == 4) {
      words_ = philox4x32(key_, base_ + counter_++);
      used_ = 0;
    }
    return words_[used_++];
  }

 private:
  uint64_t key_, base_, counter_ = 0;
  std::array<uint32_t, 4> words_{};
  int used_ = 4;
};

// Adds to `row` (sorted, unique, kept columns) min(k, #candidates) distinct random columns from
// the candidates [0, hi] \ row, keeping it sorted. Cost O(|row| + k), never O(n_col_blocks):
// - few candidates (<= 4k) or a crowded range (< 1/4 candidates): list the candidates in
//   increasing order (then hi + 1 <= 4 * (|row| + k)) and run a partial Fisher-Yates shuffle,
//   step t swapping slot t with slot t + index(word t, #candidates - t);
// - otherwise rejection sampling: word t proposes column index(word t, hi + 1), rejected when
//   already kept or already picked.
// index(bits, n) = (bits * n) >> 32 (multiply-shift; bias below n / 2^32, irrelevant here).
void add_random_blocks(std::vector<int64_t>& row, int64_t hi, int64_t k, uint64_t seed, int64_t r) {
  if (k <= 0 || hi < 0) return;
  int64_t n = hi + 1;
  int64_t present = std::upper_bound(row.begin(), row.end(), hi) - row.begin();
  int64_t candidates = n - present;
  if (candidates <= 0) return;
  RowStream rng(seed, r);
  std::vector<int64_t> picks;
  if (candidates <= 4 * k || 4 * candidates < n) {
    std::vector<int64_t> pool;
    pool.reserve(size_t(candidates));
    for (int64_t c = 0, p = 0; c < n; ++c) {
      while (p < present && row[p] < c) ++p;
      if (p < present && row[p] == c) continue;
      pool.push_back(c);
    }
    int64_t take = std::min(k, candidates);
    for (int64_t t = 0; t < take; ++t) {  // partial Fisher-Yates: pool[0, take) is the sample
      int64_t j = t + uniform_index(rng.next(), candidates - t);
      std::swap(pool[t], pool[j]);
    }
    picks.assign(pool.begin(), pool.begin() + take);
  } else {
    // At least a quarter of [0, hi] is a candidate and k < candidates / 4, so each draw is
    // accepted with probability > 3/16 and the expected number of draws is O(k).
    while (int64_t(picks.size()) < k) {
      int64_t c = uniform_index(rng.next(), n);
      if (std::binary_search(row.begin(), row.end(), c)) continue;
      if (std::find(picks.begin(), picks.end(), c) != picks.end()) continue;
      picks.push_back(c);
    }
  }
  row.insert(row.end(), picks.begin(), picks.end());
  std::sort(row.begin(), row.end());
}

// Kept columns of row r before the causal cut (sorted, unique).
void row_columns(const BlockLayoutConfig& cfg, const Geometry& g, int64_t r, std::vector<int64_t>& row) {
  row.clear();
  const int64_t w = std::min(cfg.window, g.Lq + g.Lk);  // a wider window changes nothing; avoids overflow
  const std::string& kind = cfg.kind;
  if (kind == "dense") {
    for (int64_t c = 0; c < g.nc; ++c) row.push_back(c);
  } else if (kind == "window") {
    auto [lo, hi] = g.window_range(r, w);
    for (int64_t c = lo; c <= hi; ++c) row.push_back(c);
  } else if (kind == "bigbird") {
    int64_t gb = std::min(cfg.global_blocks, g.nc);
    if (r < cfg.global_blocks) {
      for (int64_t c = 0; c < g.nc; ++c) row.push_back(c);
    } else {
      auto [lo, hi] = g.window_range(r, w);
      for (int64_t c = 0; c < gb; ++c) row.push_back(c);
      for (int64_t c = std::max(lo, gb); c <= hi; ++c) row.push_back(c);  // both pieces sorted, disjoint
    }
    int64_t limit = cfg.causal ? std::min(g.diag(r), g.nc - 1) : g.nc - 1;
    add_random_blocks(row, limit, cfg.random_blocks, cfg.seed, r);
  } else if (kind == "strided") {
    const int64_t s = cfg.stride, dc = g.diag(r);
    // Band: dc - s < c <= dc when causal (the cut below removes c > dc), else |dc - c| < s.
    int64_t band_lo = std::max<int64_t>(dc - s + 1, 0), band_hi = std::min(dc + s - 1, g.nc - 1);
    // Summary columns below the band, the band itself, then summary columns above it.
    for (int64_t c = s - 1; c < std::min(band_lo, g.nc); c += s) row.push_back(c);
    for (int64_t c = band_lo; c <= band_hi; ++c) row.push_back(c);
    int64_t above = std::max(band_hi + 1, band_lo);
    for (int64_t c = above + pos_mod(s - 1 - above, s); c < g.nc; c += s) row.push_back(c);
  } else {  // dilated
    const int64_t dc = g.diag(r), dil = cfg.dilation;
    auto [lo, hi] = g.window_range(r, w);
    if (lo <= hi)
      for (int64_t c = lo + pos_mod(dc - lo, dil); c <= hi; c += dil) row.push_back(c);
  }
  if (cfg.causal) {
    int64_t dc = g.diag(r);
    row.erase(std::upper_bound(row.begin(), row.end(), dc), row.end());
  }
}

// Fills CSC from CSR by a counting sort; rows come out sorted within each column.
void build_csc(BlockLayout& L) {
  L.col_ptr.assign(size_t(L.n_col_blocks + 1), 0);
  for (int64_t c : L.col_idx) ++L.col_ptr[size_t(c + 1)];
  for (int64_t c = 0; c < L.n_col_blocks; ++c) L.col_ptr[size_t(c + 1)] += L.col_ptr[size_t(c)];
  L.row_idx.resize(L.col_idx.size());
  std::vector<int64_t> fill(L.col_ptr.begin(), L.col_ptr.end() - 1);
  for (int64_t r = 0; r < L.n_row_blocks; ++r)
    for (int64_t p = L.row_ptr[size_t(r)]; p < L.row_ptr[size_t(r + 1)]; ++p)
      L.row_idx[size_t(fill[size_t(L.col_idx[size_t(p)])]++)] = r;
}

BlockLayout empty_layout(const Geometry& g, bool causal) {
  BlockLayout L;
  L.block = g.B;
  L.Lq = g.Lq;
  L.Lk = g.Lk;
  L.n_row_blocks = g.nr;
  L.n_col_blocks = g.nc;
  L.causal = causal;
  L.row_ptr.assign(1, 0);
  L.row_ptr.reserve(size_t(g.nr + 1));
  return L;
}

std::shared_ptr<const BlockLayout> build_layout(const BlockLayoutConfig& cfg, int64_t Lq, int64_t Lk) {
  Geometry g(cfg.block, Lq, Lk);
  auto L = std::make_shared<BlockLayout>(empty_layout(g, cfg.causal));
  std::vector<int64_t> row;
  for (int64_t r = 0; r < g.nr; ++r) {
    row_columns(cfg, g, r, row);
    L->col_idx.insert(L->col_idx.end(), row.begin(), row.end());
    L->row_ptr.push_back(int64_t(L->col_idx.size()));
  }
  build_csc(*L);
  return L;
}

using CacheKey = std::tuple<std::string, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, uint64_t,
                            int64_t, int64_t>;

struct LayoutCache {
  std::mutex mu;
  std::map<CacheKey, std::shared_ptr<const BlockLayout>> entries;
  std::deque<CacheKey> order;  // insertion order, oldest first (FIFO eviction)
};
LayoutCache& layout_cache() {
  static LayoutCache* cache = new LayoutCache;  // leaked on purpose: usable during static teardown
  return *cache;
}

}  // namespace

bool BlockLayout::has(int64_t row_block, int64_t col_block) const {
  if (row_block < 0 || row_block >= n_row_blocks) return false;
  auto first = col_idx.begin() + row_ptr[size_t(row_block)], last = col_idx.begin() + row_ptr[size_t(row_block + 1)];
  return std::binary_search(first, last, col_block);
}

std::shared_ptr<const BlockLayout> make_block_layout(const BlockLayoutConfig& cfg, int64_t Lq, int64_t Lk) {
  check_config(cfg, Lq, Lk);
  CacheKey key{cfg.kind,   cfg.block,    cfg.window, cfg.global_blocks, cfg.random_blocks, cfg.stride,
               cfg.dilation, cfg.causal, cfg.seed,   Lq,                Lk};
  auto& cache = layout_cache();
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (auto it = cache.entries.find(key); it != cache.entries.end()) return it->second;
  }
  // Built outside the lock so a long build does not stall other threads' lookups. Two threads
  // racing on the same key build identical layouts; the first one stored wins and both return it.
  auto built = build_layout(cfg, Lq, Lk);
  std::lock_guard<std::mutex> lock(cache.mu);
  auto [it, inserted] = cache.entries.emplace(key, built);
  if (inserted) {
    cache.order.push_back(key);
    while (cache.order.size() > kCacheCapacity) {
      cache.entries.erase(cache.order.front());
      cache.order.pop_front();
    }
  }
  return it->second;
}

std::shared_ptr<const BlockLayout> layout_from_block_mask(const std::vector<uint8_t>& mask, int64_t block,
                                                          int64_t Lq, int64_t Lk, bool causal) {
  check_block_and_lengths("layout_from_block_mask", block, Lq, Lk);
  Geometry g(block, Lq, Lk);
  WENSU_CHECK(int64_t(mask.size()) == g.nr * g.nc, "layout_from_block_mask: mask has ", mask.size(),
              " entries, expected n_row_blocks x n_col_blocks = ", g.nr, " x ", g.nc, " for Lq=", Lq, ", Lk=", Lk,
              ", block=", block);
  auto L = std::make_shared<BlockLayout>(empty_layout(g, causal));
  for (int64_t r = 0; r < g.nr; ++r) {
    // Blocks wholly above the diagonal would be fully masked: dropping them changes no element
    // of the mask and keeps kernels from computing blocks whose every score is -inf.
    int64_t last = causal ? std::min(g.diag(r), g.nc - 1) : g.nc - 1;
    for (int64_t c = 0; c <= last; ++c)
      if (mask[size_t(r * g.nc + c)]) L->col_idx.push_back(c);
    L->row_ptr.push_back(int64_t(L->col_idx.size()));
  }
  build_csc(*L);
  return L;
}

std::vector<uint8_t> layout_element_mask(const BlockLayout& layout) {
  const int64_t B = layout.block, Lq = layout.Lq, Lk = layout.Lk, d = Lk - Lq;
  std::vector<uint8_t> mask(size_t(Lq * Lk), 0);
  for (int64_t r = 0; r < layout.n_row_blocks; ++r) {
    int64_t i_end = std::min(Lq, (r + 1) * B);
    for (int64_t p = layout.row_ptr[size_t(r)]; p < layout.row_ptr[size_t(r + 1)]; ++p) {
      int64_t c = layout.col_idx[size_t(p)], j_end = std::min(Lk, (c + 1) * B);
      for (int64_t i = r * B; i < i_end; ++i)
        for (int64_t j = c * B; j < j_end; ++j)
          if (!layout.causal || j <= i + d) mask[size_t(i * Lk + j)] = 1;
    }
  }
  return mask;
}

}  // namespace wensu::ops
