// Vectorised exp / log / tanh / erf over contiguous arrays, for the CPU kernels.
//
// Why this exists: GCC does not vectorise a loop that calls std::exp (or erf, tanh, log)
// unless -ffast-math is on, and -ffast-math would also license reassociation and drop NaN/inf
// handling everywhere. So each element paid a scalar libm call (5-30 ns), which dominated
// GELU and softmax. SLEEF provides SIMD versions with documented error bounds; it is the
// library PyTorch's CPU kernels use for the same purpose. We call the u10 variants (at most
// 1.0 ULP), about glibc's accuracy, so float results stay well inside the op tests' 1e-5
// relative tolerance and float64 gradients still match finite differences.
//
// Kernels restructure their loops around these: compute the argument of the transcendental
// into a small stack buffer (at most kChunk elements), call one function over it, then
// combine in a plain `omp simd` loop.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

// The build's baseline is x86-64-v3 (AVX2 + FMA), so the AVX2 entry points are called
// directly, skipping SLEEF's runtime dispatcher. Other targets get the scalar loops.
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <sleef.h>
#define WENSU_VEC_MATH_AVX2 1
#endif

namespace wensu::ops::cpu::vec {

// Elements a kernel stages per stack buffer: 2 KiB of doubles, so a few buffers and the
// inputs they were computed from all stay in L1.
constexpr int64_t kChunk = 256;

namespace detail {

#ifdef WENSU_VEC_MATH_AVX2
template <class T>
struct Lanes;

template <>
struct Lanes<float> {
  using V = __m256;
  static constexpr int64_t width = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static V exp(V v) { return Sleef_expf8_u10avx2(v); }
  // exp for the softmax numerators exp(x - max), where SLEEF's exp was a tenth of attention's
  // time: Cody-Waite reduction x = n ln2 + r (|r| <= ln2 / 2, ln2 split in two parts) and
  // Cephes' degree-7 polynomial for exp(r), then 2^n through the exponent bits. About 11 vector
  // instructions against SLEEF's ~25; measured maximum relative error 1.2e-7 (2 ULP) over
  // [-87, 88]. Arguments below -87.3 give exactly 0 (so -inf, a masked score, gives 0), NaN
  // stays NaN; arguments above 88.7 overflow to inf as in libm. Float only (float64 keeps
  // SLEEF for references and gradient checks).
  static V exp_fast(V x) {
    const V lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.7f);
    const V underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);  // false for NaN
    const V overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    V c = _mm256_min_ps(hi, _mm256_max_ps(lo, x));  // max(lo, NaN) = NaN: NaN passes through
    const V n = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), c);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    V p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // n is in [-126, 128]: 2^n built from the exponent bits, in two halves so n = 128 (x near
    // 88.7, where p < 1) does not overflow the exponent field.
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
    const __m256i bias = _mm256_set1_epi32(127);
    const V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, bias), 23));
    const V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, bias), 23));
    V y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(std::numeric_limits<float>::infinity()), overflow);
    return _mm256_andnot_ps(underflow, y);
  }
  static V log(V v) { return Sleef_logf8_u10avx2(v); }
  static V tanh(V v) { return Sleef_tanhf8_u10avx2(v); }
  // Not SLEEF's erf here: at 5.7 ns per 8 lanes it was 90% of GELU's time. Abramowitz &
  // Stegun 7.1.26 on top of SLEEF's exp: erf(|x|) = 1 - t(a1 + t(a2 + t(a3 + t(a4 + t a5))))
  // exp(-x^2), t = 1 / (1 + p|x|): the formula's error is 1.5e-7; in float arithmetic the
  // measured maximum over [-8, 8] is 5.2e-7 absolute (GELU's output error stays below 3e-7
  // |x|). About 4x faster. Float64 keeps SLEEF's 1-ULP erf for references and gradchecks.
  static V erf(V v) {
    const V sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    const V ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
    const V t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax, _mm256_set1_ps(1.0f)));
    V p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const V e = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
    const V r = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(r, sign);
  }
};

