// Losses. cross_entropy is fused: one pass per row computes log-sum-exp and the row loss;
// backward keeps the logits and the per-row lse, never an [N, C] softmax or log-probabilities.
#pragma once
#include <cstdint>

#include "wensu/core/tensor.h"

namespace wensu::ops {

// logits [..., C] float, targets int64 [...] (logits' leading shape) -> scalar [] : the mean
// over non-ignored positions of PyTorch's F.cross_entropy(..., reduction="mean"), with
//   loss_i = (1 - eps) * (-log p_{i,t_i}) + eps / C * sum_c (-log p_{i,c}),  p = softmax(logits_i)
// where eps = label_smoothing in [0, 1]. Positions whose target equals ignore_index contribute
// nothing and do not count in the mean. Unlike PyTorch (which returns nan), a batch in which
// every target is ignored gives 0 with a zero gradient, so a fully padded micro-batch cannot
// poison the run. A target outside [0, C) that is not ignore_index throws a wensu::Error
// naming its position and value.
// Only logits are differentiable.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     double label_smoothing = 0.0);

namespace cpu {
// logits [N, C] contiguous, targets [N] (already validated). Writes lse [N] (log-sum-exp of
// each row, for backward; kept in double so that exp(x - lse) stays accurate for float logits
// of large magnitude, at a cost of N doubles) and returns sum over non-ignored rows of loss_i, accumulated in
// double in a fixed order (deterministic for any thread count).
template <class T>
double cross_entropy_forward(const T* logits, const int64_t* targets, double* lse, int64_t N, int64_t C,
                             int64_t ignore_index, double label_smoothing);
// dlogits [N, C] = (softmax - (1 - eps) onehot(t) - eps / C) * scale for non-ignored rows,
// 0 for ignored ones. softmax is recomputed as exp(logits - lse). dlogits may alias logits.
template <class T>
void cross_entropy_backward(const T* logits, const int64_t* targets, const double* lse, T* dlogits, int64_t N,
                            int64_t C, int64_t ignore_index, double label_smoothing, double scale);
}  // namespace cpu

}  // namespace wensu::ops
