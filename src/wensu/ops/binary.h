// Broadcasting elementwise arithmetic (numpy rules) and scalar forms. Inputs may be any strided
// views; outputs are contiguous with the broadcast shape.
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops {

enum class BinaryOp { add, sub, mul, div };

Tensor add(const Tensor& a, const Tensor& b);  // [broadcast(a, b)]
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, double s);       // x * s
Tensor add_scalar(const Tensor& x, double s);  // x + s
Tensor neg(const Tensor& x);                   // -x

// acc += b in place (b broadcast to acc's shape); not recorded by autograd. For gradient
// accumulation and optimizer updates.
void add_(const Tensor& acc, const Tensor& b);

namespace cpu {
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);  // out may alias a
void affine(const Tensor& x, double mul, double add, const Tensor& out);       // out = x*mul + add
}  // namespace cpu

}  // namespace wensu::ops

namespace wensu {
inline Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
inline Tensor operator*(const Tensor& a, double s) { return ops::scale(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return ops::scale(a, s); }
inline Tensor operator+(const Tensor& a, double s) { return ops::add_scalar(a, s); }
inline Tensor operator-(const Tensor& a) { return ops::neg(a); }
}  // namespace wensu