template <>
struct Lanes<double> {
  using V = __m256d;
  static constexpr int64_t width = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double a) { return _mm256_set1_pd(a); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static double hsum(V v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static V exp(V v) { return Sleef_expd4_u10avx2(v); }
  static V exp_fast(V v) { return Sleef_expd4_u10avx2(v); }
  static V log(V v) { return Sleef_logd4_u10avx2(v); }
  static V tanh(V v) { return Sleef_tanhd4_u10avx2(v); }
  static V erf(V v) { return Sleef_erfd4_u10avx2(v); }
};

// y[i] = f(x[i]) for i < n; f maps a register to a register. The tail goes through one padded
// register, so every element is computed by the same code and a result never depends on the
// element's position in the array. The padding (1) is a harmless argument for every function
// here (no log(0), no overflow), so no floating-point flags are raised for it.
template <class T, class F>
inline void map(const T* x, T* y, int64_t n, F f) {
  using L = Lanes<T>;
  int64_t i = 0;
  for (; i + L::width <= n; i += L::width) L::store(y + i, f(L::load(x + i)));
  if (i < n) {
    alignas(32) T buf[L::width];
    for (int64_t j = 0; j < L::width; ++j) buf[j] = i + j < n ? x[i + j] : T(1);
    L::store(buf, f(L::load(buf)));
    for (int64_t j = 0; i + j < n; ++j) y[i + j] = buf[j];
  }
}

// Returns sum_i exp(x[i] - m), also storing the terms in y unless y is null.
template <class T>
inline T exp_shifted(const T* x, T m, T* y, int64_t n) {
  using L = Lanes<T>;
  const auto vm = L::set1(m);
  auto acc = L::set1(T(0));
  int64_t i = 0;
  for (; i + L::width <= n; i += L::width) {
    const auto e = L::exp_fast(L::sub(L::load(x + i), vm));
    if (y) L::store(y + i, e);
    acc = L::add(acc, e);
  }
  T s = L::hsum(acc);
  if (i < n) {
    alignas(32) T buf[L::width];
    for (int64_t j = 0; j < L::width; ++j) buf[j] = i + j < n ? x[i + j] : m;
    L::store(buf, L::exp_fast(L::sub(L::load(buf), vm)));
    for (int64_t j = 0; i + j < n; ++j) {
      if (y) y[i + j] = buf[j];
      s += buf[j];
    }
  }
  return s;
}

#else  // scalar fallback: same contracts, libm one element at a time

template <class T, class F>
inline void map(const T* x, T* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <class T>
inline T exp_shifted(const T* x, T m, T* y, int64_t n) {
  T s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T e = std::exp(x[i] - m);
    if (y) y[i] = e;
    s += e;
  }
  return s;
}
#endif

}  // namespace detail

// y[i] = f(x[i]) for i in [0, n). x and y may be the same array (not partially overlapping).
#ifdef WENSU_VEC_MATH_AVX2
template <class T>
inline void exp(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](auto v) { return detail::Lanes<T>::exp(v); });
}
template <class T>
inline void log(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](auto v) { return detail::Lanes<T>::log(v); });
}
template <class T>
inline void tanh(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](auto v) { return detail::Lanes<T>::tanh(v); });
}
template <class T>
inline void erf(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](auto v) { return detail::Lanes<T>::erf(v); });
}
#else
template <class T>
inline void exp(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](T v) { return std::exp(v); });
}
template <class T>
inline void log(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](T v) { return std::log(v); });
}
template <class T>
inline void tanh(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](T v) { return std::tanh(v); });
}
template <class T>
inline void erf(const T* x, T* y, int64_t n) {
  detail::map(x, y, n, [](T v) { return std::erf(v); });
}
#endif

// y[i] = exp(x[i] - m); returns their sum (the softmax numerators and denominator in one
// pass). y may be x.
template <class T>
inline T exp_sub_sum(const T* x, T m, T* y, int64_t n) {
  return detail::exp_shifted(x, m, y, n);
}

// sum_i exp(x[i] - m) without storing the terms (log-sum-exp).
template <class T>
inline T sum_exp_sub(const T* x, T m, int64_t n) {
  return detail::exp_shifted(x, m, static_cast<T*>(nullptr), n);
}

// max_i x[i] (-inf for n == 0); NaNs are skipped, as in the kernels' scalar loops.
template <class T>
inline T max(const T* x, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

}  // namespace wensu::ops::cpu::vec
