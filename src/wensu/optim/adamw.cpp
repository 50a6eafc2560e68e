#include "wensu/optim/adamw.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/dispatch.h"

namespace wensu::optim {

void to_json(nlohmann::json& j, const AdamWConfig& c) {
  j = {{"beta1", c.beta1}, {"beta2", c.beta2}, {"eps", c.eps}, {"weight_decay", c.weight_decay}};
  if (c.decay_vectors) j["decay_vectors"] = true;
}

void from_json(const nlohmann::json& j, AdamWConfig& c) {
  c.beta1 = j.at("beta1"), c.beta2 = j.at("beta2"), c.eps = j.at("eps");
  c.weight_decay = j.at("weight_decay");
  c.decay_vectors = j.value("decay_vectors", false);
}
namespace {

// p <- p * (1 - lr*wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
// p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)      (torch.optim.AdamW)
template <typename T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double wd, const AdamWConfig& c, int64_t t) {
  const T b1 = T(c.beta1), b2 = T(c.beta2), eps = T(c.eps);
  const T decay = T(1.0 - lr * wd);
  const T step_size = T(lr / (1.0 - std::pow(c.beta1, double(t))));
  const T inv_bc2 = T(1.0 / std::sqrt(1.0 - std::pow(c.beta2, double(t))));
#pragma omp parallel for simd schedule(static) if (n >= ops::cpu::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i];
    T mi = b1 * m[i] + (T(1) - b1) * gi;
    T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_bc2 + eps);
  }
}

}  // namespace

AdamW::AdamW(nn::NamedTensors params, const AdamWConfig& cfg) : cfg_(cfg) {
  for (auto& [name, p] : params) {
    WENSU_CHECK(is_compute(p.dtype()) && p.is_contiguous(), "AdamW: parameter '", name,
                "' must be a contiguous float32/float64 tensor, got ", p.describe());
    Slot s{name, p, Tensor::zeros(p.shape(), p.dtype(), p.device()), Tensor::zeros(p.shape(), p.dtype(), p.device()),
           p.dim() >= 2 || cfg.decay_vectors};
    slots_.push_back(std::move(s));
  }
  step_tensor_ = Tensor::zeros({}, DType::i64);
}

void AdamW::step(double lr) {
  ++step_;
  *step_tensor_.data<int64_t>() = step_;
  for (auto& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    if (s.param.device() == Device::cuda) ops::no_cuda_impl("adamw");
    Tensor gc = g.contiguous();
    const double wd = s.decay ? cfg_.weight_decay : 0.0;
    ops::cpu::dispatch_float(s.param.dtype(), "adamw", [&](auto z) {
      using T = decltype(z);
      adamw_update<T>(s.param.data<T>(), gc.data<T>(), s.exp_avg.data<T>(), s.exp_avg_sq.data<T>(), s.param.numel(),
                      lr * s.lr_scale, wd, cfg_, step_);
    });
  }
}

int64_t AdamW::scale_lr(const std::string& prefix, double scale) {
  int64_t n = 0;
  for (auto& s : slots_)
    if (s.name.rfind(prefix, 0) == 0) s.lr_scale = scale, ++n;
  return n;
}

void AdamW::zero_grad() {
  for (auto& s : slots_) s.param.zero_grad();
}

nn::NamedTensors AdamW::state() const {
  nn::NamedTensors out;
  out.emplace_back("adamw.step", step_tensor_);
  for (auto& s : slots_) {
    out.emplace_back("adamw.exp_avg/" + s.name, s.exp_avg);
    out.emplace_back("adamw.exp_avg_sq/" + s.name, s.exp_avg_sq);
  }
  return out;
}

}  // namespace wensu::optim
