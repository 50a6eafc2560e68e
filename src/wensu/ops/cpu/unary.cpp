#include <algorithm>
#include <cmath>
#include <numbers>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/cpu/vec_math.h"
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

// Elementwise over same-shaped tensors (g may be an expanded, stride-0 gradient).
template <typename T, typename F>
void map1(const Tensor& x, const Tensor& out, F f) {
  cpu::map1<T>(static_cast<const T*>(x.raw_data()), x.strides(), out, f);
}
template <typename T, typename F>
void map2(const Tensor& g, const Tensor& s, const Tensor& out, F f) {
  cpu::map2<T>(static_cast<const T*>(g.raw_data()), g.strides(), static_cast<const T*>(s.raw_data()), s.strides(), out, f);
}

// Like map1, for functions with a transcendental inside: f(x, y, n) works on contiguous arrays of
// at most vec::kChunk elements, so it can stage arguments in stack buffers and call the SLEEF
// helpers. Strided operands are gathered into (and scattered from) stack buffers first.
template <typename T, typename F>
void map1_chunked(const Tensor& x, const Tensor& out, F f) {
  StridedLoop<2> loop(out.shape(), {&out.strides(), &x.strides()});
  T* po = static_cast<T*>(out.raw_data());
  const T* px = static_cast<const T*>(x.raw_data());
  loop.run([&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    T* o = po + off[0];
    const T* a = px + off[1];
    const bool contiguous = st[0] == 1 && st[1] == 1;
    for (int64_t c = 0; c < n; c += vec::kChunk) {
      const int64_t len = std::min(vec::kChunk, n - c);
      if (contiguous) {
        f(a + c, o + c, len);
        continue;
      }
      T xb[vec::kChunk], yb[vec::kChunk];
      for (int64_t i = 0; i < len; ++i) xb[i] = a[(c + i) * st[1]];
      f(xb, yb, len);
      for (int64_t i = 0; i < len; ++i) o[(c + i) * st[0]] = yb[i];
    }
  });
}

