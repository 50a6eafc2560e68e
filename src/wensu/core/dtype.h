// Element types. float32 and float64 are compute types on the CPU (float64 exists for gradient
// checks and references); bfloat16 and float16 are storage types for weights and activations;
// int64 holds indices, labels and token ids.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace wensu {

enum class DType : uint8_t { f32, f64, bf16, f16, i64 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
DType dtype_from_name(const std::string& name);  // throws on unknown names
inline bool is_floating(DType t) { return t != DType::i64; }
inline bool is_compute(DType t) { return t == DType::f32 || t == DType::f64; }

// Storage-only half types. Conversions round to nearest even, like PyTorch and CUDA.
struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

inline float bf16_to_float(bf16 v) {
  uint32_t u = uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{uint16_t(u >> 16)};
}
float f16_to_float(f16 v);
f16 float_to_f16(float f);

template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct dtype_of<f16> {
  static constexpr DType value = DType::f16;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::i64;
};

}  // namespace wensu
