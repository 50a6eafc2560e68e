#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/dropout.h"

namespace wensu::ops::cpu {

void dropout(const Tensor& x, uint64_t seed, uint64_t base, double p, const Tensor& out) {
  const int64_t n = x.numel(), counters = (n + 3) / 4;
  // The keep test is done in float on the 24-bit uniform whatever T is, so float32 and float64
  // runs (and the backward) see exactly the same mask.
  const float keep = float(1.0 - p);
  dispatch_float(out.dtype(), "dropout", [&](auto z) {
    using T = decltype(z);
    const T s = T(1.0 / (1.0 - p));
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    // Counter c covers elements 4c .. 4c+3, so any split of the counters over threads draws the
    // same numbers for the same elements.
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t c = 0; c < counters; ++c) {
      const auto r = philox4x32(seed, base + uint64_t(c));
      const int64_t i0 = 4 * c, len = std::min<int64_t>(4, n - i0);
      for (int64_t k = 0; k < len; ++k)
        op[i0 + k] = uniform_from_bits(r[size_t(k)]) < keep ? xp[i0 + k] * s : T(0);
    }
  });
}

}  // namespace wensu::ops::cpu
