// Normalisation over the last dim. Forward keeps only per-row statistics (mean and rstd, in
// the compute dtype) for backward, never the normalised activations; backward is one fused
// kernel that produces dx, dweight and dbias together.
#pragma once
#include <cstdint>

#include "wensu/core/tensor.h"

namespace wensu::ops {

// x [..., D], weight [D] or undefined, bias [D] or undefined -> [..., D]:
//   y = (x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) var over the last dim.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// x [..., D], weight [D] or undefined -> [..., D]:  y = x / sqrt(mean(x^2) + eps) * weight.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

namespace cpu {
// Raw kernels on contiguous [rows, D] data; w and b may be null (weight 1, bias 0). Row
// statistics are accumulated in T with two passes (mean, then the mean of (x - mean)^2),
// which is accurate even when |mean| >> std. Parallel over rows.
template <class T>
void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t D,
                        double eps);
// g [rows, D] upstream gradient; any of dx, dw, db may be null to skip it. dw and db are
// reduced over rows with per-thread partial sums combined in thread order: deterministic for
// a fixed thread count.
template <class T>
void layer_norm_backward(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* dx, T* dw, T* db,
                         int64_t rows, int64_t D);
template <class T>
void rms_norm_forward(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t D, double eps);
template <class T>
void rms_norm_backward(const T* g, const T* x, const T* w, const T* rstd, T* dx, T* dw, int64_t rows, int64_t D);
}  // namespace cpu

}  // namespace wensu::ops
