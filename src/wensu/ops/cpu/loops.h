// Shared CPU loop machinery: dtype dispatch and an N-d strided iterator over up to three
// operands that merges dimensions wherever the memory layout allows, so the common cases
// (contiguous, row-broadcast bias, column-broadcast scale) run as long flat inner loops.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "wensu/core/check.h"
#include "wensu/core/dtype.h"
#include "wensu/core/tensor.h"

namespace wensu::ops::cpu {

constexpr int kMaxDims = 8;
constexpr int64_t kParallelGrain = 1 << 15;  // elements below which threads cost more than they save

// Calls f(T{}) with T = float or double.
template <typename F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    default: break;
  }
  throw Error(detail::concat(op, ": expects float32 or float64, got ", dtype_name(t),
                             " (cast with .to(DType::f32) first)"));
}

template <int N>
struct StridedLoop {
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<std::array<int64_t, kMaxDims>, N> strides{};

  // shape: the iteration shape; per-operand strides in elements (0 for broadcast dims).
  StridedLoop(const Shape& s, const std::array<const Shape*, N>& st) {
    WENSU_CHECK(s.size() <= size_t(kMaxDims), "tensors of more than ", kMaxDims, " dims are not supported");
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 1) continue;  // size-1 dims never move the pointers
      shape[ndim] = s[d];
      for (int k = 0; k < N; ++k) strides[k][ndim] = (*st[k])[d];
      ++ndim;
    }
    // Merge dim d into d+1 when every operand is contiguous across the pair.
    int out = 0;
    for (int d = 0; d < ndim; ++d) {
      if (out > 0) {
        bool merge = true;
        for (int k = 0; k < N; ++k)
          merge = merge && strides[k][out - 1] == strides[k][d] * shape[d];
        if (merge) {
          shape[out - 1] *= shape[d];
          for (int k = 0; k < N; ++k) strides[k][out - 1] = strides[k][d];
          continue;
        }
      }
      shape[out] = shape[d];
      for (int k = 0; k < N; ++k) strides[k][out] = strides[k][d];
      ++out;
    }
    ndim = out;
  }

  int64_t inner() const { return ndim ? shape[ndim - 1] : 1; }
  int64_t outer() const {
    int64_t n = 1;
    for (int d = 0; d + 1 < ndim; ++d) n *= shape[d];
    return n;
  }
  std::array<int64_t, N> inner_strides() const {
    std::array<int64_t, N> s{};
    if (ndim)
      for (int k = 0; k < N; ++k) s[k] = strides[k][ndim - 1];
    return s;
  }
  std::array<int64_t, N> offsets(int64_t outer_index) const {
    std::array<int64_t, N> off{};
    for (int d = ndim - 2; d >= 0; --d) {
      int64_t i = outer_index % shape[d];
      outer_index /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
    return off;
  }

  // f(offsets, n, inner_strides) for each row of the innermost dimension, in parallel.
  template <typename F>
  void run(F&& f) const {
    const int64_t rows = outer(), n = inner();
    const auto is = inner_strides();
    if (rows == 1) {  // one long row: split it into chunks instead
      const int64_t chunk = 1 << 14;
      const int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 1)
      for (int64_t c = 0; c < nchunks; ++c) {
        std::array<int64_t, N> off{};
        for (int k = 0; k < N; ++k) off[k] = c * chunk * is[k];
        f(off, std::min(chunk, n - c * chunk), is);
      }
      return;
    }
    const bool par = rows * n >= kParallelGrain;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t r = 0; r < rows; ++r) f(offsets(r), n, is);
  }
};

// Strides of x viewed with `shape` (trailing dims aligned, numpy broadcasting): broadcast
// dims get stride 0.
inline Shape broadcast_strides(const Tensor& x, const Shape& shape) {
  Shape st(shape.size(), 0);
  const int64_t lead = int64_t(shape.size()) - x.dim();
  for (int64_t d = 0; d < x.dim(); ++d) st[d + lead] = x.size(d) == 1 ? 0 : x.strides()[d];
  return st;
}

// out[i] = f(x[i]) over out's shape, x read with strides xs (given at out's shape).
template <typename T, typename F>
void map1(const T* x, const Shape& xs, const Tensor& out, F f) {
  StridedLoop<2> loop(out.shape(), {&out.strides(), &xs});
  T* po = static_cast<T*>(out.raw_data());
  loop.run([&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    T* o = po + off[0];
    const T* a = x + off[1];
    if (st[0] == 1 && st[1] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(a[i * st[1]]);
    }
  });
}

// out[i] = f(a[i], b[i]) over out's shape, a and b read with strides as, bs (given at out's
// shape; 0 broadcasts). The contiguous and row-broadcast cases get vectorised inner loops.
template <typename T, typename F>
void map2(const T* a, const Shape& as, const T* b, const Shape& bs, const Tensor& out, F f) {
  StridedLoop<3> loop(out.shape(), {&out.strides(), &as, &bs});
  T* po = static_cast<T*>(out.raw_data());
  loop.run([&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
    T* o = po + off[0];
    const T* x = a + off[1];
    const T* y = b + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const T yv = *y;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const T xv = *x;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(x[i * st[1]], y[i * st[2]]);
    }
  });
}

}  // namespace wensu::ops::cpu
