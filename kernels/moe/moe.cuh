// Mixture-of-experts CUDA kernels, the GPU twins of src/wensu/ops/cpu/moe.cpp (contract:
// src/wensu/ops/moe.h). Plain CUDA C++17: the kernels see device pointers and sizes, never
// wensu::Tensor. The host side that turns tensors into these parameters (and runs the expert
// products on cuBLAS) is src/wensu/ops/cuda/moe.cu.
//
// Every kernel is deterministic: no floating-point atomics, fixed summation orders, so two runs
// on the same inputs give the same bits. Element type float or bf16 (bf16 storage, float32
// accumulation). All tensors are contiguous, row-major.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace wensu {
namespace kernels {

enum class MoeDType { f32, bf16 };

// ---- routing ----------------------------------------------------------------------------------
// Pairs are numbered j = k * tokens + t (choice-major), which is the order in which they claim
// rows inside an expert. The pairs are cut into tiles of `tile` consecutive j; a tile's pairs
// are walked by one warp, so counts and ranks come out in j order without atomics.
struct MoeRoutingParams {
  const int64_t* expert_index;  // [tokens, top_k]
  int64_t tokens, top_k, experts;
  int64_t capacity;  // rows kept per expert at most; 0 = dropless
  int64_t tile;      // pairs per tile, a multiple of 32
  int64_t n_tiles;   // ceil(tokens * top_k / tile)
  // Scratch [n_tiles, experts]: the count pass writes per-tile counts, the scan turns them into
  // each tile's first rank inside each expert, and the placement pass advances them.
  int64_t* tile_rank;
  // Summary [moe_summary_size(experts)], copied to the host between the two passes:
  //   [0]               tokens * top_k - j of the first pair with a bad index, 0 when all are valid
  //   [1, 1 + E)        pairs routed to each expert before capacity
  //   [1 + E, 1 + 2E)   rows kept per expert
  //   [1 + 2E, 2 + 3E)  offsets: exclusive prefix sum of the kept rows, then the total
  int64_t* summary;
  int64_t* position;  // [tokens, top_k] out: row of each pair, -1 when dropped (placement pass)
  int64_t* source;    // [rows] out: token of each row (placement pass)
};

inline int64_t moe_summary_size(int64_t experts) { return 3 * experts + 2; }

// Count pass: zeroes the scratch, counts each tile's pairs per expert, checks the indices, scans
// the tiles of every expert and writes the summary. Asynchronous on `stream`.
cudaError_t moe_routing_count(const MoeRoutingParams& p, cudaStream_t stream);
// Placement pass (after the count pass, with `source` allocated for the kept rows): writes
// position and source. Must not run when the summary reported a bad index.
cudaError_t moe_routing_place(const MoeRoutingParams& p, cudaStream_t stream);

// ---- permute and combine ----------------------------------------------------------------------
struct MoeMoveParams {
  int64_t tokens, top_k, rows, dim;
  const int64_t* position;  // [tokens, top_k], -1 = dropped
  const int64_t* source;    // [rows]
};

// out [rows, dim] row r = x [tokens, dim] row source[r]. A byte copy, so it serves every dtype.
cudaError_t moe_permute_forward(const MoeMoveParams& p, size_t elem_size, const void* x, void* out,
                                cudaStream_t stream);
// grad_x [tokens, dim] row t = sum over kept choices k, in order, of grad_out row position[t, k]
// (zeros when every choice was dropped).
cudaError_t moe_permute_backward(const MoeMoveParams& p, MoeDType dt, const void* grad_out, void* grad_x,
                                 cudaStream_t stream);
// out [tokens, dim] row t = sum over kept k, in order, of weights[t, k] * y row position[t, k].
cudaError_t moe_combine_forward(const MoeMoveParams& p, MoeDType dt, const void* y, const void* weights, void* out,
                                cudaStream_t stream);
// One warp per pair (t, k): grad_y row position[t, k] = weights[t, k] * grad_out row t and
// grad_weights[t, k] = <grad_out row t, y row position[t, k]> (0 when dropped). Every kept row
// belongs to exactly one pair, so grad_y is fully written without atomics.
cudaError_t moe_combine_backward(const MoeMoveParams& p, MoeDType dt, const void* grad_out, const void* y,
                                 const void* weights, void* grad_y, void* grad_weights, cudaStream_t stream);

// ---- helpers of the grouped matmul (the products themselves run on cuBLAS) --------------------
// out [rows, cols] = bias [cols] (element stride bias_stride) broadcast over the rows.
cudaError_t moe_broadcast_rows(MoeDType dt, int64_t rows, int64_t cols, const void* bias, int64_t bias_stride,
                               void* out, cudaStream_t stream);
// out [cols] = column sums of in [rows, cols], in float32, rows in fixed chunks of
// moe_column_chunk() whose partial sums go to `partial` [ceil(rows / chunk), cols] (scratch)
// and are then added in chunk order. rows may be 0 (out = zeros).
int64_t moe_column_chunk();
cudaError_t moe_column_sum(MoeDType dt, int64_t rows, int64_t cols, const void* in, float* partial, void* out,
                           cudaStream_t stream);

}  // namespace kernels
}  // namespace wensu
