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

// Attention-style kernels take [B, L, H, D] views whose last dim has stride 1 (a head split of a
// projection is such a view); anything else is copied once here. Returns a detached tensor.
inline Tensor last_dim_contiguous(const Tensor& t) {
  return t.strides().back() == 1 ? t.detach() : t.contiguous().detach();
}

// The first three strides of t, for kernels' plain parameter structs.
inline void fill_strides(int64_t (&dst)[3], const Tensor& t) {
  for (int i = 0; i < 3; ++i) dst[i] = t.strides()[i];
}

}  // namespace wensu::ops
