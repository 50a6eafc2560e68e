// Block-sparse attention beyond the op harness: with a dense layout it is dense attention (on a
// shape with several full blocks per row, where the online softmax rescales many times), the
// result does not depend on the thread count, long sequences run in memory linear in L, and bad
// arguments get messages that say what to fix.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>

#include "ops/harness.h"
#include "test_support.h"
#include "wensu/core/allocator.h"
#include "wensu/core/generator.h"
#include "wensu/ops/attention.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/block_sparse_attention.h"
#include "wensu/ops/cpu/attention_tiles.h"
#include "wensu/ops/reduce.h"

using namespace wensu;
using test::max_rel_error;

namespace {

struct ThreadCountGuard {
  int prev = omp_get_max_threads();
  ~ThreadCountGuard() { omp_set_num_threads(prev); }
};

struct Qkv {
  Tensor q, k, v;
};

Qkv random_qkv(int64_t B, int64_t L, int64_t H, int64_t D, uint64_t seed) {
  Generator g(seed);
  Qkv x{Tensor::randn({B, L, H, D}, g), Tensor::randn({B, L, H, D}, g), Tensor::randn({B, L, H, D}, g)};
  x.q.set_requires_grad(true);
  x.k.set_requires_grad(true);
  x.v.set_requires_grad(true);
  return x;
}

// Runs forward and backward of sum(attn(q, k, v) * w); returns {out, dq, dk, dv}.
template <class F>
std::vector<Tensor> forward_backward(const Qkv& x, const Tensor& w, F attn) {
  x.q.zero_grad();
  x.k.zero_grad();
  x.v.zero_grad();
  Tensor out = attn(x.q, x.k, x.v);
  ops::sum(ops::mul(out, w)).backward();
  return {out.detach(), x.q.grad(), x.k.grad(), x.v.grad()};
}

using test::error_of;

ops::BlockLayoutConfig config(std::string kind, int64_t block, bool causal = false) {
  ops::BlockLayoutConfig c;
  c.kind = std::move(kind);
  c.block = block;
  c.causal = causal;
  return c;
}

}  // namespace

// Restores the CPU backward schedule and tile GEMMs a test chose.
struct ScheduleGuard {
  ~ScheduleGuard() {
    ops::cpu::set_backward_schedule(ops::cpu::BackwardSchedule::kAuto);
    ops::cpu::tiles::set_enabled(true);
  }
};

// Both GEMM paths (AVX-512 tiles where the CPU has them, and sgemm), both backward schedules.
TEST(BlockSparseAttention, DenseLayoutEqualsDenseAttention) {
  ScheduleGuard guard;
  for (int variant = 0; variant < 4; ++variant) {
    const auto schedule = variant % 2 ? ops::cpu::BackwardSchedule::kSplit : ops::cpu::BackwardSchedule::kPerHead;
    ops::cpu::set_backward_schedule(schedule);
    ops::cpu::tiles::set_enabled(variant < 2);
    const int64_t B = 2, L = 300, H = 4, D = 32;
    Qkv x = random_qkv(B, L, H, D, 1);
    Generator g(2);
    Tensor w = Tensor::randn({B, L, H, D}, g);
    std::vector<int64_t> pad(size_t(B * L), 0);
    for (int64_t j = 250; j < L; ++j) pad[size_t(L + j)] = 1;  // batch 1 is 250 tokens long
    Tensor key_padding = Tensor::from_vector(pad, {B, L});
    for (bool causal : {false, true}) {
      for (bool padded : {false, true}) {
        auto layout = ops::make_block_layout(config("dense", 64, causal), L, L);
        Tensor kp = padded ? key_padding : Tensor();
        auto want = forward_backward(x, w, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return ops::attention(q, k, v, {kp, causal});
        });
        auto got = forward_backward(x, w, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return ops::block_sparse_attention(q, k, v, *layout, kp);
        });
        const char* names[] = {"output", "dq", "dk", "dv"};
        for (size_t i = 0; i < got.size(); ++i)
          EXPECT_LE(max_rel_error(got[i], want[i]), 1e-5) << names[i] << " (causal " << causal << ", padded "
                                                            << padded << ", schedule " << int(schedule)
                                                            << ", tiles " << (variant < 2) << ")";
      }
    }
  }
}

