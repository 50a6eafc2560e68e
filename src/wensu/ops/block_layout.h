// Block-sparse attention layouts: which (query block, key block) pairs are computed. A layout
// is data, a compressed row list of nonzero blocks, built once per (config, Lq, Lk) and cached.
// Layout families (block size 32/64/128):
//   dense     every block
//   window    local: key blocks within `window` tokens of the query block (Longformer)
//   bigbird   window + `global_blocks` global blocks (attend to and attended by all) +
//             `random_blocks` seeded random key blocks per query row block (Zaheer et al. 2020)
//   strided   fixed pattern of the Sparse Transformer (Child et al. 2019): the local block
//             band of width `stride` blocks plus every key block whose index is stride-1 mod stride
//   dilated   window of `window` tokens each side, keeping every `dilation`-th key block
// `causal` keeps only key blocks at or before the query block and masks j > i inside the
// diagonal blocks. User-given masks: layout_from_block_mask().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wensu::ops {

struct BlockLayoutConfig {
  std::string kind = "dense";  // dense | window | bigbird | strided | dilated
  int64_t block = 64;          // tokens per block (32, 64 or 128)
  int64_t window = 512;        // window / bigbird / dilated: tokens on each side of the query block
  int64_t global_blocks = 0;   // bigbird: the first g key blocks and query blocks are global
  int64_t random_blocks = 0;   // bigbird: random key blocks per query row block
  int64_t stride = 8;          // strided: period in blocks
  int64_t dilation = 2;        // dilated: keep every d-th key block in the window
  bool causal = false;
  uint64_t seed = 0;           // random blocks are a pure function of (seed, row block)
};

// Nonzero blocks as CSR (by query row block) and CSC (by key column block, for dK/dV in
// backward without write races). Column indices are sorted and unique within each row.
struct BlockLayout {
  int64_t block = 64;
  int64_t Lq = 0, Lk = 0;                     // tokens; the last block may be partial
  int64_t n_row_blocks = 0, n_col_blocks = 0;
  bool causal = false;                        // mask j > i + (Lk - Lq) inside blocks
  std::vector<int64_t> row_ptr, col_idx;      // CSR: [n_row_blocks + 1], [nnz]
  std::vector<int64_t> col_ptr, row_idx;      // CSC: [n_col_blocks + 1], [nnz]
  int64_t nnz() const { return int64_t(col_idx.size()); }
  bool has(int64_t row_block, int64_t col_block) const;
};

// Builds (or returns the cached) layout for this config and these lengths. Throws on bad
// configs (unknown kind, block not in {32, 64, 128}, negative counts).
std::shared_ptr<const BlockLayout> make_block_layout(const BlockLayoutConfig& cfg, int64_t Lq, int64_t Lk);

// A layout from a user-given block mask [n_row_blocks x n_col_blocks] (row-major, nonzero = keep).
std::shared_ptr<const BlockLayout> layout_from_block_mask(const std::vector<uint8_t>& mask, int64_t block,
                                                          int64_t Lq, int64_t Lk, bool causal);

// The element-level mask a layout means (1 = query i may attend key j), [Lq x Lk] row-major;
// for tests and references only (O(L^2)).
std::vector<uint8_t> layout_element_mask(const BlockLayout& layout);

}  // namespace wensu::ops
