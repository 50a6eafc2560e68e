// Basic layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout.
#pragma once
#include "wensu/core/generator.h"
#include "wensu/nn/module.h"

namespace wensu::nn {

// y = x W^T + b. Init as torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in)) for W and b.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;  // [..., in] -> [..., out]
  Tensor weight, bias;                    // [out, in], [out] (bias may be undefined)
};

// Token ids -> vectors. Init N(0, 1) like torch.nn.Embedding; the padding row starts at zero.
class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, Generator& gen, int64_t padding_idx = -1, DType dtype = DType::f32);
  Tensor forward(const Tensor& ids) const;  // int64 [...] -> [..., dim]
  Tensor weight;                            // [vocab, dim]
  int64_t padding_idx;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;  // [..., dim]
  Tensor weight, bias;
  double eps;
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;
  Tensor weight;
  double eps;
};

// Inverted dropout drawing from the named generator "dropout" (saved in checkpoints).
class Dropout : public Module {
 public:
  explicit Dropout(double p) : p(p) {}
  Tensor forward(const Tensor& x) const;
  double p;
};

}  // namespace wensu::nn
