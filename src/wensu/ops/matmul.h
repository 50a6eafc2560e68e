// Matrix products (oneDNN sgemm for float32, Eigen for float64; see ops/cpu/blas.h).
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops {

// a [..., m, k] @ b [..., k, n] -> [..., m, n]; batch dims broadcast. Strided views (for
// example transposes or per-head slices) go to the GEMM without copies when one of their two
// matrix strides is 1.
Tensor matmul(const Tensor& a, const Tensor& b);

// x [..., in] @ weight[out, in]^T + bias[out] -> [..., out]; bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

namespace cpu {
// C[batch] = alpha * A[batch] @ B[batch] + beta * C[batch] over 2-d matrix views of 3-d tensors
// a [B, m, k], b [B, k, n], c [B, m, n] (any strides; copies only when the GEMM cannot take them).
// A batch stride of 0 broadcasts.
void gemm_batched(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta);
}  // namespace cpu

}  // namespace wensu::ops
