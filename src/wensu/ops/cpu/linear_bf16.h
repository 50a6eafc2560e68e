// Matrix-vector products with bfloat16 weights: y[m, n] = sum_k x[m, k] * float(w[n, k]) + b[n],
// x and y float32. Generation reads every weight once per token, so its speed is memory
// bandwidth; weights stored in bf16 halve the bytes (llama.cpp's f16/bf16 files do the same).
// The products and sums are float32, as with float32 weights. For few rows (decoding); a caller
// with many rows converts the weights and uses the GEMM instead.
#pragma once
#include <cstdint>

#include "wensu/core/dtype.h"

namespace wensu::ops::cpu {

// x [M, K] row-major, w [N, K] row-major, bias [N] or null, y [M, N] row-major. Threads split N.
void linear_bf16_weights(const float* x, int64_t M, int64_t K, const bf16* w, int64_t N, const float* bias, float* y);

}  // namespace wensu::ops::cpu
