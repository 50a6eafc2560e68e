// Module: a node in the model tree that owns parameters and child modules under stable,
// hierarchical names ("layers.0.attn.q_proj.weight"), the names checkpoints and fixtures use.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "wensu/core/tensor.h"

namespace wensu::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its descendants, in registration order.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  Tensor parameter(const std::string& name) const;  // throws if absent
  int64_t num_parameters() const;
  void zero_grad();
  // Converts every parameter to `dtype` in place (the module's own tensor handles see the new
  // values; gradients are dropped). For float64 reference runs and low-precision copies.
  void convert_(DType dtype);
  // Converts only the matrices and tables (parameters of 2 or more dims) to `dtype`; norms and
  // biases stay as they are. For inference with bfloat16 weights (ops::linear reads them).
  void convert_matrices_(DType dtype);

  // Training mode switches dropout on; eval mode off. Applies to the whole subtree.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  // Registers t as a trainable parameter (sets requires_grad) and returns it.
  Tensor register_parameter(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out) const;
  NamedTensors params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace wensu::nn
