// The masked-LM data stream: deterministic, resumable from its cursor to the same batches,
// within the token budget, grouped by length, masked at ESM-2's rates, and split across ranks
// without losing or repeating a row.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <unistd.h>

#include "wensu/core/generator.h"
#include "wensu/train/mlm_data.h"

using namespace wensu;
namespace fs = std::filesystem;

namespace {

// Two shards of random protein sequences (lengths 5..300) in a fresh temp dir.
std::vector<std::string> make_shards(const std::string& tag) {
  const fs::path dir = fs::temp_directory_path() / ("wensu_mlm_" + tag + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::mt19937 rng(7);
  const std::string aa = "ACDEFGHIKLMNPQRSTVWY";
  std::vector<std::string> files;
  for (int s = 0; s < 2; ++s) {
    const std::string path = (dir / ("shard-" + std::to_string(s) + ".fasta")).string();
    std::ofstream out(path);
    for (int r = 0; r < 150; ++r) {
      out << ">UniRef50_S" << s << "R" << r << " test n=1 Tax=none TaxID=0 RepID=X\n";
      const int len = 5 + int(rng() % 296);
      for (int i = 0; i < len; ++i) out << aa[rng() % aa.size()] << ((i + 1) % 60 == 0 ? "\n" : "");
      out << "\n";
    }
    files.push_back(path);
  }
  return files;
}

train::MlmDataConfig config(const std::vector<std::string>& files) {
  train::MlmDataConfig c;
  c.files = files;
  c.max_len = 128;
  c.tokens_per_batch = 1024;
  c.pool = 64;
  c.seed = 3;
  return c;
}

bool same(const train::MlmBatch& a, const train::MlmBatch& b) {
  return a.index == b.index && a.tokens.to_vector<int64_t>() == b.tokens.to_vector<int64_t>() &&
         a.targets.to_vector<int64_t>() == b.targets.to_vector<int64_t>();
}

}  // namespace

TEST(MlmData, DeterministicAndResumableFromTheCursor) {
  auto files = make_shards("resume");
  train::MlmStream a(config(files));
  std::vector<train::MlmBatch> batches(60);  // more than one epoch of 300 sequences
  for (auto& b : batches) ASSERT_TRUE(a.next(b));
  EXPECT_GE(a.epoch(), 1);
  train::MlmStream again(config(files));
  train::MlmBatch b;
  for (auto& want : batches) {
    ASSERT_TRUE(again.next(b));
    EXPECT_TRUE(same(b, want)) << "batch " << want.index;
  }
  // Cursors taken mid-pool, at pool ends and across the epoch boundary all resume exactly.
  for (int cut : {1, 5, 17, 33, 47}) {
    train::MlmStream s(config(files));
    for (int i = 0; i < cut; ++i) s.next(b);
    Tensor cursor = s.cursor();
    train::MlmStream resumed(config(files));
    resumed.restore(cursor);
    for (int i = cut; i < 60; ++i) {
      ASSERT_TRUE(resumed.next(b));
      EXPECT_TRUE(same(b, batches[size_t(i)])) << "cut " << cut << " batch " << i;
    }
  }
  // Another seed gives other batches.
  auto c = config(files);
  c.seed = 4;
  train::MlmStream other(c);
  other.next(b);
  EXPECT_FALSE(same(b, batches[0]));
}

TEST(MlmData, BudgetLengthGroupingAndMaskRates) {
  auto files = make_shards("stats");
  auto cfg = config(files);
  cfg.repeat = false;
  train::MlmStream s(cfg);
  train::MlmBatch b;
  int64_t sequences = 0, residues = 0, masked = 0, as_mask = 0, kept = 0, padding = 0, slots = 0;
  while (s.next(b)) {
    const int64_t B = b.tokens.size(0), L = b.tokens.size(1);
    EXPECT_LE(B * L, cfg.tokens_per_batch);
    EXPECT_LE(L, cfg.max_len);
    sequences += B;
    slots += B * L;
    const auto t = b.tokens.to_vector<int64_t>(), g = b.targets.to_vector<int64_t>();
    for (int64_t r = 0; r < B; ++r) {
      EXPECT_EQ(t[size_t(r * L)], 0) << "<cls> first";
      for (int64_t c = 0; c < L; ++c) {
        const int64_t tok = t[size_t(r * L + c)], tgt = g[size_t(r * L + c)];
        if (tok == 1) ++padding;
        if (tok >= 4 && tok <= 30) ++residues;
        if (tgt == -100) continue;
        EXPECT_TRUE(tgt >= 4 && tgt <= 30) << "only residues are targets";
        ++masked;
        if (tok == 32) ++as_mask;
        if (tok == tgt) ++kept;
      }
    }
  }
  EXPECT_EQ(sequences, 300);  // one pass, nothing lost
  const double total = double(residues + as_mask);
  EXPECT_NEAR(double(masked) / total, 0.15, 0.01);
  EXPECT_NEAR(double(as_mask) / double(masked), 0.8, 0.03);
  EXPECT_NEAR(double(kept) / double(masked), 0.1 + 0.1 / 20, 0.03);  // 10% kept, and 1/20 of the random ones
  // Length grouping keeps padding low: random lengths batched at random would pad ~45%.
  EXPECT_LT(double(padding) / double(slots), 0.2);
}

TEST(MlmData, RankRowsSplitEveryRowOnce) {
  auto files = make_shards("ranks");
  train::MlmStream s(config(files));
  train::MlmBatch g;
  s.next(g);
  int64_t rows = 0, masked = 0;
  for (int r = 0; r < 3; ++r) {
    train::MlmBatch part = train::rank_rows(g, r, 3);
    rows += part.sequences;
    masked += part.masked;
    const auto all = g.tokens.to_vector<int64_t>(), mine = part.tokens.to_vector<int64_t>();
    const int64_t L = g.tokens.size(1);
    for (int64_t i = 0; i < part.sequences; ++i)
      EXPECT_TRUE(std::equal(mine.begin() + i * L, mine.begin() + (i + 1) * L, all.begin() + (r + 3 * i) * L));
  }
  EXPECT_EQ(rows, g.sequences);
  EXPECT_EQ(masked, g.masked);
}

// Data streams deal the shards out: over one pass each stream reads only its own files, the
// streams together read every record once, and every stream's share of the budget holds.
TEST(MlmData, StreamsReadDisjointShardsAndTogetherAll) {
  auto files = make_shards("streams");
  auto more = make_shards("streams2");  // four shards (the second call reuses the same records, renamed)
  files.insert(files.end(), more.begin(), more.end());
  auto cfg = config(files);
  cfg.repeat = false;
  std::multiset<std::vector<int64_t>> seen_by_streams;
  for (int64_t s = 0; s < 2; ++s) {
    auto c = cfg;
    c.stream = s;
    c.streams = 2;
    c.tokens_per_batch = cfg.tokens_per_batch / 2;
    train::MlmStream stream(c);
    train::MlmBatch b;
    int64_t sequences = 0;
    while (stream.next(b)) {
      EXPECT_LE(b.tokens.size(0) * b.tokens.size(1), c.tokens_per_batch);
      const auto t = b.targets.to_vector<int64_t>();
      sequences += b.sequences;
      for (int64_t r = 0; r < b.sequences; ++r)
        seen_by_streams.insert(std::vector<int64_t>(t.begin() + r * b.tokens.size(1), t.begin() + (r + 1) * b.tokens.size(1)));
    }
    EXPECT_EQ(sequences, 300) << "stream " << s << " reads two of the four shards";
  }
  EXPECT_EQ(seen_by_streams.size(), 600u);
}

// A share of all streams (one process) gives, step by step, the rows of the per-rank shares
// stacked in rank order; cursors gathered from the ranks resume either form.
TEST(MlmData, OneShareOfAllStreamsEqualsTheRankSharesStacked) {
  auto files = make_shards("share");
  auto cfg = config(files);
  train::MlmShare whole(cfg, 2, 0, 2), rank0(cfg, 2, 0, 1), rank1(cfg, 2, 1, 1);
  for (int step = 0; step < 12; ++step) {
    const auto all = train::MlmShare::stack(whole.next_parts());
    const auto p0 = rank0.next_parts(), p1 = rank1.next_parts();
    EXPECT_TRUE(same(all, train::MlmShare::stack({p0[0], p1[0]}))) << "step " << step;
  }
  Tensor cursors = rank0.cursors();
  const auto c1 = rank1.cursors().to_vector<int64_t>();
  auto merged = cursors.to_vector<int64_t>();
  for (size_t i = 0; i < merged.size(); ++i) merged[i] += c1[i];  // what the ranks' all-reduce does
  EXPECT_EQ(merged, whole.cursors().to_vector<int64_t>());
  train::MlmShare resumed(cfg, 2, 0, 2);
  resumed.restore(Tensor::from_vector(merged, {2, 7}));
  for (int step = 0; step < 5; ++step)
    EXPECT_TRUE(same(train::MlmShare::stack(resumed.next_parts()), train::MlmShare::stack(whole.next_parts())))
        << "step " << step;
}

TEST(MlmData, MoreStreamsThanShardsIsAClearError) {
  auto files = make_shards("toofew");
  try {
    train::MlmShare share(config(files), 3, 0, 3);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 FASTA file(s) for 3 data streams"), std::string::npos) << e.what();
  }
}
