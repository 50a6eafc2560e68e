// Elementwise math and activations. Inputs may be any strided views; outputs are contiguous
// with the input's shape. Each backward saves the cheapest tensor its derivative needs: the
// output where f' is a function of f (exp, sqrt, tanh, relu), the input otherwise.
#pragma once
#include "wensu/core/tensor.h"

namespace wensu::ops {

enum class UnaryOp { exp, log, sqrt, tanh, relu, gelu, gelu_tanh, silu, sigmoid, softplus, erf };

Tensor exp(const Tensor& x);   // [...] -> [...]
Tensor log(const Tensor& x);   // natural log; x > 0
Tensor sqrt(const Tensor& x);  // x >= 0
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);  // max(x, 0); gradient 0 at x == 0 (PyTorch's convention)
// x * Phi(x) with the exact normal CDF, Phi(x) = (1 + erf(x / sqrt 2)) / 2: PyTorch's default
// F.gelu, used by ESM-2.
Tensor gelu(const Tensor& x);
// The tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): GPT-2's "gelu_new",
// F.gelu(approximate="tanh").
Tensor gelu_tanh(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);   // 1 / (1 + e^-x)
Tensor softplus(const Tensor& x);  // log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|)
Tensor erf(const Tensor& x);       // the error function (normal CDF: (1 + erf(x / sqrt 2)) / 2)  // x * sigmoid(x) (swish)

// True when the backward of `op` needs the forward output (else it needs the input).
bool unary_saves_output(UnaryOp op);

namespace cpu {
// out = f(x); x any strided view of out's shape, out contiguous.
void unary(UnaryOp op, const Tensor& x, const Tensor& out);
// grad_in = g * f'(.), where `saved` is the forward output when unary_saves_output(op) and the
// input otherwise. g and saved may be strided (g is often an expanded view); grad_in contiguous.
void unary_backward(UnaryOp op, const Tensor& g, const Tensor& saved, const Tensor& grad_in);
}  // namespace cpu

}  // namespace wensu::ops
