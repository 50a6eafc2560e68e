#include <vector>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/reduce.h"

namespace wensu::ops::cpu {

void sum_dim(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& out) {
  dispatch_float(x.dtype(), "sum", [&](auto z) {
    using T = decltype(z);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    if (inner == 1) {
      // Contiguous rows: a simd reduction (the pragma allows reassociation into lanes).
#pragma omp parallel for schedule(static) if (outer * n >= kParallelGrain)
      for (int64_t o = 0; o < outer; ++o) {
        const T* row = px + o * n;
        T s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; ++i) s += row[i];
        po[o] = s;
      }
      return;
    }
    // Strided: accumulate whole rows of `inner`, split into column chunks so a single outer
    // (the bias-gradient case) still uses every thread.
    const int64_t chunk = 256;
    const int64_t nchunks = (inner + chunk - 1) / chunk;
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t c = 0; c < nchunks; ++c) {
        const int64_t c0 = c * chunk, len = std::min(chunk, inner - c0);
        T acc[256];
        for (int64_t j = 0; j < len; ++j) acc[j] = 0;
        for (int64_t i = 0; i < n; ++i) {
          const T* row = px + (o * n + i) * inner + c0;
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) acc[j] += row[j];
        }
        for (int64_t j = 0; j < len; ++j) po[o * inner + c0 + j] = acc[j];
      }
    }
  });
}

void max_dim(const Tensor& x, int64_t outer, int64_t n, int64_t inner, const Tensor& out, const Tensor& idx) {
  dispatch_float(x.dtype(), "max", [&](auto z) {
    using T = decltype(z);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    int64_t* pi = static_cast<int64_t*>(idx.raw_data());
#pragma omp parallel for collapse(2) schedule(static) if (outer * n * inner >= kParallelGrain)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < inner; ++j) {
        const T* p = px + o * n * inner + j;
        T best = p[0];
        int64_t bi = 0;
        for (int64_t i = 1; i < n; ++i) {
          T v = p[i * inner];
          if (v > best || (v != v && best == best)) {  // NaN propagates, as in PyTorch
            best = v;
            bi = i;
          }
        }
        po[o * inner + j] = best;
        pi[o * inner + j] = bi;
      }
    }
  });
}

void max_dim_backward(const Tensor& g, const Tensor& idx, int64_t outer, int64_t n, int64_t inner,
                      const Tensor& grad_in) {
  dispatch_float(g.dtype(), "max_backward", [&](auto z) {
    using T = decltype(z);
    const T* pg = static_cast<const T*>(g.raw_data());
    const int64_t* pi = static_cast<const int64_t*>(idx.raw_data());
    T* out = static_cast<T*>(grad_in.raw_data());
    std::fill(out, out + outer * n * inner, T(0));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j) out[(o * n + pi[o * inner + j]) * inner + j] = pg[o * inner + j];
  });
}

}  // namespace wensu::ops::cpu
