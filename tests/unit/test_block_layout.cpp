// Block-sparse attention layouts. Every family is compared with a brute-force construction that
// applies the documented rule (block_layout.cpp, header comment) token by token: a block pair is
// kept when some query i of the row block and some key j of the column block satisfy it, with
// queries aligned to keys at the end (query i sits at key i + Lk - Lq). Random BigBird blocks
// cannot be rebuilt independently, so their properties are checked instead: count, candidates,
// determinism, seed sensitivity, independence of the rest of the layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "wensu/core/check.h"
#include "wensu/ops/block_layout.h"

using namespace wensu;
using ops::BlockLayout;
using ops::BlockLayoutConfig;

namespace {

using Pairs = std::set<std::pair<int64_t, int64_t>>;

struct Shape {
  int64_t Lq, Lk, block;
};
// Equal and unequal lengths, lengths that are not multiples of the block, a single decode query,
// more queries than keys (early query blocks then precede every key).
const std::vector<Shape> kShapes = {{256, 256, 32}, {300, 300, 64}, {97, 97, 32},  {130, 130, 128},
                                    {200, 333, 32}, {333, 200, 32}, {1, 257, 64}, {70, 300, 64}};

// Token-level view of one (Lq, Lk, block): predicates over element pairs lifted to blocks.
struct Brute {
  int64_t Lq, Lk, B, d, nr, nc;
  std::vector<int64_t> diag_;
  explicit Brute(const Shape& s)
      : Lq(s.Lq), Lk(s.Lk), B(s.block), d(s.Lk - s.Lq), nr((s.Lq + s.block - 1) / s.block),
        nc((s.Lk + s.block - 1) / s.block) {
    // The diagonal block of row r: the last (possibly virtual, negative) key block whose first
    // position is at or before the aligned position of the row's last query. For c >= 0 this is
    // exactly "some query of block r may see some key of block c under causal masking".
    for (int64_t r = 0; r < nr; ++r) {
      int64_t last_q = std::min(Lq, (r + 1) * B) - 1, dc = -(Lq / B) - 2;
      for (int64_t c = dc; c < nc; ++c)
        if (c * B <= last_q + d) dc = c;
      for (int64_t c = 0; c < nc; ++c) EXPECT_EQ(causal_ok(r, c), c <= dc) << "r=" << r << " c=" << c;
      diag_.push_back(dc);
    }
  }
  bool any(int64_t r, int64_t c, const std::function<bool(int64_t, int64_t)>& pred) const {
    for (int64_t i = r * B; i < std::min(Lq, (r + 1) * B); ++i)
      for (int64_t j = c * B; j < std::min(Lk, (c + 1) * B); ++j)
        if (pred(i, j)) return true;
    return false;
  }
  bool causal_ok(int64_t r, int64_t c) const {
    return any(r, c, [&](int64_t i, int64_t j) { return j <= i + d; });
  }
  bool in_window(int64_t r, int64_t c, int64_t w) const {
    return any(r, c, [&](int64_t i, int64_t j) { return std::abs(i + d - j) <= w; });
  }
  int64_t diag(int64_t r) const { return diag_[r]; }
  Pairs pairs(const std::function<bool(int64_t, int64_t)>& keep, bool causal) const {
    Pairs out;
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t c = 0; c < nc; ++c)
        if (keep(r, c) && (!causal || causal_ok(r, c))) out.insert({r, c});
    return out;
  }
};

int64_t mod(int64_t a, int64_t m) { return ((a % m) + m) % m; }

Pairs csr_pairs(const BlockLayout& L) {
  Pairs out;
  for (int64_t r = 0; r < L.n_row_blocks; ++r)
    for (int64_t p = L.row_ptr[r]; p < L.row_ptr[r + 1]; ++p) out.insert({r, L.col_idx[p]});
  return out;
}

