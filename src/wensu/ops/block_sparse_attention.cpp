#include "wensu/ops/block_sparse_attention.h"

#include <cmath>
#include <memory>

#include "wensu/autograd/node.h"
#include "wensu/ops/dispatch.h"

namespace wensu::ops {

using autograd::Node;

namespace {

// The kernels index q, k, v and the outputs through the layout's arrays without bounds checks,
// so a layout built by hand (or for other lengths) is checked here, in O(nnz).
void check_layout(const BlockLayout& l, int64_t Lq, int64_t Lk) {
  WENSU_CHECK(l.Lq == Lq && l.Lk == Lk, "block_sparse_attention: the layout was built for Lq = ", l.Lq,
              ", Lk = ", l.Lk, " but q has Lq = ", Lq, " and k has Lk = ", Lk,
              " (build it with make_block_layout(cfg, Lq, Lk) for these lengths)");
  WENSU_CHECK(l.block > 0, "block_sparse_attention: layout block size must be positive, got ", l.block);
  const int64_t nr = (Lq + l.block - 1) / l.block, nc = (Lk + l.block - 1) / l.block;
  WENSU_CHECK(l.n_row_blocks == nr && l.n_col_blocks == nc, "block_sparse_attention: layout has ",
              l.n_row_blocks, " x ", l.n_col_blocks, " blocks, but Lq = ", Lq, ", Lk = ", Lk, " with block ",
              l.block, " need ", nr, " x ", nc);
  const int64_t nnz = l.nnz();
  WENSU_CHECK(int64_t(l.row_ptr.size()) == nr + 1 && int64_t(l.col_ptr.size()) == nc + 1 &&
                  int64_t(l.row_idx.size()) == nnz && l.row_ptr.front() == 0 && l.row_ptr.back() == nnz &&
                  l.col_ptr.front() == 0 && l.col_ptr.back() == nnz,
              "block_sparse_attention: malformed layout (row_ptr/col_ptr/row_idx sizes do not match ", nr,
              " row blocks, ", nc, " column blocks and nnz = ", nnz, ")");
  for (int64_t r = 0; r < nr; ++r) {
    WENSU_CHECK(l.row_ptr[r] <= l.row_ptr[r + 1], "block_sparse_attention: malformed layout: row_ptr decreases at ", r);
    for (int64_t e = l.row_ptr[r]; e < l.row_ptr[r + 1]; ++e)
      WENSU_CHECK(l.col_idx[e] >= 0 && l.col_idx[e] < nc, "block_sparse_attention: malformed layout: column block ",
                  l.col_idx[e], " in row block ", r, " is outside [0, ", nc, ")");
  }
  for (int64_t c = 0; c < nc; ++c) {
    WENSU_CHECK(l.col_ptr[c] <= l.col_ptr[c + 1], "block_sparse_attention: malformed layout: col_ptr decreases at ", c);
    for (int64_t e = l.col_ptr[c]; e < l.col_ptr[c + 1]; ++e)
      WENSU_CHECK(l.row_idx[e] >= 0 && l.row_idx[e] < nr, "block_sparse_attention: malformed layout: row block ",
                  l.row_idx[e], " in column block ", c, " is outside [0, ", nr, ")");
  }
}

// Saved: q, k, v (views, no copies), the output O and the row log-sum-exp LSE [B, H, Lq]; the
// probabilities are recomputed block by block in backward. The node keeps its own copy of the
// layout (O(nnz) integers) because the caller's may not outlive the tape.
struct BlockSparseAttentionNode : Node {
  cpu::BlockSparseAttentionParams p;
  std::shared_ptr<const BlockLayout> layout;
  Tensor q, k, v, out, lse, key_padding;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor go = last_dim_contiguous(g);
    const Device dev = q.device();
    Tensor dq = Tensor::empty(q.shape(), q.dtype(), dev), dk = Tensor::empty(k.shape(), k.dtype(), dev),
           dv = Tensor::empty(v.shape(), v.dtype(), dev);
    cpu::BlockSparseAttentionParams bp = p;
    bp.row_ptr = layout->row_ptr.data();
    bp.col_idx = layout->col_idx.data();
    bp.col_ptr = layout->col_ptr.data();
    bp.row_idx = layout->row_idx.data();
    bp.key_padding = key_padding.defined() ? key_padding.data<int64_t>() : nullptr;
    fill_strides(bp.do_s, go);
    if (q.device() == Device::cuda) {
#ifdef WENSU_CUDA
      cuda::block_sparse_attention_backward(bp, q, k, v, out, lse, go, dq, dk, dv);
#else
      no_cuda_impl("block_sparse_attention_backward");
#endif
    } else {
      cpu::block_sparse_attention_backward(bp, q, k, v, out, lse, go, dq, dk, dv);
    }
    return {dq, dk, dv};
  }
  const char* name() const override { return "block_sparse_attention"; }
  void release() override {
    q = k = v = out = lse = key_padding = Tensor();
    layout.reset();
  }
};

}  // namespace

