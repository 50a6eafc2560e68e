#include <algorithm>
#include <cmath>
#include <limits>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/cpu/vec_math.h"
#include "wensu/ops/softmax.h"

namespace wensu::ops::cpu {
namespace {

// Columns handled together in the [outer, n, inner > 1] layout: the per-column max and sum
// live in stack arrays, and each row of the chunk is a contiguous simd loop.
constexpr int64_t kColChunk = 64;

template <class T>
void forward_row(const T* x, T* y, int64_t n, bool log) {
  const T m = vec::max(x, n);
  if (!log) {
    const T r = T(1) / vec::exp_sub_sum(x, m, y, n);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] *= r;
  } else {
    // (x - m) - log s rather than x - (m + log s): for large logits m + log s would round at
    // m's magnitude and cost the small outputs their precision.
    const T ls = std::log(vec::sum_exp_sub(x, m, n));
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - ls;
  }
}

template <class T>
void backward_row(const T* g, const T* y, T* dx, int64_t n, bool log) {
  T s = 0;
  if (!log) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += g[i] * y[i];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] * (g[i] - s);
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += g[i];
    // dx = g - e^y s, with e^y (the softmax) evaluated a chunk at a time into a stack buffer.
    T p[vec::kChunk];
    for (int64_t c = 0; c < n; c += vec::kChunk) {
      const int64_t len = std::min(vec::kChunk, n - c);
      vec::exp(y + c, p, len);
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) dx[c + i] = g[c + i] - p[i] * s;
    }
  }
}

// One chunk of `len` columns of one outer slice; x, y point at column c0 of row 0.
template <class T>
void forward_cols(const T* x, T* y, int64_t n, int64_t inner, int64_t len, bool log) {
  T m[kColChunk], s[kColChunk], e[kColChunk];
  for (int64_t j = 0; j < len; ++j) {
    m[j] = -std::numeric_limits<T>::infinity();
    s[j] = 0;
  }
  for (int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * inner;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
  }
  // Each row of the chunk: shifted logits into e, one vector exp, then accumulate per column.
  for (int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * inner;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) e[j] = xr[j] - m[j];
    vec::exp(e, e, len);
    if (!log) {
      T* yr = y + i * inner;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        yr[j] = e[j];
        s[j] += e[j];
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) s[j] += e[j];
    }
  }
  if (!log) {
    for (int64_t j = 0; j < len; ++j) s[j] = T(1) / s[j];
    for (int64_t i = 0; i < n; ++i) {
      T* yr = y + i * inner;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) yr[j] *= s[j];
    }
  } else {
    vec::log(s, s, len);
    for (int64_t i = 0; i < n; ++i) {
      const T* xr = x + i * inner;
      T* yr = y + i * inner;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) yr[j] = (xr[j] - m[j]) - s[j];
    }
  }
}

template <class T>
void backward_cols(const T* g, const T* y, T* dx, int64_t n, int64_t inner, int64_t len, bool log) {
  T s[kColChunk], p[kColChunk];
  for (int64_t j = 0; j < len; ++j) s[j] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* gr = g + i * inner;
    const T* yr = y + i * inner;
    if (!log) {
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) s[j] += gr[j] * yr[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) s[j] += gr[j];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const T* gr = g + i * inner;
    const T* yr = y + i * inner;
    T* dr = dx + i * inner;
    if (!log) {
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) dr[j] = yr[j] * (gr[j] - s[j]);
    } else {
      vec::exp(yr, p, len);
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) dr[j] = gr[j] - p[j] * s[j];
    }
  }
}

}  // namespace

template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  const bool par = outer * n * inner >= kParallelGrain;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (par)
    for (int64_t o = 0; o < outer; ++o) forward_row(x + o * n, y + o * n, n, log);
    return;
  }
  const int64_t nchunks = (inner + kColChunk - 1) / kColChunk;
#pragma omp parallel for collapse(2) schedule(static) if (par)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t off = o * n * inner + c * kColChunk;
      forward_cols(x + off, y + off, n, inner, std::min(kColChunk, inner - c * kColChunk), log);
    }
  }
}

template <class T>
void softmax_backward(const T* g, const T* y, T* dx, int64_t outer, int64_t n, int64_t inner, bool log) {
  const bool par = outer * n * inner >= kParallelGrain;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (par)
    for (int64_t o = 0; o < outer; ++o) backward_row(g + o * n, y + o * n, dx + o * n, n, log);
    return;
  }
  const int64_t nchunks = (inner + kColChunk - 1) / kColChunk;
#pragma omp parallel for collapse(2) schedule(static) if (par)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t off = o * n * inner + c * kColChunk;
      backward_cols(g + off, y + off, dx + off, n, inner, std::min(kColChunk, inner - c * kColChunk), log);
    }
  }
}

template void softmax_forward<float>(const float*, float*, int64_t, int64_t, int64_t, bool);
template void softmax_forward<double>(const double*, double*, int64_t, int64_t, int64_t, bool);
template void softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, bool);
template void softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, bool);

}  // namespace wensu::ops::cpu