// CSR well formed, CSC the same set of pairs, has() agrees with both.
void expect_consistent(const BlockLayout& L, const Shape& s, bool causal) {
  ASSERT_EQ(L.block, s.block);
  ASSERT_EQ(L.Lq, s.Lq);
  ASSERT_EQ(L.Lk, s.Lk);
  ASSERT_EQ(L.n_row_blocks, (s.Lq + s.block - 1) / s.block);
  ASSERT_EQ(L.n_col_blocks, (s.Lk + s.block - 1) / s.block);
  ASSERT_EQ(L.causal, causal);
  ASSERT_EQ(int64_t(L.row_ptr.size()), L.n_row_blocks + 1);
  ASSERT_EQ(int64_t(L.col_ptr.size()), L.n_col_blocks + 1);
  ASSERT_EQ(L.row_ptr.front(), 0);
  ASSERT_EQ(L.col_ptr.front(), 0);
  ASSERT_EQ(L.row_ptr.back(), L.nnz());
  ASSERT_EQ(L.col_ptr.back(), L.nnz());
  ASSERT_EQ(L.row_idx.size(), L.col_idx.size());
  for (int64_t r = 0; r < L.n_row_blocks; ++r) {
    ASSERT_LE(L.row_ptr[r], L.row_ptr[r + 1]);
    for (int64_t p = L.row_ptr[r]; p < L.row_ptr[r + 1]; ++p) {
      ASSERT_GE(L.col_idx[p], 0);
      ASSERT_LT(L.col_idx[p], L.n_col_blocks);
      if (p > L.row_ptr[r]) {
        ASSERT_LT(L.col_idx[p - 1], L.col_idx[p]) << "row " << r << " not sorted/unique";
      }
    }
  }
  Pairs csc;
  for (int64_t c = 0; c < L.n_col_blocks; ++c) {
    ASSERT_LE(L.col_ptr[c], L.col_ptr[c + 1]);
    for (int64_t p = L.col_ptr[c]; p < L.col_ptr[c + 1]; ++p) {
      if (p > L.col_ptr[c]) {
        ASSERT_LT(L.row_idx[p - 1], L.row_idx[p]) << "column " << c << " not sorted/unique";
      }
      csc.insert({L.row_idx[p], c});
    }
  }
  Pairs csr = csr_pairs(L);
  EXPECT_EQ(csr, csc);
  for (int64_t r = -1; r <= L.n_row_blocks; ++r)
    for (int64_t c = -1; c <= L.n_col_blocks; ++c) EXPECT_EQ(L.has(r, c), csr.count({r, c}) == 1);
}

// The element mask must be the block set plus causal masking inside blocks.
void expect_element_mask(const BlockLayout& L, const Pairs& blocks) {
  auto m = ops::layout_element_mask(L);
  ASSERT_EQ(int64_t(m.size()), L.Lq * L.Lk);
  const int64_t d = L.Lk - L.Lq;
  for (int64_t i = 0; i < L.Lq; ++i)
    for (int64_t j = 0; j < L.Lk; ++j) {
      bool want = blocks.count({i / L.block, j / L.block}) && (!L.causal || j <= i + d);
      ASSERT_EQ(m[i * L.Lk + j], want ? 1 : 0) << "i=" << i << " j=" << j;
    }
}

BlockLayoutConfig config(const std::string& kind, int64_t block, bool causal) {
  BlockLayoutConfig c;
  c.kind = kind;
  c.block = block;
  c.causal = causal;
  return c;
}

// Builds the layout for every shape and causal flag, variants of the family parameter from
// `vary`, and compares with `expected(brute, cfg)`.
void check_family(const std::string& kind, const std::vector<std::function<void(BlockLayoutConfig&)>>& vary,
                  const std::function<bool(const Brute&, const BlockLayoutConfig&, int64_t, int64_t)>& keep) {
  for (const Shape& s : kShapes)
    for (bool causal : {false, true})
      for (const auto& v : vary) {
        BlockLayoutConfig cfg = config(kind, s.block, causal);
        v(cfg);
        SCOPED_TRACE(kind + " Lq=" + std::to_string(s.Lq) + " Lk=" + std::to_string(s.Lk) +
                     " block=" + std::to_string(s.block) + " causal=" + std::to_string(causal) +
                     " window=" + std::to_string(cfg.window) + " stride=" + std::to_string(cfg.stride) +
                     " dilation=" + std::to_string(cfg.dilation) + " global=" + std::to_string(cfg.global_blocks));
        Brute b(s);
        auto L = ops::make_block_layout(cfg, s.Lq, s.Lk);
        expect_consistent(*L, s, causal);
        Pairs want = b.pairs([&](int64_t r, int64_t c) { return keep(b, cfg, r, c); }, causal);
        EXPECT_EQ(csr_pairs(*L), want);
        expect_element_mask(*L, want);
      }
}

bool window_keep(const Brute& b, const BlockLayoutConfig& cfg, int64_t r, int64_t c) {
  return b.in_window(r, c, cfg.window);
}
bool bigbird_base_keep(const Brute& b, const BlockLayoutConfig& cfg, int64_t r, int64_t c) {
  return r < cfg.global_blocks || c < cfg.global_blocks || b.in_window(r, c, cfg.window);
}

