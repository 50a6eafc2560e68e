// Device dispatch helpers shared by every op's dispatch file.
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops {

// The CUDA implementations arrive op by op (issue 7); until an op has one, a CUDA tensor
// gets this message instead of a silent copy to the host.
[[noreturn]] void no_cuda_impl(const char* op);

// All tensors on one device; returns it.
Device common_device(std::initializer_list<const Tensor*> ts, const char* op);

// Floating compute dtype shared by all inputs (float32 or float64).
DType common_float_dtype(std::initializer_list<const Tensor*> ts, const char* op);

}  // namespace wensu::ops
