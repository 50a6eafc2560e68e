// AVX-512 tile GEMMs for attention (see attention_tiles.h). The build's baseline is AVX2, so the
// kernels carry a target attribute and only plain pointers and intrinsics live inside them (no
// inline library templates that another translation unit could share at a different ISA level).
#include "wensu/ops/cpu/attention_tiles.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "wensu/core/check.h"

#define WENSU_AVX512 __attribute__((target("avx512f")))

namespace wensu::ops::cpu::tiles {

namespace {

std::atomic<bool> g_enabled{true};

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

// Micro-tile of `scores`: MR rows x 32 columns (one panel), depth D. The accumulators stay in
// registers (2 MR of the 32 zmm); each depth step loads the panel row once and broadcasts one
// A element per row straight from memory into the FMA.
template <int MR>
WENSU_AVX512 void scores_micro(int64_t D, float alpha, const float* a, int64_t lda, const float* panel, float* c,
                               int64_t ldc, __mmask16 k0, __mmask16 k1) {
  __m512 lo[MR], hi[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
  for (int64_t d = 0; d < D; ++d) {
    const __m512 b0 = _mm512_loadu_ps(panel + d * kPanel), b1 = _mm512_loadu_ps(panel + d * kPanel + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + d]);
      lo[r] = _mm512_fmadd_ps(x, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(x, b1, hi[r]);
    }
  }
  const __m512 s = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, k0, _mm512_mul_ps(lo[r], s));
    _mm512_mask_storeu_ps(c + r * ldc + 16, k1, _mm512_mul_ps(hi[r], s));
  }
}

inline __mmask16 lane_mask(int64_t lanes) {
  return lanes >= 16 ? __mmask16(0xFFFF) : lanes <= 0 ? __mmask16(0) : __mmask16((1u << lanes) - 1);
}

// Micro-tile of `accumulate`: MR rows x 16*NC columns over k steps; C += alpha * acc.
template <int MR, int NC>
WENSU_AVX512 void accumulate_micro(int64_t k, float alpha, const float* a, int64_t sai, int64_t sak, const float* b,
                                   int64_t ldb, float* c, int64_t ldc) {
  __m512 acc[MR][NC];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < k; ++kk) {
    __m512 bv[NC];
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) bv[j] = _mm512_loadu_ps(b + kk * ldb + 16 * j);
    const float* ak = a + kk * sak;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 x = _mm512_set1_ps(ak[r * sai]);
#pragma GCC unroll 4
      for (int j = 0; j < NC; ++j) acc[r][j] = _mm512_fmadd_ps(x, bv[j], acc[r][j]);
    }
  }
  const __m512 s = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) {
      float* cp = c + r * ldc + 16 * j;
      _mm512_storeu_ps(cp, _mm512_fmadd_ps(acc[r][j], s, _mm512_loadu_ps(cp)));
    }
}

constexpr int kScoreRows = 8;  // 16 accumulators
constexpr int kAccRows = 6;    // 6 x 4 = 24 accumulators
constexpr int64_t kDepthBlock = 128;  // k rows of B per pass: 128 x 64 floats = 32 KiB, in L1

template <int NC>
WENSU_AVX512 void accumulate_columns(int64_t m, int64_t k, float alpha, const float* a, int64_t sai, int64_t sak,
                                     const float* b, int64_t ldb, float* c, int64_t ldc) {
  for (int64_t k0 = 0; k0 < k; k0 += kDepthBlock) {
    const int64_t kb = std::min(kDepthBlock, k - k0);
    const float* ak = a + k0 * sak;
    const float* bk = b + k0 * ldb;
    int64_t i = 0;
    for (; i + kAccRows <= m; i += kAccRows)
      accumulate_micro<kAccRows, NC>(kb, alpha, ak + i * sai, sai, sak, bk, ldb, c + i * ldc, ldc);
    const float* ai = ak + i * sai;
    float* ci = c + i * ldc;
    switch (m - i) {
      case 5: accumulate_micro<5, NC>(kb, alpha, ai, sai, sak, bk, ldb, ci, ldc); break;
      case 4: accumulate_micro<4, NC>(kb, alpha, ai, sai, sak, bk, ldb, ci, ldc); break;
      case 3: accumulate_micro<3, NC>(kb, alpha, ai, sai, sak, bk, ldb, ci, ldc); break;
      case 2: accumulate_micro<2, NC>(kb, alpha, ai, sai, sak, bk, ldb, ci, ldc); break;
      case 1: accumulate_micro<1, NC>(kb, alpha, ai, sai, sak, bk, ldb, ci, ldc); break;
      default: break;
    }
  }
}

