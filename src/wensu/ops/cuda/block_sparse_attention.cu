// Block-sparse attention on CUDA: turns tensors and the CPU parameter struct into the plain
// kernel parameters of kernels/attention/block_sparse_attention.cuh and launches the kernels.
// The layout's CSR/CSC arrays are copied to the device on every call (4 small int64 arrays,
// O(nnz); the device allocator caches the buffer): caching by layout pointer would go stale when
// a layout is freed and another one is allocated at the same address.
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include "kernels/attention/block_sparse_attention.cuh"
#include "wensu/ops/block_sparse_attention.h"

namespace wensu::ops::cuda {
namespace {

using kernels::BsaDType;
using kernels::BsaParams;

void check_cuda(cudaError_t e, const char* what) {
  WENSU_CHECK(e == cudaSuccess, "block_sparse_attention (CUDA): ", what, " failed: ", cudaGetErrorString(e));
}

BsaDType kernel_dtype(DType t, const char* op) {
  WENSU_CHECK(t == DType::f32 || t == DType::bf16, op, ": the CUDA kernels support float32 and bfloat16, got ",
              dtype_name(t));
  return t == DType::f32 ? BsaDType::f32 : BsaDType::bf16;
}

void check_tensor(const Tensor& t, DType dt, const char* what, const char* op) {
  WENSU_CHECK(t.device() == Device::cuda, op, ": ", what, " must be on CUDA, got ", t.describe());
  WENSU_CHECK(t.dtype() == dt, op, ": ", what, " must be ", dtype_name(dt), ", got ", t.describe());
}

// The layout arrays on the device, one buffer: row_ptr | col_idx | col_ptr | row_idx.
struct DeviceLayout {
  Tensor buf;  // int64, on CUDA; keeps the memory alive while the kernels run
  const int64_t *row_ptr, *col_idx, *col_ptr, *row_idx;
};

DeviceLayout upload_layout(const cpu::BlockSparseAttentionParams& p) {
  const int64_t nnz = p.row_ptr[p.n_row_blocks];
  const int64_t n_rp = p.n_row_blocks + 1, n_cp = p.n_col_blocks + 1;
  std::vector<int64_t> host(size_t(n_rp + nnz + n_cp + nnz));
  int64_t* h = host.data();
  std::memcpy(h, p.row_ptr, sizeof(int64_t) * size_t(n_rp));
  std::memcpy(h + n_rp, p.col_idx, sizeof(int64_t) * size_t(nnz));
  std::memcpy(h + n_rp + nnz, p.col_ptr, sizeof(int64_t) * size_t(n_cp));
  std::memcpy(h + n_rp + nnz + n_cp, p.row_idx, sizeof(int64_t) * size_t(nnz));
  DeviceLayout d;
  d.buf = Tensor::empty({int64_t(host.size())}, DType::i64, Device::cuda);
  int64_t* dev = static_cast<int64_t*>(d.buf.raw_data());
  check_cuda(cudaMemcpy(dev, h, sizeof(int64_t) * host.size(), cudaMemcpyHostToDevice), "copying the layout");
  d.row_ptr = dev;
  d.col_idx = dev + n_rp;
  d.col_ptr = dev + n_rp + nnz;
  d.row_idx = dev + n_rp + nnz + n_cp;
  return d;
}

BsaParams kernel_params(const cpu::BlockSparseAttentionParams& p, const DeviceLayout& l, const char* op) {
  const char* bad = kernels::bsa_check_shape(int(p.block), p.D, p.Dv);
  WENSU_CHECK(bad == nullptr, op, ": ", bad ? bad : "", "; got block ", p.block, ", D ", p.D, ", Dv ", p.Dv);
  BsaParams k{};
  k.B = p.B, k.H = p.H, k.Lq = p.Lq, k.Lk = p.Lk, k.D = p.D, k.Dv = p.Dv;
  k.scale = float(p.scale);
  k.block = int(p.block);
  k.causal = p.causal;
  k.n_row_blocks = p.n_row_blocks;
  k.n_col_blocks = p.n_col_blocks;
  k.row_ptr = l.row_ptr;
  k.col_idx = l.col_idx;
  k.col_ptr = l.col_ptr;
  k.row_idx = l.row_idx;
  k.key_padding = p.key_padding;  // already a device pointer (the padding tensor is on CUDA)
  for (int i = 0; i < 3; ++i) {
    k.q_s[i] = p.q_s[i];
    k.k_s[i] = p.k_s[i];
    k.v_s[i] = p.v_s[i];
    k.o_s[i] = p.o_s[i];
    k.do_s[i] = p.do_s[i];
  }
  return k;
}

}  // namespace

void block_sparse_attention_forward(const cpu::BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& out, const Tensor& lse) {
  const char* op = "block_sparse_attention";
  const BsaDType dt = kernel_dtype(q.dtype(), op);
  const Tensor* ts[] = {&q, &k, &v, &out};
  const char* names[] = {"q", "k", "v", "out"};
  for (int i = 0; i < 4; ++i) check_tensor(*ts[i], q.dtype(), names[i], op);
  check_tensor(lse, DType::f32, "lse", op);
  DeviceLayout l = upload_layout(p);
  BsaParams kp = kernel_params(p, l, op);
  kp.q = q.raw_data();
  kp.k = k.raw_data();
  kp.v = v.raw_data();
  kp.out = out.raw_data();
  kp.lse = static_cast<float*>(lse.raw_data());
  check_cuda(kernels::bsa_forward(kp, dt, nullptr), "launching the forward kernel");
  // Synchronise so that a kernel fault is reported here, naming this op, and so that the layout
  // buffer may go back to the allocator's cache when `l` goes out of scope.
  check_cuda(cudaDeviceSynchronize(), "the forward kernel");
}

void block_sparse_attention_backward(const cpu::BlockSparseAttentionParams& p, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout,
                                     const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const char* op = "block_sparse_attention_backward";
  const BsaDType dt = kernel_dtype(q.dtype(), op);
  const Tensor* ts[] = {&q, &k, &v, &out, &dout, &dq, &dk, &dv};
  const char* names[] = {"q", "k", "v", "out", "dout", "dq", "dk", "dv"};
  for (int i = 0; i < 8; ++i) check_tensor(*ts[i], q.dtype(), names[i], op);
  check_tensor(lse, DType::f32, "lse", op);
  WENSU_CHECK(dq.is_contiguous() && dk.is_contiguous() && dv.is_contiguous(), op, ": dq, dk, dv must be contiguous");
  DeviceLayout l = upload_layout(p);
  Tensor delta = Tensor::empty({p.B, p.H, p.Lq}, DType::f32, Device::cuda);  // rowsum(dO * O)
  BsaParams kp = kernel_params(p, l, op);
  kp.q = q.raw_data();
  kp.k = k.raw_data();
  kp.v = v.raw_data();
  kp.out = out.raw_data();
  kp.lse = static_cast<float*>(lse.raw_data());
  kp.dout = dout.raw_data();
  kp.dq = dq.raw_data();
  kp.dk = dk.raw_data();
  kp.dv = dv.raw_data();
  kp.delta = static_cast<float*>(delta.raw_data());
  check_cuda(kernels::bsa_backward(kp, dt, nullptr), "launching the backward kernels");
  check_cuda(cudaDeviceSynchronize(), "the backward kernels");
}

}  // namespace wensu::ops::cuda
