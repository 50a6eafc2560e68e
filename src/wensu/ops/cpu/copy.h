// Strided copy with dtype conversion between two tensors of the same shape (CPU).
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops::cpu {
void copy(const Tensor& dst, const Tensor& src);  // dst may be non-contiguous; no aliasing
}