WENSU_AVX512 void scores_avx512(int64_t m, int64_t n, int64_t D, float alpha, const float* a, int64_t lda,
                                const float* panels, float* c, int64_t ldc) {
  for (int64_t p = 0; p * kPanel < n; ++p) {
    const float* panel = panels + p * kPanel * D;
    const int64_t cols = std::min(kPanel, n - p * kPanel);
    const __mmask16 k0 = lane_mask(cols), k1 = lane_mask(cols - 16);
    float* cp = c + p * kPanel;
    int64_t i = 0;
    for (; i + kScoreRows <= m; i += kScoreRows)
      scores_micro<kScoreRows>(D, alpha, a + i * lda, lda, panel, cp + i * ldc, ldc, k0, k1);
    const float* ai = a + i * lda;
    float* ci = cp + i * ldc;
    switch (m - i) {
      case 7: scores_micro<7>(D, alpha, ai, lda, panel, ci, ldc, k0, k1); break;
      case 6: scores_micro<6>(D, alpha, ai, lda, panel, ci, ldc, k0, k1); break;
      case 5: scores_micro<5>(D, alpha, ai, lda, panel, ci, ldc, k0, k1); break;
      case 4: scores_micro<4>(D, alpha, ai, lda, panel, ci, ldc, k0, k1); break;
      case 3: scores_micro<3>(D, alpha, ai, lda, panel, ci, ldc, k0, k1); break;
      case 2: scores_micro<2>(D, alpha, ai, lda, panel, ci, ldc, k0, k1); break;
      case 1: scores_micro<1>(D, alpha, ai, lda, panel, ci, ldc, k0, k1); break;
      default: break;
    }
  }
}

WENSU_AVX512 void accumulate_avx512(int64_t m, int64_t N, int64_t k, float alpha, const float* a, int64_t sai,
                                    int64_t sak, const float* b, int64_t ldb, float* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 64 <= N; j += 64) accumulate_columns<4>(m, k, alpha, a, sai, sak, b + j, ldb, c + j, ldc);
  switch ((N - j) / 16) {
    case 3: accumulate_columns<3>(m, k, alpha, a, sai, sak, b + j, ldb, c + j, ldc); break;
    case 2: accumulate_columns<2>(m, k, alpha, a, sai, sak, b + j, ldb, c + j, ldc); break;
    case 1: accumulate_columns<1>(m, k, alpha, a, sai, sak, b + j, ldb, c + j, ldc); break;
    default: break;
  }
}

// 16 x 16 transpose in registers: r[i] holds row i on entry and column i on exit.
WENSU_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

// Panels by 16 x 16 blocks: 16 rows of 16 columns in, transposed, out as 16 panel rows.
WENSU_AVX512 void pack_panels_avx512(const float* x, int64_t ldx, int64_t n, int64_t D, float* out) {
  for (int64_t p = 0; p * kPanel < n; ++p) {
    float* panel = out + p * kPanel * D;
    for (int64_t half = 0; half < kPanel; half += 16) {
      const int64_t r0 = p * kPanel + half;
      for (int64_t d0 = 0; d0 < D; d0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = r0 + i < n ? _mm512_loadu_ps(x + (r0 + i) * ldx + d0) : _mm512_setzero_ps();
        transpose16(r);
        for (int j = 0; j < 16; ++j) _mm512_storeu_ps(panel + (d0 + j) * kPanel + half, r[j]);
      }
    }
  }
}

}  // namespace

bool enabled() { return g_enabled.load(std::memory_order_relaxed) && cpu_has_avx512(); }
void set_enabled(bool on) { g_enabled = on; }

void pack_panels(const float* x, int64_t ldx, int64_t n, int64_t D, float* out) {
  WENSU_CHECK(D % 16 == 0, "tiles::pack_panels needs D % 16 == 0 (D = ", D, ")");
  if (cpu_has_avx512()) return pack_panels_avx512(x, ldx, n, D, out);
  for (int64_t p = 0; p * kPanel < n; ++p)
    for (int64_t c = 0; c < kPanel; ++c)
      for (int64_t d = 0; d < D; ++d)
        out[p * kPanel * D + d * kPanel + c] = p * kPanel + c < n ? x[(p * kPanel + c) * ldx + d] : 0.0f;
}

void scores(int64_t m, int64_t n, int64_t D, float alpha, const float* a, int64_t lda, const float* panels, float* c,
            int64_t ldc) {
  WENSU_CHECK(enabled() && D % 16 == 0, "tiles::scores needs AVX-512 and D % 16 == 0 (D = ", D, ")");
  scores_avx512(m, n, D, alpha, a, lda, panels, c, ldc);
}

void accumulate(int64_t m, int64_t N, int64_t k, float alpha, const float* a, int64_t sai, int64_t sak,
                const float* b, int64_t ldb, float* c, int64_t ldc) {
  WENSU_CHECK(enabled() && N % 16 == 0, "tiles::accumulate needs AVX-512 and N % 16 == 0 (N = ", N, ")");
  accumulate_avx512(m, N, k, alpha, a, sai, sak, b, ldb, c, ldc);
}

void PanelBuffer::Free::operator()(float* p) const { std::free(p); }

float* PanelBuffer::reserve(int64_t floats) {
  if (floats > size_) {
    // aligned_alloc wants a size that is a multiple of the alignment.
    const size_t bytes = (size_t(floats) * sizeof(float) + 63) / 64 * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    data_.reset(p);
    size_ = floats;
  }
  return data_.get();
}

}  // namespace wensu::ops::cpu::tiles
