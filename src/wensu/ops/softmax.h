// Softmax and log-softmax along one dim, numerically stable (the row maximum is subtracted
// before exponentiating, so rows of large logits neither overflow nor lose all precision).
// Forward and backward are each one fused kernel; the backward needs only the output.
// A row that is entirely -inf has no defined softmax and gives NaN, as in PyTorch; masks that
// can cover a whole row should use a large finite negative value (or be handled by the caller).
#pragma once
#include <cstdint>

#include "wensu/core/tensor.h"

namespace wensu::ops {

Tensor softmax(const Tensor& x, int64_t dim = -1);      // [...] -> [...], rows along dim sum to 1
Tensor log_softmax(const Tensor& x, int64_t dim = -1);  // [...] -> [...], x - logsumexp(x, dim)

namespace cpu {
// Raw kernels for other ops (attention, losses) that hold contiguous rows. x viewed as
// [outer, n, inner] with the softmax over n; inner == 1 is the contiguous-rows fast path.
// Parallel over outer (and inner chunks); serial when called inside another parallel region.
// y may alias x.
template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);
// dx from the upstream gradient g and the forward output y (same [outer, n, inner] layout):
//   softmax:     dx = y * (g - sum_n(g * y))
//   log_softmax: dx = g - exp(y) * sum_n(g)
// dx may alias g.
template <class T>
void softmax_backward(const T* g, const T* y, T* dx, int64_t outer, int64_t n, int64_t inner, bool log);

// Convenience forms over rows of length n.
template <class T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n) {
  softmax_forward(x, y, rows, n, 1, false);
}
template <class T>
void log_softmax_rows(const T* x, T* y, int64_t rows, int64_t n) {
  softmax_forward(x, y, rows, n, 1, true);
}
}  // namespace cpu

}  // namespace wensu::ops
