// Rotary position embedding (Su et al. 2021, RoFormer) in the rotate-half layout of GPT-NeoX,
// ESM-2 and HF Llama: dimension i is paired with i + D/2 (not with its neighbour 2i+1).
#pragma once
#include <cstdint>

#include "wensu/core/tensor.h"

namespace wensu::ops {

// x [B, L, H, D] (any strides, e.g. a view into a fused QKV projection) -> [B, L, H, D]
// contiguous. For position p = position_offset + l and i in [0, D/2), with
// theta = p * base^(-2i/D):
//   out[..., i]       = x[..., i] cos(theta) - x[..., i + D/2] sin(theta)
//   out[..., i + D/2] = x[..., i + D/2] cos(theta) + x[..., i] sin(theta)
// D must be even.
Tensor rope(const Tensor& x, int64_t position_offset = 0, double base = 10000.0);

namespace cpu {
// out = R(theta) x, or R(-theta) x when inverse (the backward); out contiguous, x any strides.
void rope(const Tensor& x, int64_t position_offset, double base, bool inverse, const Tensor& out);
}  // namespace cpu

}  // namespace wensu::ops