// Like map2, chunked as map1_chunked: f(g, s, out, n) on contiguous arrays of <= vec::kChunk.
// An expanded (stride-0) g is broadcast into its buffer by the same gather.
template <typename T, typename F>
void map2_chunked(const Tensor& g, const Tensor& s, const Tensor& out, F f) {
  StridedLoop<3> loop(out.shape(), {&out.strides(), &g.strides(), &s.strides()});
  T* po = static_cast<T*>(out.raw_data());
  const T* pg = static_cast<const T*>(g.raw_data());
  const T* ps = static_cast<const T*>(s.raw_data());
  loop.run([&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
    T* o = po + off[0];
    const T* a = pg + off[1];
    const T* b = ps + off[2];
    const bool contiguous = st[0] == 1 && st[1] == 1 && st[2] == 1;
    for (int64_t c = 0; c < n; c += vec::kChunk) {
      const int64_t len = std::min(vec::kChunk, n - c);
      if (contiguous) {
        f(a + c, b + c, o + c, len);
        continue;
      }
      T gb[vec::kChunk], sb[vec::kChunk], ob[vec::kChunk];
      for (int64_t i = 0; i < len; ++i) {
        gb[i] = a[(c + i) * st[1]];
        sb[i] = b[(c + i) * st[2]];
      }
      f(gb, sb, ob, len);
      for (int64_t i = 0; i < len; ++i) o[(c + i) * st[0]] = ob[i];
    }
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  dispatch_float(out.dtype(), "unary", [&](auto z) {
    using T = decltype(z);
    using C = Consts<T>;
    switch (op) {
      // The chunk kernels below only ever combine element i of their inputs into element i of
      // their output, so out may alias x.
      case UnaryOp::exp: return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) { vec::exp(a, y, n); });
      case UnaryOp::log: return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) { vec::log(a, y, n); });
      case UnaryOp::sqrt: return map1<T>(x, out, [](T v) { return std::sqrt(v); });
      case UnaryOp::tanh: return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) { vec::tanh(a, y, n); });
      // Written so that NaN passes through, as in PyTorch.
      case UnaryOp::relu: return map1<T>(x, out, [](T v) { return v < T(0) ? T(0) : v; });
      // y = x/2 (1 + erf(x / sqrt 2)).
      case UnaryOp::gelu:
        return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) {
          T t[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) t[i] = a[i] * C::inv_sqrt2;
          vec::erf(t, t, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * a[i] * (T(1) + t[i]);
        });
      // y = x/2 (1 + tanh(a (x + b x^3))).
      case UnaryOp::gelu_tanh:
        return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) {
          T t[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) t[i] = C::k_a * (a[i] + C::k_b * a[i] * a[i] * a[i]);
          vec::tanh(t, t, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) y[i] = T(0.5) * a[i] * (T(1) + t[i]);
        });
      // x / (1 + e^-x) rather than x * sigmoid(x): one division, and e^-x = inf for very
      // negative x gives the correct limit -0 instead of inf * 0.
      case UnaryOp::silu:
        return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) {
          T e[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) e[i] = -a[i];
          vec::exp(e, e, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) y[i] = a[i] / (T(1) + e[i]);
        });
      // 1 / (1 + e^-x): e^-x = inf for very negative x gives the limit 0.
      case UnaryOp::sigmoid:
        return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) {
          T e[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) e[i] = -a[i];
          vec::exp(e, e, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + e[i]);
        });
      // max(x, 0) + log1p(e^-|x|): no overflow for large x, full precision (log1p) for very
      // negative x where the result is about e^x.
      case UnaryOp::softplus:
        return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) {
          T e[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) e[i] = -std::abs(a[i]);
          vec::exp(e, e, n);
          for (int64_t i = 0; i < n; ++i) y[i] = (a[i] > T(0) ? a[i] : T(0)) + std::log1p(e[i]);
        });
      case UnaryOp::erf: return map1_chunked<T>(x, out, [](const T* a, T* y, int64_t n) { vec::erf(a, y, n); });
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
      // The erf and the exponential are evaluated over the chunk first, then combined.
      case UnaryOp::gelu:
        return map2_chunked<T>(g, saved, grad_in, [](const T* gv, const T* x, T* d, int64_t n) {
          T cdf[vec::kChunk], pdf[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) {
            cdf[i] = x[i] * C::inv_sqrt2;
            pdf[i] = T(-0.5) * x[i] * x[i];
          }
          vec::erf(cdf, cdf, n);
          vec::exp(pdf, pdf, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i)
            d[i] = gv[i] * (T(0.5) * (T(1) + cdf[i]) + x[i] * C::inv_sqrt_2pi * pdf[i]);
        });
      // y = x/2 (1 + t), t = tanh(u), u = a (x + b x^3):
      // dy/dx = (1 + t)/2 + x/2 (1 - t^2) du/dx, du/dx = a (1 + 3 b x^2).
      case UnaryOp::gelu_tanh:
        return map2_chunked<T>(g, saved, grad_in, [](const T* gv, const T* x, T* d, int64_t n) {
          T t[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) t[i] = C::k_a * x[i] * (T(1) + C::k_b * x[i] * x[i]);
          vec::tanh(t, t, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) {
            const T du = C::k_a * (T(1) + T(3) * C::k_b * x[i] * x[i]);
            d[i] = gv[i] * (T(0.5) * (T(1) + t[i]) + T(0.5) * x[i] * (T(1) - t[i] * t[i]) * du);
          }
        });
      // y = x s, s = sigmoid(x), ds/dx = s (1 - s): dy/dx = s + x s (1 - s) = s (1 + x (1 - s)).
      case UnaryOp::silu:
        return map2_chunked<T>(g, saved, grad_in, [](const T* gv, const T* x, T* d, int64_t n) {
          T e[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) e[i] = -x[i];
          vec::exp(e, e, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) {
            const T s = T(1) / (T(1) + e[i]);
            d[i] = gv[i] * s * (T(1) + x[i] * (T(1) - s));
          }
        });
      // y = sigmoid(x): dy/dx = y (1 - y).
      case UnaryOp::sigmoid: return map2<T>(g, saved, grad_in, [](T gv, T y) { return gv * y * (T(1) - y); });
      // y = log(1 + e^x): dy/dx = e^x / (1 + e^x) = sigmoid(x).
      case UnaryOp::softplus:
        return map2_chunked<T>(g, saved, grad_in, [](const T* gv, const T* x, T* d, int64_t n) {
          T e[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) e[i] = -x[i];
          vec::exp(e, e, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) d[i] = gv[i] / (T(1) + e[i]);
        });
      // y = erf(x): dy/dx = 2/sqrt(pi) e^{-x^2}.
      case UnaryOp::erf:
        return map2_chunked<T>(g, saved, grad_in, [](const T* gv, const T* x, T* d, int64_t n) {
          T e[vec::kChunk];
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) e[i] = -x[i] * x[i];
          vec::exp(e, e, n);
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) d[i] = gv[i] * T(2) * std::numbers::inv_sqrtpi_v<T> * e[i];
        });
    }
  });
}

}  // namespace wensu::ops::cpu
