#include "wensu/ops/cpu/linear_bf16.h"

#include <bit>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace wensu::ops::cpu {
namespace {

constexpr int64_t kRows = 4;  // weight rows per pass over x: x is loaded once for all of them

inline float widen(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

// dot(x, w_r) for the kRows rows w_r = w + r * K, into acc[r].
void dot_rows(const float* x, const uint16_t* w, int64_t K, float* acc) {
  int64_t k = 0;
  acc[0] = acc[1] = acc[2] = acc[3] = 0.f;
#if defined(__AVX2__) && defined(__FMA__)
  // 8 weights per step: bf16 -> float32 is a zero-extension to 32 bits and a shift by 16.
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  auto load = [&](int64_t r) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * K + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  };
  for (; k + 8 <= K; k += 8) {
    // A cache line of each row two blocks ahead: the rows stream from memory, and the hardware
    // prefetcher alone left the loop at about half the bandwidth (measured, GPT-2-124M decode).
    // Prefetches never fault, so the rows past the end of w are harmless.
    if ((k & 31) == 0)
      for (int64_t r = 2 * kRows; r < 3 * kRows; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(w + r * K + k), _MM_HINT_T0);
    const __m256 xv = _mm256_loadu_ps(x + k);
    a0 = _mm256_fmadd_ps(xv, load(0), a0);
    a1 = _mm256_fmadd_ps(xv, load(1), a1);
    a2 = _mm256_fmadd_ps(xv, load(2), a2);
    a3 = _mm256_fmadd_ps(xv, load(3), a3);
  }
  auto hsum = [](__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  };
  acc[0] = hsum(a0), acc[1] = hsum(a1), acc[2] = hsum(a2), acc[3] = hsum(a3);
#endif
  for (; k < K; ++k)
    for (int64_t r = 0; r < kRows; ++r) acc[r] += x[k] * widen(w[r * K + k]);
}

}  // namespace

void linear_bf16_weights(const float* x, int64_t M, int64_t K, const bf16* w, int64_t N, const float* bias, float* y) {
  const uint16_t* wb = reinterpret_cast<const uint16_t*>(w);
  const int64_t blocks = N / kRows;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t n0 = blk * kRows;
    for (int64_t m = 0; m < M; ++m) {
      float acc[kRows];
      dot_rows(x + m * K, wb + n0 * K, K, acc);
      for (int64_t r = 0; r < kRows; ++r) y[m * N + n0 + r] = acc[r] + (bias ? bias[n0 + r] : 0.f);
    }
  }
  for (int64_t n = blocks * kRows; n < N; ++n)  // the last N % 4 rows
    for (int64_t m = 0; m < M; ++m) {
      float a = 0;
      for (int64_t k = 0; k < K; ++k) a += x[m * K + k] * widen(wb[n * K + k]);
      y[m * N + n] = a + (bias ? bias[n] : 0.f);
    }
}

}  // namespace wensu::ops::cpu