// The two backward schedules compute the same gradients (rounded differently) on a sparse
// causal layout with padding and a ragged last block.
TEST(BlockSparseAttention, PerHeadAndSplitSchedulesAgree) {
  ScheduleGuard guard;
  const int64_t B = 2, L = 330, H = 3, D = 16;
  Qkv x = random_qkv(B, L, H, D, 8);
  Generator g(9);
  Tensor w = Tensor::randn({B, L, H, D}, g);
  auto cfg = config("bigbird", 32, true);
  cfg.window = 64, cfg.global_blocks = 1, cfg.random_blocks = 2, cfg.seed = 3;
  auto layout = ops::make_block_layout(cfg, L, L);
  std::vector<int64_t> pad(size_t(B * L), 0);
  for (int64_t j = 300; j < L; ++j) pad[size_t(L + j)] = 1;
  Tensor kp = Tensor::from_vector(pad, {B, L});
  auto run = [&](ops::cpu::BackwardSchedule s) {
    ops::cpu::set_backward_schedule(s);
    return forward_backward(x, w, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
      return ops::block_sparse_attention(q, k, v, *layout, kp);
    });
  };
  auto per_head = run(ops::cpu::BackwardSchedule::kPerHead), split = run(ops::cpu::BackwardSchedule::kSplit);
  EXPECT_EQ(per_head[0].to_vector<float>(), split[0].to_vector<float>());  // same forward
  for (size_t i = 1; i < per_head.size(); ++i) EXPECT_LE(max_rel_error(per_head[i], split[i]), 1e-5) << i;
}

// The AVX-512 tile GEMMs and sgemm agree on a sparse causal layout with padding, a ragged last
// block and head dims 64 and 48 (several panels; a column tail of the accumulating products).
TEST(BlockSparseAttention, TileGemmsAgreeWithSgemm) {
  ScheduleGuard guard;
  if (!ops::cpu::tiles::enabled()) GTEST_SKIP() << "no AVX-512F on this CPU";
  for (int64_t D : {64, 48}) {
    const int64_t B = 2, L = 390, H = 2;
    Qkv x = random_qkv(B, L, H, D, 10 + D);
    Generator g(11);
    Tensor w = Tensor::randn({B, L, H, D}, g);
    auto cfg = config("bigbird", 64, true);
    cfg.window = 128, cfg.global_blocks = 1, cfg.random_blocks = 2, cfg.seed = 4;
    auto layout = ops::make_block_layout(cfg, L, L);
    std::vector<int64_t> pad(size_t(B * L), 0);
    for (int64_t j = 350; j < L; ++j) pad[size_t(L + j)] = 1;
    Tensor kp = Tensor::from_vector(pad, {B, L});
    for (auto schedule : {ops::cpu::BackwardSchedule::kPerHead, ops::cpu::BackwardSchedule::kSplit}) {
      ops::cpu::set_backward_schedule(schedule);
      auto run = [&](bool tiles) {
        ops::cpu::tiles::set_enabled(tiles);
        return forward_backward(x, w, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
          return ops::block_sparse_attention(q, k, v, *layout, kp);
        });
      };
      auto with_tiles = run(true), with_sgemm = run(false);
      for (size_t i = 0; i < with_tiles.size(); ++i)
        EXPECT_LE(max_rel_error(with_tiles[i], with_sgemm[i]), 1e-5) << "D " << D << " tensor " << i;
    }
  }
}

// Holds for each schedule; here B * H = 6 takes the per-head one for 1 and for 2 threads.
TEST(BlockSparseAttention, SameResultForOneAndTwoThreads) {
  ThreadCountGuard guard;
  const int64_t B = 2, L = 520, H = 3, D = 32;
  Qkv x = random_qkv(B, L, H, D, 3);
  Generator g(4);
  Tensor w = Tensor::randn({B, L, H, D}, g);
  auto cfg = config("bigbird", 64, true);
  cfg.window = 128, cfg.global_blocks = 1, cfg.random_blocks = 2, cfg.seed = 5;
  auto layout = ops::make_block_layout(cfg, L, L);
  std::vector<int64_t> pad(size_t(B * L), 0);
  for (int64_t j = 500; j < L; ++j) pad[size_t(j)] = 1;
  Tensor kp = Tensor::from_vector(pad, {B, L});
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    return forward_backward(x, w, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
      return ops::block_sparse_attention(q, k, v, *layout, kp);
    });
  };
  auto one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i].to_vector<float>(), two[i].to_vector<float>()) << i;
}

