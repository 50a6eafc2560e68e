// Indexing ops: embedding lookup, gather / scatter_add along a dim, index_select and
// masked_fill. Indices are int64 tensors of any strides; an index outside its valid range is a
// wensu::Error naming the op, the position in the index tensor, the value and the range.
// Outputs are contiguous. Semantics follow PyTorch (torch.gather, Tensor.scatter_add, ...).
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops {

// Row lookup: weight [V, D], ids int64 [...] -> [..., D]. Rows equal to padding_idx receive no
// gradient (PyTorch semantics); a negative padding_idx means none.
Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx = -1);

// out[i][j][k] = x[index[i][j][k]][j][k] (dim = 0; likewise for other dims).
// x [...], index int64 with x's ndim and index.size(d) <= x.size(d) for d != dim -> index's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

// Out-of-place scatter-add: out = x, then out[index[i][j][k]][j][k] += src[i][j][k] (dim = 0).
// x [...], index int64 with x's ndim, index.size(d) <= src.size(d) for every d and
// index.size(d) <= x.size(d) for d != dim; src elements outside index's shape are unused.
// -> x's shape.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);

// x [..., n, ...] (n at `dim`), index int64 [m] -> [..., m, ...].
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

// out = mask != 0 ? value : x, with mask int64 broadcastable to x's shape -> x's shape.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

namespace cpu {
// The [outer, n, inner] kernels take contiguous operands (idx: int64 [m], values checked).
// out [outer, m, inner] = x [outer, n, inner] at rows idx.
void index_select(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& idx,
                  const Tensor& out);
// out [outer, n, inner] = 0, then out[o, idx[j], i] += g[o, j, i] for every j with
// idx[j] != skip (g [outer, m, inner]). Deterministic: each output element sums its
// contributions in order of j, independent of the thread count.
void index_add(const Tensor& g, int64_t outer, int64_t m, int64_t inner, const Tensor& idx, int64_t n,
               int64_t skip, const Tensor& out);
// out (contiguous, index's shape) = x gathered along dim; x may be any strided view.
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// out (contiguous) += src scattered along dim at index; src may be any strided view.
// Race-free and deterministic: contributions to one element are added in index order.
void scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
// out (contiguous, x's shape) = mask != 0 ? value : x; mask int64 with broadcast strides.
void masked_fill(const Tensor& x, const Tensor& mask, const Shape& mask_strides, double value,
                 const Tensor& out);
}  // namespace cpu

}  // namespace wensu::ops
