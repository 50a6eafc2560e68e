#include <cmath>
#include <numbers>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/unary.h"

namespace wensu::ops::cpu {
namespace {

template <typename T>
struct Consts {
  static constexpr T inv_sqrt2 = T(1) / std::numbers::sqrt2_v<T>;
  // 1 / sqrt(2 pi), the normal density's constant.
  static constexpr T inv_sqrt_2pi = std::numbers::inv_sqrtpi_v<T> / std::numbers::sqrt2_v<T>;
  // gelu_tanh: sqrt(2 / pi) and the cubic coefficient of Hendrycks & Gimpel's approximation.
  static constexpr T k_a = std::numbers::sqrt2_v<T> * std::numbers::inv_sqrtpi_v<T>;
  static constexpr T k_b = T(0.044715);
};

// out[i] = f(x[i]) over the strided iteration of out's shape.
template <typename T, typename F>
void map1(const Tensor& x, const Tensor& out, F f) {
  StridedLoop<2> loop(out.shape(), {&out.strides(), &x.strides()});
  T* po = static_cast<T*>(out.raw_data());
  const T* px = static_cast<const T*>(x.raw_data());
  loop.run([&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    T* o = po + off[0];
    const T* a = px + off[1];
    if (st[0] == 1 && st[1] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(a[i * st[1]]);
    }
  });
}

// out[i] = f(g[i], s[i]); g is often an expanded (stride-0) gradient.
template <typename T, typename F>
void map2(const Tensor& g, const Tensor& s, const Tensor& out, F f) {
  StridedLoop<3> loop(out.shape(), {&out.strides(), &g.strides(), &s.strides()});
  T* po = static_cast<T*>(out.raw_data());
  const T* pg = static_cast<const T*>(g.raw_data());
  const T* ps = static_cast<const T*>(s.raw_data());
  loop.run([&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
    T* o = po + off[0];
    const T* a = pg + off[1];
    const T* b = ps + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const T av = *a;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(a[i * st[1]], b[i * st[2]]);
    }
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  dispatch_float(out.dtype(), "unary", [&](auto z) {
    using T = decltype(z);
    using C = Consts<T>;
    switch (op) {
      case UnaryOp::exp: return map1<T>(x, out, [](T v) { return std::exp(v); });
      case UnaryOp::log: return map1<T>(x, out, [](T v) { return std::log(v); });
      case UnaryOp::sqrt: return map1<T>(x, out, [](T v) { return std::sqrt(v); });
      case UnaryOp::tanh: return map1<T>(x, out, [](T v) { return std::tanh(v); });
      // Written so that NaN passes through, as in PyTorch.
      case UnaryOp::relu: return map1<T>(x, out, [](T v) { return v < T(0) ? T(0) : v; });
      case UnaryOp::gelu:
        return map1<T>(x, out, [](T v) { return T(0.5) * v * (T(1) + std::erf(v * C::inv_sqrt2)); });
      case UnaryOp::gelu_tanh:
        return map1<T>(x, out, [](T v) {
          return T(0.5) * v * (T(1) + std::tanh(C::k_a * (v + C::k_b * v * v * v)));
        });
      // x / (1 + e^-x) rather than x * sigmoid(x): one division, and e^-x = inf for very
      // negative x gives the correct limit -0 instead of inf * 0.
      case UnaryOp::silu: return map1<T>(x, out, [](T v) { return v / (T(1) + std::exp(-v)); });
    }
  });
}

void unary_backward(UnaryOp op, const Tensor& g, const Tensor& saved, const Tensor& grad_in) {
  dispatch_float(grad_in.dtype(), "unary_backward", [&](auto z) {
    using T = decltype(z);
    using C = Consts<T>;
    switch (op) {
      // y = e^x: dy/dx = e^x = y.
      case UnaryOp::exp: return map2<T>(g, saved, grad_in, [](T gv, T y) { return gv * y; });
      // y = log x: dy/dx = 1/x.
      case UnaryOp::log: return map2<T>(g, saved, grad_in, [](T gv, T x) { return gv / x; });
      // y = sqrt x: dy/dx = 1 / (2 sqrt x) = 1 / (2y).
      case UnaryOp::sqrt: return map2<T>(g, saved, grad_in, [](T gv, T y) { return gv / (T(2) * y); });
      // y = tanh x: dy/dx = sech^2 x = 1 - y^2.
      case UnaryOp::tanh: return map2<T>(g, saved, grad_in, [](T gv, T y) { return gv * (T(1) - y * y); });
      // y = max(x, 0): dy/dx = [x > 0] = [y > 0].
      case UnaryOp::relu: return map2<T>(g, saved, grad_in, [](T gv, T y) { return y > T(0) ? gv : T(0); });
      // y = x Phi(x): dy/dx = Phi(x) + x phi(x), phi(x) = e^{-x^2/2} / sqrt(2 pi).
      case UnaryOp::gelu:
        return map2<T>(g, saved, grad_in, [](T gv, T x) {
          const T cdf = T(0.5) * (T(1) + std::erf(x * C::inv_sqrt2));
          const T pdf = C::inv_sqrt_2pi * std::exp(T(-0.5) * x * x);
          return gv * (cdf + x * pdf);
        });
      // y = x/2 (1 + t), t = tanh(u), u = a (x + b x^3):
      // dy/dx = (1 + t)/2 + x/2 (1 - t^2) du/dx, du/dx = a (1 + 3 b x^2).
      case UnaryOp::gelu_tanh:
        return map2<T>(g, saved, grad_in, [](T gv, T x) {
          const T x2 = x * x;
          const T t = std::tanh(C::k_a * x * (T(1) + C::k_b * x2));
          const T du = C::k_a * (T(1) + T(3) * C::k_b * x2);
          return gv * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
        });
      // y = x s, s = sigmoid(x), ds/dx = s (1 - s): dy/dx = s + x s (1 - s) = s (1 + x (1 - s)).
      case UnaryOp::silu:
        return map2<T>(g, saved, grad_in, [](T gv, T x) {
          const T s = T(1) / (T(1) + std::exp(-x));
          return gv * s * (T(1) + x * (T(1) - s));
        });
    }
  });
}

}  // namespace wensu::ops::cpu
