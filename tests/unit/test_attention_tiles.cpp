// The AVX-512 tile GEMMs of the CPU attention kernels against plain double loops, on fresh random
// shapes: ragged row and column counts (micro-tile tails, masked panel stores), several depths
// (past the 128-row depth block), both layouts of A, strided operands. Skipped on CPUs without
// AVX-512F, where the kernels never run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "wensu/core/check.h"
#include "wensu/ops/cpu/attention_tiles.h"

using namespace wensu::ops::cpu;

namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> x(n);
  for (auto& v : x) v = normal(rng);
  return x;
}

// max |got - want| / max(max |want|, 1)
double rel_error(const std::vector<double>& want, const float* got, int64_t rows, int64_t cols, int64_t ld) {
  double err = 0, scale = 1;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      err = std::max(err, std::abs(double(got[i * ld + j]) - want[size_t(i * cols + j)]));
      scale = std::max(scale, std::abs(want[size_t(i * cols + j)]));
    }
  return err / scale;
}

#define SKIP_WITHOUT_TILES() \
  if (!tiles::enabled()) GTEST_SKIP() << "no AVX-512F on this CPU"

}  // namespace

TEST(AttentionTiles, PackPanelsTransposesRowsAndZeroPadsTheLastPanel) {
  std::mt19937 rng(1);
  for (int64_t n : {1, 31, 32, 33, 100}) {
    for (int64_t D : {16, 64}) {
      const int64_t ld = D + 7;
      auto x = random_vector(size_t(n * ld), rng);
      std::vector<float> out(size_t(tiles::packed_floats(n, D)), -1.0f);
      tiles::pack_panels(x.data(), ld, n, D, out.data());
      for (int64_t j = 0; j < (n + 31) / 32 * 32; ++j)
        for (int64_t d = 0; d < D; ++d) {
          const float want = j < n ? x[size_t(j * ld + d)] : 0.0f;
          ASSERT_EQ(out[size_t(j / 32 * 32 * D + d * 32 + j % 32)], want) << "n " << n << " row " << j << " col " << d;
        }
    }
  }
}

TEST(AttentionTiles, ScoresMatchDoubleReference) {
  SKIP_WITHOUT_TILES();
  std::mt19937 rng(2);
  std::uniform_int_distribution<int64_t> rows(1, 70), cols(1, 600);
  for (int trial = 0; trial < 24; ++trial) {
    const int64_t D = 16 * (1 + trial % 8), m = rows(rng), n = cols(rng);
    const int64_t lda = D + 5, ldx = D + 3, ldc = n + 11;
    const float alpha = 0.125f * float(1 + trial % 3);
    auto a = random_vector(size_t(m * lda), rng), x = random_vector(size_t(n * ldx), rng);
    std::vector<float> panels(size_t(tiles::packed_floats(n, D))), c(size_t(m * ldc), 7.0f);
    tiles::pack_panels(x.data(), ldx, n, D, panels.data());
    tiles::scores(m, n, D, alpha, a.data(), lda, panels.data(), c.data(), ldc);
    std::vector<double> want(size_t(m * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(a[size_t(i * lda + d)]) * x[size_t(j * ldx + d)];
        want[size_t(i * n + j)] = alpha * s;
      }
    EXPECT_LE(rel_error(want, c.data(), m, n, ldc), 1e-5) << "m " << m << " n " << n << " D " << D;
    for (int64_t i = 0; i < m; ++i)  // nothing written past column n
      for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[size_t(i * ldc + j)], 7.0f) << "row " << i << " col " << j;
  }
}

TEST(AttentionTiles, AccumulateMatchesDoubleReferenceForBothLayoutsOfA) {
  SKIP_WITHOUT_TILES();
  std::mt19937 rng(3);
  std::uniform_int_distribution<int64_t> rows(1, 530), depth(1, 600);
  for (int trial = 0; trial < 24; ++trial) {
    const bool transposed = trial % 2 == 1;
    const int64_t N = 16 * (1 + trial % 9), m = rows(rng), k = depth(rng);
    const int64_t lda = (transposed ? m : k) + 9, ldb = N + 13, ldc = N + 6;
    const float alpha = trial % 3 == 0 ? 1.0f : 0.3f;
    auto a = random_vector(size_t((transposed ? k : m) * lda), rng), b = random_vector(size_t(k * ldb), rng);
    auto c = random_vector(size_t(m * ldc), rng);
    std::vector<double> want(size_t(m * N));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t kk = 0; kk < k; ++kk)
          s += double(transposed ? a[size_t(kk * lda + i)] : a[size_t(i * lda + kk)]) * b[size_t(kk * ldb + j)];
        want[size_t(i * N + j)] = c[size_t(i * ldc + j)] + alpha * s;
      }
    tiles::accumulate(m, N, k, alpha, a.data(), transposed ? 1 : lda, transposed ? lda : 1, b.data(), ldb, c.data(),
                      ldc);
    EXPECT_LE(rel_error(want, c.data(), m, N, ldc), 1e-5)
        << "m " << m << " N " << N << " k " << k << " transposed " << transposed;
  }
}

TEST(AttentionTiles, UnsupportedWidthsAreRejected) {
  SKIP_WITHOUT_TILES();
  std::vector<float> a(64), b(64), c(64);
  EXPECT_THROW(tiles::accumulate(1, 8, 1, 1.0f, a.data(), 1, 1, b.data(), 8, c.data(), 8), wensu::Error);
  EXPECT_THROW(tiles::scores(1, 1, 8, 1.0f, a.data(), 8, b.data(), c.data(), 1), wensu::Error);
}
