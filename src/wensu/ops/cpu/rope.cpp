#include <cmath>
#include <vector>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/rope.h"

namespace wensu::ops::cpu {

void rope(const Tensor& x, int64_t position_offset, double base, bool inverse, const Tensor& out) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  const Shape& xs = x.strides();
  dispatch_float(out.dtype(), "rope", [&](auto z) {
    using T = decltype(z);
    // cos/sin table [L, D/2], built once per call. Angles are computed in double and the
    // results rounded once to T, so a float32 table is exact to rounding; a float32 angle
    // p * inv_freq would be off by up to ~p * 2^-24 radians, which shows at long positions.
    std::vector<T> cos_t(size_t(L * half)), sin_t(size_t(L * half));
    const double sign = inverse ? -1.0 : 1.0;
    std::vector<double> inv_freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = std::pow(base, -2.0 * double(i) / double(D));
    // cos and sin cost tens of cycles each, so the table is worth threads at a lower size.
#pragma omp parallel for schedule(static) if (L * half >= kParallelGrain / 8)
    for (int64_t l = 0; l < L; ++l) {
      const double p = double(position_offset + l);
      for (int64_t i = 0; i < half; ++i) {
        const double theta = p * inv_freq[size_t(i)];
        cos_t[size_t(l * half + i)] = T(std::cos(theta));
        sin_t[size_t(l * half + i)] = T(sign * std::sin(theta));
      }
    }
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = out.data<T>();
    const int64_t rows = B * L * H, sd = xs[3];
    // One (b, l, h) head vector per iteration; out is contiguous, x may be any view.
#pragma omp parallel for schedule(static) if (rows * D >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t h = r % H, l = (r / H) % L, b = r / (H * L);
      const T* xr = xp + b * xs[0] + l * xs[1] + h * xs[2];
      const T* c = cos_t.data() + l * half;
      const T* s = sin_t.data() + l * half;
      T* o = op + r * D;
      if (sd == 1) {
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = xr[i], x2 = xr[i + half];
          o[i] = x1 * c[i] - x2 * s[i];
          o[i + half] = x2 * c[i] + x1 * s[i];
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = xr[i * sd], x2 = xr[(i + half) * sd];
          o[i] = x1 * c[i] - x2 * s[i];
          o[i + half] = x2 * c[i] + x1 * s[i];
        }
      }
    }
  });
}

}  // namespace wensu::ops::cpu
