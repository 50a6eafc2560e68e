#include "wensu/ops/fill.h"
#include "wensu/ops/cpu/loops.h"

namespace wensu::ops::cpu {

namespace {
template <typename T>
void fill_typed(const Tensor& x, T v) {
  StridedLoop<1> loop(x.shape(), {&x.strides()});
  T* p = static_cast<T*>(x.raw_data());
  loop.run([&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
    for (int64_t i = 0; i < n; ++i) p[off[0] + i * st[0]] = v;
  });
}
}  // namespace

void fill(const Tensor& x, double value) {
  switch (x.dtype()) {
    case DType::f32: return fill_typed<float>(x, float(value));
    case DType::f64: return fill_typed<double>(x, value);
    case DType::bf16: return fill_typed<bf16>(x, float_to_bf16(float(value)));
    case DType::f16: return fill_typed<f16>(x, float_to_f16(float(value)));
    case DType::i64: return fill_typed<int64_t>(x, int64_t(value));
  }
}

}  // namespace wensu::ops::cpu
