// Block-sparse scaled-dot-product attention: dense attention restricted to the nonzero blocks
// of a BlockLayout (block_layout.h), computed FlashAttention-style so that memory grows with the
// number of computed blocks, never with Lq * Lk. Same tensor conventions as ops::attention:
// heads stay where the projections put them ([B, L, H, D] with any strides but the last).
//
// Forward (Dao et al. 2022, "FlashAttention"; Dao 2023, "FlashAttention-2"): for each query row
// block, loop over its key blocks with an online softmax (running max and sum, rescaling the
// output accumulator), keeping only the output and the per-row log-sum-exp LSE.
// Backward recomputes the probabilities from LSE instead of storing them.
#pragma once
#include "wensu/core/tensor.h"
#include "wensu/ops/block_layout.h"

namespace wensu::ops {

// q [B, Lq, H, D], k [B, Lk, H, D], v [B, Lk, H, Dv] -> [B, Lq, H, Dv].
// Query i attends key j when layout_element_mask(layout) allows it (block (i / block, j / block)
// present, and j <= i + (Lk - Lq) when layout.causal) and key_padding[b, j] == 0.
// key_padding: int64 [B, Lk], nonzero = padded key; may be undefined. A query that sees no key
// gets an output of zeros. scale <= 0 means 1/sqrt(D). layout.Lq and layout.Lk must equal the
// tensors' lengths. The last dim of q, k, v must have stride 1 (else they are copied).
Tensor block_sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const BlockLayout& layout,
                              const Tensor& key_padding = Tensor(), double scale = 0.0);

namespace cpu {
// How the CPU backward divides its work (cpu/block_sparse_attention.cpp describes both):
// kPerHead, one pass per (batch, head), five GEMMs per tile; kSplit, a dQ pass by query row
// block and a dK/dV pass by key column block, seven GEMMs per tile but parallel within a head.
// kAuto takes kPerHead when the B * H heads keep every thread busy (B * H a multiple of the
// thread count, or at least four per thread), else kSplit. Each schedule is deterministic; the
// two round differently (by about 1e-7 relative).
enum class BackwardSchedule : int { kAuto, kPerHead, kSplit };
// Process-wide override of kAuto (for tests and `wensu bench attention --schedule`).
void set_backward_schedule(BackwardSchedule s);
BackwardSchedule backward_schedule();

struct BlockSparseAttentionParams {
  int64_t B, H, Lq, Lk, D, Dv;
  double scale;
  // The layout (borrowed arrays, see BlockLayout): CSR by query row block for the forward and
  // dQ passes, CSC by key column block for the dK/dV pass.
  int64_t block;
  bool causal;
  int64_t n_row_blocks, n_col_blocks;
  const int64_t* row_ptr;  // [n_row_blocks + 1]
  const int64_t* col_idx;  // [nnz]
  const int64_t* col_ptr;  // [n_col_blocks + 1]
  const int64_t* row_idx;  // [nnz]
  const int64_t* key_padding;  // [B, Lk] or null
  // Element strides ([B, L, H]; the last dim is contiguous) of q, k, v, the output o and the
  // output gradient dO (backward only).
  int64_t q_s[3], k_s[3], v_s[3], o_s[3], do_s[3];
  BackwardSchedule backward_schedule = BackwardSchedule::kAuto;  // CPU backward only
};

// out [B, Lq, H, Dv] (strides o_s) and lse [B, H, Lq] contiguous, both fully written; lse has the
// dtype of q. lse[b, h, i] = log sum_j exp(s_ij) over the keys row i sees, +inf for a row that
// sees none (so exp(s - lse) is 0 there too).
void block_sparse_attention_forward(const BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& out, const Tensor& lse);
// dout has strides do_s; dq [B, Lq, H, D], dk [B, Lk, H, D], dv [B, Lk, H, Dv]: contiguous, fully written.
void block_sparse_attention_backward(const BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout,
                                     const Tensor& dq, const Tensor& dk, const Tensor& dv);
}  // namespace cpu

#ifdef WENSU_CUDA
// The CUDA twins (src/wensu/ops/cuda/block_sparse_attention.cu, kernels in kernels/attention/):
// same meaning as the CPU functions for tensors on the GPU, with these differences: p's layout
// arrays are the host ones (copied to the device per call), p.key_padding is a device pointer,
// lse is always float32; element types float32 and bfloat16 (float32 accumulation), block sizes
// 32/64/128 and D, Dv <= 128 (anything else throws wensu::Error).
namespace cuda {
void block_sparse_attention_forward(const cpu::BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& out, const Tensor& lse);
void block_sparse_attention_backward(const cpu::BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout,
                                     const Tensor& dq, const Tensor& dk, const Tensor& dv);
}  // namespace cuda
#endif

}  // namespace wensu::ops
