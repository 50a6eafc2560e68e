#include "wensu/nn/layers.h"

#include <cmath>

#include "wensu/autograd/grad_mode.h"
#include "wensu/ops/dropout.h"
#include "wensu/ops/indexing.h"
#include "wensu/ops/matmul.h"
#include "wensu/ops/norm.h"

namespace wensu::nn {

Linear::Linear(int64_t in, int64_t out, bool use_bias, Generator& gen, DType dtype) {
  const double bound = 1.0 / std::sqrt(double(in));
  weight = register_parameter("weight", Tensor::rand({out, in}, gen, dtype, -bound, bound));
  if (use_bias) bias = register_parameter("bias", Tensor::rand({out}, gen, dtype, -bound, bound));
}

Tensor Linear::forward(const Tensor& x) const { return ops::linear(x, weight, bias); }

Embedding::Embedding(int64_t vocab, int64_t dim, Generator& gen, int64_t padding_idx, DType dtype)
    : padding_idx(padding_idx) {
  Tensor w = Tensor::randn({vocab, dim}, gen, dtype);
  if (padding_idx >= 0) w.narrow(0, padding_idx, 1).detach().fill_(0.0);
  weight = register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& ids) const { return ops::embedding(weight, ids, padding_idx); }

LayerNorm::LayerNorm(int64_t dim, double eps, DType dtype) : eps(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}, dtype));
  bias = register_parameter("bias", Tensor::zeros({dim}, dtype));
}

Tensor LayerNorm::forward(const Tensor& x) const { return ops::layer_norm(x, weight, bias, eps); }

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype) : eps(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}, dtype));
}

Tensor RMSNorm::forward(const Tensor& x) const { return ops::rms_norm(x, weight, eps); }

Tensor Dropout::forward(const Tensor& x) const {
  if (!is_training() || p == 0.0) return x;
  return ops::dropout(x, p, generator("dropout"), true);
}

}  // namespace wensu::nn
