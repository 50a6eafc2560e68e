#include "wensu/ops/binary.h"
#include "wensu/ops/cpu/loops.h"

namespace wensu::ops::cpu {
namespace {

// Strides of x viewed with `shape` (its trailing dims aligned, broadcast dims get stride 0).
Shape broadcast_strides(const Tensor& x, const Shape& shape) {
  Shape st(shape.size(), 0);
  const int64_t lead = int64_t(shape.size()) - x.dim();
  for (int64_t d = 0; d < x.dim(); ++d)
    st[d + lead] = x.size(d) == 1 ? 0 : x.strides()[d];
  return st;
}

template <typename T, typename F>
void run(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  Shape sa = broadcast_strides(a, out.shape()), sb = broadcast_strides(b, out.shape());
  StridedLoop<3> loop(out.shape(), {&out.strides(), &sa, &sb});
  T* o = static_cast<T*>(out.raw_data());
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  loop.run([&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
    T* po = o + off[0];
    const T* x = pa + off[1];
    const T* y = pb + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) po[i] = f(x[i], y[i]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const T yv = *y;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) po[i] = f(x[i], yv);
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const T xv = *x;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) po[i] = f(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * st[0]] = f(x[i * st[1]], y[i * st[2]]);
    }
  });
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
    StridedLoop<2> loop(out.shape(), {&out.strides(), &x.strides()});
    T* o = static_cast<T*>(out.raw_data());
    const T* p = static_cast<const T*>(x.raw_data());
    loop.run([&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
      if (st[0] == 1 && st[1] == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[off[0] + i] = p[off[1] + i] * m + c;
      } else {
        for (int64_t i = 0; i < n; ++i) o[off[0] + i * st[0]] = p[off[1] + i * st[1]] * m + c;
      }
    });
  });
}

}  // namespace wensu::ops::cpu
