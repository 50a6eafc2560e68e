#include <omp.h>

#include <cmath>
#include <vector>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/norm.h"

namespace wensu::ops::cpu {
namespace {

// Forward over rows, specialised on which affine parameters exist so every inner loop is a
// branch-free simd loop.
template <class T, bool HasW, bool HasB>
void layer_norm_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t D,
                     T eps) {
  const T inv_d = T(1) / T(D);
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    T* yr = y + r * D;
    // Two passes, mean then the mean squared deviation: unlike E[x^2] - E[x]^2 this does not
    // cancel catastrophically when |mean| >> std, and the row is in L1 for the second pass.
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < D; ++j) s += xr[j];
    const T mu = s * inv_d;
    T v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < D; ++j) {
      const T d = xr[j] - mu;
      v += d * d;
    }
    const T rs = T(1) / std::sqrt(v * inv_d + eps);
    mean[r] = mu;
    rstd[r] = rs;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      T o = (xr[j] - mu) * rs;
      if constexpr (HasW) o *= w[j];
      if constexpr (HasB) o += b[j];
      yr[j] = o;
    }
  }
}

template <class T, bool HasW>
void rms_norm_rows(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t D, T eps) {
  const T inv_d = T(1) / T(D);
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    T* yr = y + r * D;
    T ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < D; ++j) ss += xr[j] * xr[j];
    const T rs = T(1) / std::sqrt(ss * inv_d + eps);
    rstd[r] = rs;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      T o = xr[j] * rs;
      if constexpr (HasW) o *= w[j];
      yr[j] = o;
    }
  }
}

// Shared driver for both backward kernels. Rows are split into one contiguous block per
// thread; row(r, pdw, pdb) computes dx for row r and adds that row's contribution to the
// thread's partial parameter gradients (pdw/pdb null when not wanted). The partials are
// summed in thread order afterwards, so the result is bitwise reproducible for a fixed thread
// count, with no atomics and no [rows, D] temporaries.
template <class T, class Row>
void backward_rows(int64_t rows, int64_t D, T* dw, T* db, Row row) {
  const bool par = rows * D >= kParallelGrain;
  const int max_threads = par ? omp_get_max_threads() : 1;
  const int64_t per = (dw ? D : 0) + (db ? D : 0);
  std::vector<T> partial(size_t(max_threads) * size_t(per), T(0));
  int used = 1;
#pragma omp parallel num_threads(max_threads) if (par)
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    if (tid == 0) used = nth;
    T* pdw = dw ? partial.data() + int64_t(tid) * per : nullptr;
    T* pdb = db ? partial.data() + int64_t(tid) * per + (dw ? D : 0) : nullptr;
    const int64_t r0 = rows * tid / nth, r1 = rows * (tid + 1) / nth;
    for (int64_t r = r0; r < r1; ++r) row(r, pdw, pdb);
  }
  for (T* out : {dw, db}) {
    if (!out) continue;
    const int64_t at = out == dw ? 0 : (dw ? D : 0);
    for (int64_t j = 0; j < D; ++j) out[j] = T(0);
    for (int t = 0; t < used; ++t) {
      const T* p = partial.data() + int64_t(t) * per + at;
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) out[j] += p[j];
    }
  }
}

}  // namespace

template <class T>
void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t D,
                        double eps) {
  const T e = T(eps);
  if (w && b) return layer_norm_rows<T, true, true>(x, w, b, y, mean, rstd, rows, D, e);
  if (w) return layer_norm_rows<T, true, false>(x, w, b, y, mean, rstd, rows, D, e);
  if (b) return layer_norm_rows<T, false, true>(x, w, b, y, mean, rstd, rows, D, e);
  layer_norm_rows<T, false, false>(x, w, b, y, mean, rstd, rows, D, e);
}

template <class T>
void layer_norm_backward(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* dx, T* dw, T* db,
                         int64_t rows, int64_t D) {
  // A missing weight is 1; a ones row keeps the hot loops free of branches.
  std::vector<T> ones;
  if (!w) {
    ones.assign(size_t(D), T(1));
    w = ones.data();
  }
  const T inv_d = T(1) / T(D);
  backward_rows<T>(rows, D, dw, db, [&](int64_t r, T* pdw, T* pdb) {
    const T* gr = g + r * D;
    const T* xr = x + r * D;
    const T mu = mean[r], rs = rstd[r];
    if (dx) {
      // dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = g * w.
      T a = 0, c = 0;
#pragma omp simd reduction(+ : a, c)
      for (int64_t j = 0; j < D; ++j) {
        const T dxh = gr[j] * w[j];
        a += dxh;
        c += dxh * (xr[j] - mu) * rs;
      }
      a *= inv_d;
      c *= inv_d;
      T* dr = dx + r * D;
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) dr[j] = rs * (gr[j] * w[j] - a - (xr[j] - mu) * rs * c);
    }
    if (pdw) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) pdw[j] += gr[j] * (xr[j] - mu) * rs;
    }
    if (pdb) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) pdb[j] += gr[j];
    }
  });
}

template <class T>
void rms_norm_forward(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t D, double eps) {
  if (w) return rms_norm_rows<T, true>(x, w, y, rstd, rows, D, T(eps));
  rms_norm_rows<T, false>(x, w, y, rstd, rows, D, T(eps));
}

template <class T>
void rms_norm_backward(const T* g, const T* x, const T* w, const T* rstd, T* dx, T* dw, int64_t rows, int64_t D) {
  std::vector<T> ones;
  if (!w) {
    ones.assign(size_t(D), T(1));
    w = ones.data();
  }
  const T inv_d = T(1) / T(D);
  backward_rows<T>(rows, D, dw, nullptr, [&](int64_t r, T* pdw, T*) {
    const T* gr = g + r * D;
    const T* xr = x + r * D;
    const T rs = rstd[r];
    if (dx) {
      // dx = r * (dxhat - xhat * mean(dxhat * xhat)), dxhat = g * w, xhat = x * r.
      T c = 0;
#pragma omp simd reduction(+ : c)
      for (int64_t j = 0; j < D; ++j) c += gr[j] * w[j] * xr[j] * rs;
      c *= inv_d;
      T* dr = dx + r * D;
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) dr[j] = rs * (gr[j] * w[j] - xr[j] * rs * c);
    }
    if (pdw) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) pdw[j] += gr[j] * xr[j] * rs;
    }
  });
}

template void layer_norm_forward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t,
                                        int64_t, double);
template void layer_norm_forward<double>(const double*, const double*, const double*, double*, double*, double*,
                                         int64_t, int64_t, double);
template void layer_norm_backward<float>(const float*, const float*, const float*, const float*, const float*, float*,
                                         float*, float*, int64_t, int64_t);
template void layer_norm_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                          double*, double*, double*, int64_t, int64_t);
template void rms_norm_forward<float>(const float*, const float*, float*, float*, int64_t, int64_t, double);
template void rms_norm_forward<double>(const double*, const double*, double*, double*, int64_t, int64_t, double);
template void rms_norm_backward<float>(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                       int64_t);
template void rms_norm_backward<double>(const double*, const double*, const double*, const double*, double*, double*,
                                        int64_t, int64_t);

}  // namespace wensu::ops::cpu