TEST(BlockSparseAttention, LongWindowRunsInLinearMemory) {
  const int64_t B = 1, L = 4096, H = 2, D = 16;
  auto cfg = config("window", 64);
  cfg.window = 256;
  auto layout = ops::make_block_layout(cfg, L, L);
  Qkv x = random_qkv(B, L, H, D, 6);
  Generator g(7);
  Tensor w = Tensor::randn({B, L, H, D}, g);
  reset_peak_memory();
  auto r = forward_backward(x, w, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
    return ops::block_sparse_attention(q, k, v, *layout);
  });
  const size_t peak = cpu_allocator_stats().peak_bytes;
  const size_t per_input = size_t(B * L * H * D) * sizeof(float);  // 0.5 MiB
  const size_t dense_scores = size_t(B * H * L * L) * sizeof(float);  // 128 MiB
  // Live at the peak: a dozen [B, L, H, D] tensors (q, k, v, w, the output, out * w, the
  // gradients flowing back, dq, dk, dv) and the LSE; nothing of size L^2.
  EXPECT_LE(peak, 16 * per_input) << "peak " << peak << " bytes";
  EXPECT_LE(peak, dense_scores / 16) << "peak " << peak << " bytes";
  EXPECT_TRUE(std::isfinite(r[1].to_vector<float>()[0]));
}

TEST(BlockSparseAttention, ExplainsBadArguments) {
  Tensor q = Tensor::ones({1, 70, 2, 8}), k = Tensor::ones({1, 70, 2, 8}), v = Tensor::ones({1, 70, 2, 8});
  auto layout = ops::make_block_layout(config("dense", 32), 64, 64);
  std::string e = error_of([&] { ops::block_sparse_attention(q, k, v, *layout); });
  EXPECT_NE(e.find("layout was built for Lq = 64, Lk = 64"), std::string::npos) << e;

  auto good = ops::make_block_layout(config("dense", 32), 70, 70);
  e = error_of([&] { ops::block_sparse_attention(q, k, v, *good, Tensor::zeros({1, 69}, DType::i64)); });
  EXPECT_NE(e.find("key_padding must be int64 [B, Lk] = [1, 70]"), std::string::npos) << e;

  e = error_of([&] { ops::block_sparse_attention(q, Tensor::ones({1, 70, 2, 4}), v, *good); });
  EXPECT_NE(e.find("shapes do not agree"), std::string::npos) << e;

  ops::BlockLayout broken = *good;
  broken.col_idx.back() = 7;  // only 3 column blocks exist
  e = error_of([&] { ops::block_sparse_attention(q, k, v, broken); });
  EXPECT_NE(e.find("outside [0, 3)"), std::string::npos) << e;
}

TEST(BlockSparseAttention, QueriesThatSeeNothingGetZerosAndNoGradient) {
  // Row block 1 of this mask is empty: its queries' outputs and gradients are exactly zero.
  const int64_t L = 64;
  auto layout = ops::layout_from_block_mask({1, 0, 0, 0}, 32, L, L, false);
  Qkv x = random_qkv(1, L, 1, 8, 8);
  Generator g(9);
  Tensor w = Tensor::randn({1, L, 1, 8}, g);
  auto r = forward_backward(x, w, [&](const Tensor& q, const Tensor& k, const Tensor& v) {
    return ops::block_sparse_attention(q, k, v, *layout);
  });
  auto out = r[0].to_vector<float>(), dq = r[1].to_vector<float>(), dk = r[2].to_vector<float>();
  for (int64_t i = 32 * 8; i < L * 8; ++i) {
    EXPECT_EQ(out[size_t(i)], 0.0f);
    EXPECT_EQ(dq[size_t(i)], 0.0f);
    EXPECT_EQ(dk[size_t(i)], 0.0f);  // keys 32..63 are seen by nobody
  }
}
