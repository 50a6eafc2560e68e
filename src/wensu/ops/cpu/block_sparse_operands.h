// The GEMM operands of the CPU block-sparse attention kernels, in one of two forms:
//
// - tiles (float32, D and Dv multiples of 16, an AVX-512 CPU): once per head, a thread copies
//   the keys and values of the head it works on into contiguous rows or packs them into panels,
//   whichever forms its pass reads, and it copies each query block's Q and dO rows contiguous,
//   once per block. The tensors' own rows lie H * D floats apart (2 KiB for 8 x 64), a stride
//   that maps every row to the same few cache sets, so a tile's operands evicted each other;
//   contiguous copies fit in L1 and the tile GEMMs of attention_tiles.h read them with no
//   per-call packing;
// - plain: views of the tensors, and the products go to ops::cpu::gemm (oneDNN, or Eigen for
//   float64).
//
// Both give the same products up to float rounding; tests run both.
#pragma once
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "wensu/ops/block_sparse_attention.h"
#include "wensu/ops/cpu/attention_tiles.h"
#include "wensu/ops/cpu/blas.h"

namespace wensu::ops::cpu::block_sparse {

using Params = BlockSparseAttentionParams;

// rows of a matrix operand: row i at p + i * ld.
template <typename T>
struct Rows {
  const T* p = nullptr;
  int64_t ld = 0;
  const T* row(int64_t i) const { return p + i * ld; }
};

// Blocks are 32, 64 or 128 tokens, so every key block starts on a panel boundary.
template <typename T>
bool use_tiles(const Params& p) {
  return std::is_same_v<T, float> && p.D % 16 == 0 && p.Dv % 16 == 0 && p.block % tiles::kPanel == 0 &&
         tiles::enabled();
}

// C[m x N] += alpha * op(A)[m x k] @ B[k x N]: the accumulating products of a tile (P V, dS K,
// P^T dO, dS^T Q). op(A) = A^T when ta (A stored [k x m]).
template <typename T>
inline void accumulate(bool use, bool ta, int64_t m, int64_t N, int64_t k, T alpha, const T* a, int64_t lda,
                       Rows<T> b, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (use) return tiles::accumulate(m, N, k, alpha, a, ta ? 1 : lda, ta ? lda : 1, b.p, b.ld, c, ldc);
  }
  gemm(ta, false, m, N, k, alpha, a, lda, b.p, b.ld, T(1), c, ldc);
}

// Rows copied contiguous when the tiles are used (a query block's Q or dO), else the view.
template <typename T>
class BlockRows {
 public:
  Rows<T> load(bool use, const T* src, int64_t ld, int64_t m, int64_t width) {
    if (!use) return {src, ld};
    buf_.resize(size_t(m * width));
    for (int64_t r = 0; r < m; ++r) std::memcpy(buf_.data() + r * width, src + r * ld, size_t(width) * sizeof(T));
    return {buf_.data(), width};
  }

 private:
  std::vector<T> buf_;
};

// One thread's keys or values of its current head: the rows (contiguous copies with tiles) and,
// with tiles, their panels. Loading the head already loaded is free, so a thread that takes
// several query blocks of one head in a row copies and packs it once.
template <typename T>
class HeadRows {
 public:
  // n rows of `width` values, row j at src + j * ld; key identifies them (say, the head), so that
  // loading the same rows again is free. With tiles, `rows` asks for a contiguous copy (for
  // from()) and `panels` for the packed form (for scores()); only what is asked for is made.
  void load(bool use, int64_t key, const T* src, int64_t ld, int64_t n, int64_t width, bool rows, bool panels) {
    width_ = width;
    use_ = false;
    if constexpr (std::is_same_v<T, float>) {
      if (use) {
        use_ = true;
        if (key == key_) return;
        if (rows) {
          float* dst = rows_buf_.reserve(n * width);
          for (int64_t j = 0; j < n; ++j) std::memcpy(dst + j * width, src + j * ld, size_t(width) * sizeof(float));
          rows_ = {dst, width};
        } else {
          rows_ = {};
        }
        if (panels) tiles::pack_panels(src, ld, n, width, panel_buf_.reserve(tiles::packed_floats(n, width)));
        key_ = key;
        return;
      }
    }
    rows_ = {src, ld};
    key_ = -1;
  }

  // Drops the key: the next load makes its copies whatever key it has (keys of different loops
  // may coincide).
  void forget() { key_ = -1; }

  // Rows j0, j0 + 1, ... (a B operand of `accumulate`).
  Rows<T> from(int64_t j0) const { return {rows_.row(j0), rows_.ld}; }

  // S[m x n] = alpha * A[m x width] @ X[j0 : j0 + n]^T; j0 a multiple of 32 with tiles.
  void scores(int64_t m, int64_t n, T alpha, Rows<T> a, int64_t j0, T* s, int64_t lds) const {
    if constexpr (std::is_same_v<T, float>) {
      if (use_)
        return tiles::scores(m, n, width_, alpha, a.p, a.ld, panel_buf_.data() + j0 * width_, s, lds);
    }
    gemm(false, true, m, n, width_, alpha, a.p, a.ld, rows_.row(j0), rows_.ld, T(0), s, lds);
  }

 private:
  bool use_ = false;
  int64_t key_ = -1, width_ = 0;
  Rows<T> rows_;
  tiles::PanelBuffer rows_buf_, panel_buf_;
};

}  // namespace wensu::ops::cpu::block_sparse