Tensor block_sparse_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const BlockLayout& layout,
                              const Tensor& key_padding, double scale) {
  Device dev = common_device({&q_in, &k_in, &v_in}, "block_sparse_attention");
  DType dt = common_float_dtype({&q_in, &k_in, &v_in}, "block_sparse_attention");
  WENSU_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4,
              "block_sparse_attention: q, k, v must be [B, L, H, D], got ", shape_str(q_in.shape()), ", ",
              shape_str(k_in.shape()), ", ", shape_str(v_in.shape()));
  const int64_t B = q_in.size(0), Lq = q_in.size(1), H = q_in.size(2), D = q_in.size(3);
  const int64_t Lk = k_in.size(1), Dv = v_in.size(3);
  WENSU_CHECK(k_in.size(0) == B && v_in.size(0) == B && k_in.size(2) == H && v_in.size(2) == H &&
                  k_in.size(3) == D && v_in.size(1) == Lk,
              "block_sparse_attention: shapes do not agree: q ", shape_str(q_in.shape()), ", k ",
              shape_str(k_in.shape()), ", v ", shape_str(v_in.shape()),
              " (expected q [B, Lq, H, D], k [B, Lk, H, D], v [B, Lk, H, Dv])");
  check_layout(layout, Lq, Lk);
  Tensor kp;
  if (key_padding.defined()) {
    WENSU_CHECK(key_padding.dtype() == DType::i64 && key_padding.shape() == Shape({B, Lk}),
                "block_sparse_attention: key_padding must be int64 [B, Lk] = [", B, ", ", Lk, "], got ",
                key_padding.describe());
    WENSU_CHECK(key_padding.device() == dev, "block_sparse_attention: key_padding must be on the same device as q (",
                device_name(dev), "), got ", key_padding.describe());
    kp = key_padding.contiguous().detach();
  }
#ifndef WENSU_CUDA
  if (dev == Device::cuda) no_cuda_impl("block_sparse_attention");
#endif
  Tensor q = last_dim_contiguous(q_in), k = last_dim_contiguous(k_in), v = last_dim_contiguous(v_in);
  Tensor out = Tensor::empty({B, Lq, H, Dv}, dt, dev);  // [B, Lq, H, Dv]
  // [B, H, Lq]; the CUDA kernels keep it in float32 whatever the element type (bf16 LSE would
  // lose the precision exp(s - LSE) needs).
  Tensor lse = Tensor::empty({B, H, Lq}, dev == Device::cuda ? DType::f32 : dt, dev);
  cpu::BlockSparseAttentionParams p{};
  p.B = B, p.H = H, p.Lq = Lq, p.Lk = Lk, p.D = D, p.Dv = Dv;
  p.scale = scale > 0 ? scale : 1.0 / std::sqrt(double(D));
  p.block = layout.block;
  p.causal = layout.causal;
  p.n_row_blocks = layout.n_row_blocks;
  p.n_col_blocks = layout.n_col_blocks;
  p.row_ptr = layout.row_ptr.data();
  p.col_idx = layout.col_idx.data();
  p.col_ptr = layout.col_ptr.data();
  p.row_idx = layout.row_idx.data();
  p.key_padding = kp.defined() ? kp.data<int64_t>() : nullptr;
  fill_strides(p.q_s, q);
  fill_strides(p.k_s, k);
  fill_strides(p.v_s, v);
  fill_strides(p.o_s, out);
  p.backward_schedule = cpu::backward_schedule();
  if (dev == Device::cuda) {
#ifdef WENSU_CUDA
    cuda::block_sparse_attention_forward(p, q, k, v, out, lse);
#endif
  } else {
    cpu::block_sparse_attention_forward(p, q, k, v, out, lse);
  }
  if (!autograd::needs_grad({&q_in, &k_in, &v_in})) return out;
  auto node = std::make_shared<BlockSparseAttentionNode>();
  node->p = p;
  node->layout = std::make_shared<const BlockLayout>(layout);
  node->q = q;
  node->k = k;
  node->v = v;
  node->out = out.detach();
  node->lse = lse;
  node->key_padding = kp;
  return autograd::record(out, node, {&q_in, &k_in, &v_in});
}

}  // namespace wensu::ops
