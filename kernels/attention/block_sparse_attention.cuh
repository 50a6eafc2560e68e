// Block-sparse attention CUDA kernels (FlashAttention-2 style), the GPU twin of
// src/wensu/ops/cpu/block_sparse_attention.cpp. Plain CUDA C++17: the kernels see only device
// pointers, sizes and strides (never wensu::Tensor), so they can be built and reused on their own.
// The host wrapper that turns tensors into these parameters is src/wensu/ops/cuda/block_sparse_attention.cu.
//
// Supported: element type float or bf16 (bf16 storage, float32 accumulation and float32 LSE),
// block size 32, 64 or 128, head dims D, Dv in [1, 128]. bsa_check_shape() says why a shape is not.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace wensu {
namespace kernels {

enum class BsaDType { f32, bf16 };

struct BsaParams {
  // Sizes.
  int64_t B, H, Lq, Lk, D, Dv;
  float scale;
  // Layout (device arrays): CSR by query row block, CSC by key column block, as in BlockLayout.
  int block;
  bool causal;  // query i sees key j only when j <= i + (Lk - Lq)
  int64_t n_row_blocks, n_col_blocks;
  const int64_t* row_ptr;      // [n_row_blocks + 1]
  const int64_t* col_idx;      // [nnz]
  const int64_t* col_ptr;      // [n_col_blocks + 1]
  const int64_t* row_idx;      // [nnz]
  const int64_t* key_padding;  // [B, Lk] device, nonzero = padded key; or null
  // Tensors (device, element type T unless noted). q, k, v, out, dout are [B, L, H, D*] with
  // element strides *_s = {batch, position, head} and a contiguous last dim; dq, dk, dv are
  // contiguous [B, L, H, D*]; lse and delta are contiguous float [B, H, Lq].
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;
  const void* dout;
  void* dq;
  void* dk;
  void* dv;
  float* delta;  // backward scratch: rowsum(dO * O)
  int64_t q_s[3], k_s[3], v_s[3], o_s[3], do_s[3];
};

// nullptr when the kernels support this block size / head dims, else a message naming the limit.
const char* bsa_check_shape(int block, int64_t D, int64_t Dv);

// Forward: writes out [B, Lq, H, Dv] and lse [B, H, Lq] (+inf for a row that sees no key; its
// output is zeros). Returns the launch error, if any (asynchronous on `stream`).
cudaError_t bsa_forward(const BsaParams& p, BsaDType dt, cudaStream_t stream);
// Backward: from q, k, v, out, lse, dout writes delta, dq, dk, dv (every element written).
cudaError_t bsa_backward(const BsaParams& p, BsaDType dt, cudaStream_t stream);

}  // namespace kernels
}  // namespace wensu
