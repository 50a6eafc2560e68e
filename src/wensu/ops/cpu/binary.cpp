#include "wensu/ops/binary.h"
#include "wensu/ops/cpu/loops.h"

namespace wensu::ops::cpu {
namespace {

template <typename T, typename F>
void run(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  map2<T>(static_cast<const T*>(a.raw_data()), broadcast_strides(a, out.shape()), static_cast<const T*>(b.raw_data()),
          broadcast_strides(b, out.shape()), out, f);
}

}  // namespace

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_float(out.dtype(), "binary", [&](auto z) {
    using T = decltype(z);
    switch (op) {
      case BinaryOp::add: return run<T>(a, b, out, [](T x, T y) { return x + y; });
      case BinaryOp::sub: return run<T>(a, b, out, [](T x, T y) { return x - y; });
      case BinaryOp::mul: return run<T>(a, b, out, [](T x, T y) { return x * y; });
      case BinaryOp::div: return run<T>(a, b, out, [](T x, T y) { return x / y; });
    }
  });
}

void affine(const Tensor& x, double mul, double add, const Tensor& out) {
  dispatch_float(out.dtype(), "affine", [&](auto z) {
    using T = decltype(z);
    const T m = T(mul), c = T(add);
    map1<T>(static_cast<const T*>(x.raw_data()), x.strides(), out, [=](T v) { return v * m + c; });
  });
}

}  // namespace wensu::ops::cpu
