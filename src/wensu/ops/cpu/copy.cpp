#include "wensu/ops/cpu/copy.h"

#include "wensu/ops/cpu/loops.h"

namespace wensu::ops::cpu {
namespace {

template <typename T>
struct Conv {
  static double to_d(T v) { return double(v); }
  static T from_d(double v) { return T(v); }
};
template <>
struct Conv<bf16> {
  static double to_d(bf16 v) { return bf16_to_float(v); }
  static bf16 from_d(double v) { return float_to_bf16(float(v)); }
};
template <>
struct Conv<f16> {
  static double to_d(f16 v) { return f16_to_float(v); }
  static f16 from_d(double v) { return float_to_f16(float(v)); }
};

template <typename D, typename S>
D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, bf16>) {
    return float_to_bf16(v);
  } else if constexpr (std::is_same_v<S, bf16> && std::is_same_v<D, float>) {
    return bf16_to_float(v);
  } else {
    return Conv<D>::from_d(Conv<S>::to_d(v));
  }
}

template <typename F>
decltype(auto) dispatch_any(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::bf16: return f(bf16{});
    case DType::f16: return f(f16{});
    case DType::i64: return f(int64_t{});
  }
  throw Error("copy: unknown dtype");
}

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  WENSU_CHECK(dst.shape() == src.shape(), "copy: shape ", shape_str(src.shape()), " into ",
              shape_str(dst.shape()));
  StridedLoop<2> loop(dst.shape(), {&dst.strides(), &src.strides()});
  dispatch_any(dst.dtype(), [&](auto dz) {
    using D = decltype(dz);
    dispatch_any(src.dtype(), [&](auto sz) {
      using S = decltype(sz);
      D* d = static_cast<D*>(dst.raw_data());
      const S* s = static_cast<const S*>(src.raw_data());
      if (loop.ndim == 2 && loop.strides[0][1] == 1 && loop.strides[1][0] == 1 && loop.strides[1][1] != 1) {
        // A transpose (e.g. a weight made contiguous as W^T): walking the destination row by
        // row would read the source with a large stride, one cache line per element. Copy in
        // square tiles so both sides stay in cache.
        const int64_t rows = loop.shape[0], cols = loop.shape[1];
        const int64_t ds = loop.strides[0][0], ss = loop.strides[1][1];
        constexpr int64_t kTile = 32;
#pragma omp parallel for collapse(2) schedule(static) if (rows * cols >= kParallelGrain)
        for (int64_t r0 = 0; r0 < rows; r0 += kTile)
          for (int64_t c0 = 0; c0 < cols; c0 += kTile)
            for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
              for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) d[r * ds + c] = convert<D>(s[r + c * ss]);
        return;
      }
      loop.run([&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
        D* dp = d + off[0];
        const S* sp = s + off[1];
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) dp[i] = convert<D>(sp[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = convert<D>(sp[i * st[1]]);
        }
      });
    });
  });
}

}  // namespace wensu::ops::cpu
