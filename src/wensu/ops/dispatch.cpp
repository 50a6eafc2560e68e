#include "wensu/ops/dispatch.h"

namespace wensu::ops {

void no_cuda_impl(const char* op) {
  throw Error(detail::concat(op, ": no CUDA implementation yet; move the tensors to the CPU with .to(Device::cpu)"));
}

Device common_device(std::initializer_list<const Tensor*> ts, const char* op) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (!first) first = t;
    WENSU_CHECK(t->device() == first->device(), op, ": tensors on different devices (",
                first->describe(), " and ", t->describe(), ")");
  }
  WENSU_CHECK(first, op, ": no input tensor");
  return first->device();
}

DType common_float_dtype(std::initializer_list<const Tensor*> ts, const char* op) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (!first) first = t;
    WENSU_CHECK(is_compute(t->dtype()), op, ": expects float32 or float64, got ", t->describe(),
                " (cast with .to(DType::f32))");
    WENSU_CHECK(t->dtype() == first->dtype(), op, ": mixed dtypes ", first->describe(), " and ",
                t->describe());
  }
  WENSU_CHECK(first, op, ": no input tensor");
  return first->dtype();
}

}  // namespace wensu::ops
