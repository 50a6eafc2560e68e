#include "wensu/nn/module.h"

namespace wensu::nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  for (auto& [n, p] : params_) WENSU_CHECK(n != name, "parameter '", name, "' registered twice");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, NamedTensors& out) const {
  for (auto& [n, p] : params_) out.emplace_back(prefix + n, p);
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

Tensor Module::parameter(const std::string& name) const {
  for (auto& [n, p] : named_parameters())
    if (n == name) return p;
  throw Error("no parameter named '" + name + "'");
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [n, p] : named_parameters()) p.zero_grad();
}

namespace {
void convert_parameter(Tensor& p, DType dtype) {
  Tensor c = p.detach().to(dtype).contiguous();
  TensorImpl& impl = p.impl();
  impl.storage = c.impl().storage;
  impl.offset = c.offset();
  impl.shape = c.shape();
  impl.strides = c.strides();
  impl.dtype = dtype;
  impl.grad.reset();
}
}  // namespace

void Module::convert_matrices_(DType dtype) {
  for (auto& [name, p] : named_parameters())
    if (p.dim() >= 2 && p.dtype() != dtype) convert_parameter(p, dtype);
}

void Module::convert_(DType dtype) {
  for (auto& [name, p] : named_parameters()) {
    if (p.dtype() != dtype) convert_parameter(p, dtype);
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

}  // namespace wensu::nn
