#include "wensu/ops/cpu/linear_bf16.h"

#include <bit>

namespace wensu::ops::cpu {
namespace {

constexpr int64_t kRows = 4;  // weight rows per inner loop: x is loaded once for all of them

inline float widen(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

}  // namespace

void linear_bf16_weights(const float* x, int64_t M, int64_t K, const bf16* w, int64_t N, const float* bias, float* y) {
  const uint16_t* wb = reinterpret_cast<const uint16_t*>(w);
  const int64_t blocks = (N + kRows - 1) / kRows;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t n0 = blk * kRows;
    if (n0 + kRows <= N) {
      const uint16_t *w0 = wb + n0 * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (int64_t k = 0; k < K; ++k) {
          const float xv = xm[k];
          a0 += xv * widen(w0[k]);
          a1 += xv * widen(w1[k]);
          a2 += xv * widen(w2[k]);
          a3 += xv * widen(w3[k]);
        }
        float* ym = y + m * N + n0;
        ym[0] = a0 + (bias ? bias[n0] : 0.f);
        ym[1] = a1 + (bias ? bias[n0 + 1] : 0.f);
        ym[2] = a2 + (bias ? bias[n0 + 2] : 0.f);
        ym[3] = a3 + (bias ? bias[n0 + 3] : 0.f);
      }
    } else {
      for (int64_t n = n0; n < N; ++n)
        for (int64_t m = 0; m < M; ++m) {
          const float* xm = x + m * K;
          const uint16_t* wn = wb + n * K;
          float a = 0;
#pragma omp simd reduction(+ : a)
          for (int64_t k = 0; k < K; ++k) a += xm[k] * widen(wn[k]);
          y[m * N + n] = a + (bias ? bias[n] : 0.f);
        }
    }
  }
}

}  // namespace wensu::ops::cpu
