// Reductions over axes: sum, mean, max. `axes` empty means all axes. keepdim keeps reduced
// axes as size 1 (like PyTorch).
#pragma once
#include <vector>

#include "wensu/core/tensor.h"

namespace wensu::ops {

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Max over axes; the gradient goes to the first maximal element of each reduced group.
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);

namespace cpu {
// x viewed as [outer, n, inner] (contiguous) -> out [outer, inner].
void sum_dim(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& out);
// Also writes the index in [0, n) of the first maximum into idx (int64 [outer, inner]).
void max_dim(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& out, const Tensor& idx);
// grad_in [outer, n, inner] = 0 except grad_in[o, idx[o,i], i] = g[o, i].
void max_dim_backward(const Tensor& g, const Tensor& idx, int64_t outer, int64_t n, int64_t inner,
                      const Tensor& grad_in);
}  // namespace cpu

}  // namespace wensu::ops