void expect_throws_naming(const std::function<void()>& f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(BlockLayout, DenseKeepsEveryBlock) {
  check_family("dense", {[](BlockLayoutConfig&) {}}, [](const Brute&, const BlockLayoutConfig&, int64_t, int64_t) {
    return true;
  });
  auto L = ops::make_block_layout(config("dense", 64, false), 300, 130);
  EXPECT_EQ(L->nnz(), 5 * 3);
}

TEST(BlockLayout, WindowMatchesTokenRule) {
  check_family("window",
               {[](BlockLayoutConfig& c) { c.window = 0; }, [](BlockLayoutConfig& c) { c.window = 40; },
                [](BlockLayoutConfig& c) { c.window = 64; }, [](BlockLayoutConfig& c) { c.window = 100; },
                [](BlockLayoutConfig& c) { c.window = int64_t(1) << 50; }},
               window_keep);
}

TEST(BlockLayout, StridedMatchesFixedPattern) {
  auto keep = [](const Brute& b, const BlockLayoutConfig& cfg, int64_t r, int64_t c) {
    int64_t dc = b.diag(r), s = cfg.stride;
    bool band = cfg.causal ? (dc - c >= 0 && dc - c < s) : std::abs(dc - c) < s;
    return band || c % s == s - 1;
  };
  check_family("strided",
               {[](BlockLayoutConfig& c) { c.stride = 1; }, [](BlockLayoutConfig& c) { c.stride = 2; },
                [](BlockLayoutConfig& c) { c.stride = 3; }, [](BlockLayoutConfig& c) { c.stride = 100; }},
               keep);
}

TEST(BlockLayout, DilatedMatchesRule) {
  auto keep = [](const Brute& b, const BlockLayoutConfig& cfg, int64_t r, int64_t c) {
    return b.in_window(r, c, cfg.window) && mod(b.diag(r) - c, cfg.dilation) == 0;
  };
  std::vector<std::function<void(BlockLayoutConfig&)>> vary;
  for (int64_t w : {0, 70, 200})
    for (int64_t dil : {1, 2, 3}) vary.push_back([=](BlockLayoutConfig& c) { c.window = w, c.dilation = dil; });
  check_family("dilated", vary, keep);
  // The diagonal block is always kept when Lq == Lk.
  BlockLayoutConfig cfg = config("dilated", 32, false);
  cfg.window = 300;
  cfg.dilation = 4;
  auto L = ops::make_block_layout(cfg, 500, 500);
  for (int64_t r = 0; r < L->n_row_blocks; ++r) EXPECT_TRUE(L->has(r, r)) << r;
}

TEST(BlockLayout, BigBirdWithoutRandomMatchesWindowPlusGlobal) {
  std::vector<std::function<void(BlockLayoutConfig&)>> vary;
  for (int64_t w : {0, 64, 100})
    for (int64_t g : {0, 1, 2}) vary.push_back([=](BlockLayoutConfig& c) { c.window = w, c.global_blocks = g; });
  check_family("bigbird", vary, bigbird_base_keep);
}

TEST(BlockLayout, BigBirdRandomBlocksAreFreshCandidatesOfTheRightCount) {
  for (const Shape& s : kShapes)
    for (bool causal : {false, true})
      for (int64_t k : {1, 3, 50}) {
        BlockLayoutConfig cfg = config("bigbird", s.block, causal);
        cfg.window = 40;
        cfg.global_blocks = 1;
        cfg.random_blocks = k;
        cfg.seed = 7;
        SCOPED_TRACE("Lq=" + std::to_string(s.Lq) + " Lk=" + std::to_string(s.Lk) +
                     " causal=" + std::to_string(causal) + " k=" + std::to_string(k));
        Brute b(s);
        auto L = ops::make_block_layout(cfg, s.Lq, s.Lk);
        expect_consistent(*L, s, causal);
        Pairs got = csr_pairs(*L);
        Pairs base = b.pairs([&](int64_t r, int64_t c) { return bigbird_base_keep(b, cfg, r, c); }, causal);
        for (const auto& p : base) EXPECT_TRUE(got.count(p)) << "missing base block " << p.first << "," << p.second;
        for (int64_t r = 0; r < b.nr; ++r) {
          std::set<int64_t> candidates;  // not in window/global, and not above the diagonal if causal
          for (int64_t c = 0; c < b.nc; ++c)
            if (!bigbird_base_keep(b, cfg, r, c) && (!causal || b.causal_ok(r, c))) candidates.insert(c);
          int64_t extra = 0;
          for (int64_t c = 0; c < b.nc; ++c)
            if (got.count({r, c}) && !base.count({r, c})) {
              EXPECT_TRUE(candidates.count(c)) << "row " << r << " random block " << c << " is not a candidate";
              ++extra;
            }
          EXPECT_EQ(extra, std::min<int64_t>(k, int64_t(candidates.size()))) << "row " << r;
        }
        expect_element_mask(*L, got);
      }
}

TEST(BlockLayout, BigBirdRandomBlocksAreAPureFunctionOfSeedAndRow) {
  BlockLayoutConfig cfg = config("bigbird", 32, true);
  cfg.window = 64;
  cfg.global_blocks = 2;
  cfg.random_blocks = 3;
  cfg.seed = 2024;
  auto a = ops::make_block_layout(cfg, 4096, 4096);
  // A field bigbird ignores still changes the cache key, so this is a fresh build.
  BlockLayoutConfig other = cfg;
  other.stride = 5;
  auto b = ops::make_block_layout(other, 4096, 4096);
  ASSERT_NE(a.get(), b.get());
  EXPECT_EQ(a->row_ptr, b->row_ptr);
  EXPECT_EQ(a->col_idx, b->col_idx);
  EXPECT_EQ(a->row_idx, b->row_idx);

  // Causal rows see only keys up to the diagonal, so a longer sequence leaves the rows it
  // shares with a shorter one (away from the window's reach of the end) unchanged.
  auto longer = ops::make_block_layout(cfg, 8192, 8192);
  int64_t shared = a->n_row_blocks;
  for (int64_t r = 0; r < shared; ++r) {
    std::vector<int64_t> ra(a->col_idx.begin() + a->row_ptr[r], a->col_idx.begin() + a->row_ptr[r + 1]);
    std::vector<int64_t> rl(longer->col_idx.begin() + longer->row_ptr[r],
                            longer->col_idx.begin() + longer->row_ptr[r + 1]);
    EXPECT_EQ(ra, rl) << "row " << r;
  }

  // Another seed moves the random blocks (the window and global blocks stay).
  BlockLayoutConfig reseeded = cfg;
  reseeded.seed = 2025;
  auto c = ops::make_block_layout(reseeded, 4096, 4096);
  int64_t differing_rows = 0;
  for (int64_t r = 0; r < shared; ++r) {
    std::vector<int64_t> ra(a->col_idx.begin() + a->row_ptr[r], a->col_idx.begin() + a->row_ptr[r + 1]);
    std::vector<int64_t> rc(c->col_idx.begin() + c->row_ptr[r], c->col_idx.begin() + c->row_ptr[r + 1]);
    differing_rows += ra != rc;
  }
  // Rows with at least 3 + 3 candidates all but surely differ; the first few rows have none.
  EXPECT_GT(differing_rows, shared * 9 / 10);

  // The picks spread over the candidates rather than clustering: over all rows of a non-causal
  // layout, random blocks land in both halves of the key range and in most key blocks.
  BlockLayoutConfig spread = config("bigbird", 32, false);
  spread.window = 0;
  spread.random_blocks = 3;
  spread.seed = 99;
  auto sp = ops::make_block_layout(spread, 4096, 4096);
  std::set<int64_t> hit;
  int64_t low = 0, high = 0;
  for (int64_t r = 0; r < sp->n_row_blocks; ++r)
    for (int64_t p = sp->row_ptr[r]; p < sp->row_ptr[r + 1]; ++p) {
      int64_t col = sp->col_idx[p];
      if (col == r) continue;  // the window-0 diagonal block
      hit.insert(col);
      (col < sp->n_col_blocks / 2 ? low : high) += 1;
    }
  EXPECT_EQ(low + high, 3 * sp->n_row_blocks);
  EXPECT_GT(int64_t(hit.size()), sp->n_col_blocks * 8 / 10);
  EXPECT_GT(low, (low + high) * 4 / 10);
  EXPECT_GT(high, (low + high) * 4 / 10);
}

TEST(BlockLayout, CausalLayoutsStayOnOrBelowTheDiagonal) {
  const std::vector<std::string> kinds = {"dense", "window", "bigbird", "strided", "dilated"};
  for (const auto& kind : kinds)
    for (const Shape& s : {Shape{256, 256, 32}, Shape{300, 300, 64}, Shape{100, 260, 32}, Shape{260, 100, 32}}) {
      BlockLayoutConfig cfg = config(kind, s.block, true);
      cfg.window = 70;
      cfg.global_blocks = 2;
      cfg.random_blocks = 4;
      cfg.stride = 3;
      SCOPED_TRACE(kind + " Lq=" + std::to_string(s.Lq) + " Lk=" + std::to_string(s.Lk));
      auto L = ops::make_block_layout(cfg, s.Lq, s.Lk);
      const int64_t d = s.Lk - s.Lq;
      for (int64_t r = 0; r < L->n_row_blocks; ++r)
        for (int64_t p = L->row_ptr[r]; p < L->row_ptr[r + 1]; ++p)
          EXPECT_LE(L->col_idx[p] * s.block, std::min(s.Lq - 1, (r + 1) * s.block - 1) + d)
              << "block (" << r << ", " << L->col_idx[p] << ") lies above the diagonal";
      auto m = ops::layout_element_mask(*L);
      for (int64_t i = 0; i < s.Lq; ++i)
        for (int64_t j = std::max<int64_t>(i + d + 1, 0); j < s.Lk; ++j)
          ASSERT_EQ(m[i * s.Lk + j], 0) << "i=" << i << " j=" << j;
      // With equal lengths every query keeps at least itself (the diagonal block).
      if (s.Lq == s.Lk) {
        for (int64_t i = 0; i < s.Lq; ++i) EXPECT_EQ(m[i * s.Lk + i], 1) << kind << " i=" << i;
      }
    }
}

TEST(BlockLayout, FromBlockMaskRoundTripsAndDropsBlocksAboveTheDiagonal) {
  BlockLayoutConfig cfg = config("strided", 32, false);
  cfg.stride = 3;
  auto L = ops::make_block_layout(cfg, 300, 250);
  std::vector<uint8_t> mask(L->n_row_blocks * L->n_col_blocks);
  for (int64_t r = 0; r < L->n_row_blocks; ++r)
    for (int64_t c = 0; c < L->n_col_blocks; ++c) mask[r * L->n_col_blocks + c] = L->has(r, c);
  auto M = ops::layout_from_block_mask(mask, 32, 300, 250, false);
  EXPECT_EQ(M->row_ptr, L->row_ptr);
  EXPECT_EQ(M->col_idx, L->col_idx);
  EXPECT_EQ(M->col_ptr, L->col_ptr);
  EXPECT_EQ(M->row_idx, L->row_idx);

  // A dense block mask with causal = true is exactly the dense causal layout.
  Shape s{200, 330, 64};
  Brute b(s);
  std::vector<uint8_t> ones(b.nr * b.nc, 1);
  auto C = ops::layout_from_block_mask(ones, s.block, s.Lq, s.Lk, true);
  expect_consistent(*C, s, true);
  Pairs want = b.pairs([](int64_t, int64_t) { return true; }, true);
  EXPECT_EQ(csr_pairs(*C), want);
  expect_element_mask(*C, want);
  EXPECT_EQ(csr_pairs(*C), csr_pairs(*ops::make_block_layout(config("dense", 64, true), s.Lq, s.Lk)));

  expect_throws_naming([] { ops::layout_from_block_mask(std::vector<uint8_t>(5, 1), 64, 300, 300, false); },
                       {"layout_from_block_mask", "5 entries", "5 x 5"});
  expect_throws_naming([] { ops::layout_from_block_mask({1}, 16, 16, 16, false); }, {"block", "16"});
}

TEST(BlockLayout, EmptySequencesGiveEmptyLayouts) {
  auto L = ops::make_block_layout(config("window", 64, true), 100, 0);
  EXPECT_EQ(L->n_row_blocks, 2);
  EXPECT_EQ(L->n_col_blocks, 0);
  EXPECT_EQ(L->nnz(), 0);
  EXPECT_EQ(L->row_ptr, (std::vector<int64_t>{0, 0, 0}));
  auto E = ops::make_block_layout(config("dense", 32, false), 0, 0);
  EXPECT_EQ(E->n_row_blocks, 0);
  EXPECT_EQ(E->row_ptr, std::vector<int64_t>{0});
  EXPECT_EQ(E->col_ptr, std::vector<int64_t>{0});
}

TEST(BlockLayout, CacheReturnsTheSameLayoutAndStaysBounded) {
  BlockLayoutConfig cfg = config("window", 64, true);
  cfg.window = 128;
  cfg.seed = 31337;  // unique to this test
  auto a = ops::make_block_layout(cfg, 1000, 1000);
  EXPECT_EQ(a.get(), ops::make_block_layout(cfg, 1000, 1000).get());
  EXPECT_NE(a.get(), ops::make_block_layout(cfg, 1000, 999).get());
  BlockLayoutConfig other = cfg;
  other.window = 129;
  EXPECT_NE(a.get(), ops::make_block_layout(other, 1000, 1000).get());
  // Many other configs push the first one out; rebuilding it yields an equal layout.
  for (int64_t i = 0; i < 200; ++i) ops::make_block_layout(cfg, 10 + i, 10 + i);
  auto again = ops::make_block_layout(cfg, 1000, 1000);
  EXPECT_NE(a.get(), again.get());
  EXPECT_EQ(a->col_idx, again->col_idx);
  EXPECT_EQ(a->row_ptr, again->row_ptr);
}

TEST(BlockLayout, BadConfigsThrowNamingTheField) {
  auto with = [](const std::function<void(BlockLayoutConfig&)>& f) {
    return [f] {
      BlockLayoutConfig c;
      f(c);
      ops::make_block_layout(c, 256, 256);
    };
  };
  expect_throws_naming(with([](BlockLayoutConfig& c) { c.kind = "sparse"; }),
                       {"kind", "sparse", "dense", "window", "bigbird", "strided", "dilated"});
  expect_throws_naming(with([](BlockLayoutConfig& c) { c.block = 48; }), {"block", "48"});
  expect_throws_naming(with([](BlockLayoutConfig& c) { c.window = -1; }), {"window", "-1"});
  expect_throws_naming(with([](BlockLayoutConfig& c) { c.global_blocks = -2; }), {"global_blocks", "-2"});
  expect_throws_naming(with([](BlockLayoutConfig& c) { c.random_blocks = -3; }), {"random_blocks", "-3"});
  expect_throws_naming(with([](BlockLayoutConfig& c) { c.stride = 0; }), {"stride", "0"});
  expect_throws_naming(with([](BlockLayoutConfig& c) { c.dilation = 0; }), {"dilation", "0"});
  expect_throws_naming([] { ops::make_block_layout(BlockLayoutConfig{}, -1, 10); }, {"Lq=-1"});
  expect_throws_naming([] { ops::make_block_layout(BlockLayoutConfig{}, 10, -5); }, {"Lk=-5"});
}

TEST(BlockLayout, LongBigBirdIsLinearInLength) {
  // Window 512 / block 64 / 2 global / 3 random at L = 65536: a non-global row holds at most
  // 2 * 512/64 + 1 window blocks + 2 global + 3 random = 22 blocks, whatever L is.
  for (bool causal : {false, true}) {
    BlockLayoutConfig cfg = config("bigbird", 64, causal);
    cfg.window = 512;
    cfg.global_blocks = 2;
    cfg.random_blocks = 3;
    cfg.seed = 8675309;  // unique to this test, so the layout is built, not found in the cache
    const int64_t L = 65536;
    auto t0 = std::chrono::steady_clock::now();
    auto lay = ops::make_block_layout(cfg, L, L);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(seconds, 0.5) << "building took " << seconds << " s";
    const int64_t nb = L / 64, bound = 2 * 512 / 64 + 1 + 2 + 3;
    ASSERT_EQ(lay->n_row_blocks, nb);
    for (int64_t r = 0; r < nb; ++r) {
      int64_t n = lay->row_ptr[r + 1] - lay->row_ptr[r];
      if (r < cfg.global_blocks)
        EXPECT_EQ(n, causal ? r + 1 : nb);
      else if (r >= 16 && r < nb - 16)  // window unclipped, disjoint from the globals, >= 3 candidates
        EXPECT_EQ(n, causal ? 9 + 2 + 3 : 17 + 2 + 3) << "row " << r;
      else
        EXPECT_LE(n, bound) << "row " << r;
    }
    EXPECT_LE(lay->nnz(), 2 * nb + bound * nb);
    for (int64_t c = 0; c < cfg.global_blocks; ++c)  // global key blocks are seen by every row
      EXPECT_EQ(lay->col_ptr[c + 1] - lay->col_ptr[c], nb - (causal ? c : 0));
  }
}
