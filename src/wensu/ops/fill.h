// In-place fill of every element (any dtype); not recorded by autograd.
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops {
void fill_(const Tensor& x, double value);
namespace cpu {
void fill(const Tensor& x, double value);
}
}  // namespace wensu::ops
