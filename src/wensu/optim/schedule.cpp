#include "wensu/optim/schedule.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "wensu/ops/binary.h"
#include "wensu/ops/cpu/loops.h"

namespace wensu::optim {

void to_json(nlohmann::json& j, const ScheduleConfig& c) {
  j = {{"lr", c.lr},
       {"warmup_steps", c.warmup_steps},
       {"total_steps", c.total_steps},
       {"decay", c.decay},
       {"min_lr_ratio", c.min_lr_ratio}};
}

void from_json(const nlohmann::json& j, ScheduleConfig& c) {
  c.lr = j.value("lr", c.lr);
  c.warmup_steps = j.value("warmup_steps", c.warmup_steps);
  c.total_steps = j.value("total_steps", c.total_steps);
  c.decay = j.value("decay", c.decay);
  c.min_lr_ratio = j.value("min_lr_ratio", c.min_lr_ratio);
  WENSU_CHECK(c.decay == "cosine" || c.decay == "linear" || c.decay == "constant",
              "schedule: decay must be cosine, linear or constant, got '", c.decay, "'");
}

double learning_rate(const ScheduleConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step <= c.warmup_steps) return c.lr * double(step) / double(c.warmup_steps);
  if (c.decay == "constant" || c.total_steps <= c.warmup_steps) return c.lr;
  double t = double(step - c.warmup_steps) / double(c.total_steps - c.warmup_steps);
  t = std::clamp(t, 0.0, 1.0);
  double f = c.decay == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * t)) : 1.0 - t;
  return c.lr * (c.min_lr_ratio + (1.0 - c.min_lr_ratio) * f);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  double total = 0;
  for (auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor gc = g.contiguous();
    ops::cpu::dispatch_float(gc.dtype(), "clip_grad_norm", [&](auto z) {
      using T = decltype(z);
      const T* d = gc.data<T>();
      double s = 0;
      const int64_t n = gc.numel();
#pragma omp parallel for simd reduction(+ : s) if (n >= ops::cpu::kParallelGrain)
      for (int64_t i = 0; i < n; ++i) s += double(d[i]) * double(d[i]);
      total += s;
    });
  }
  const double norm = std::sqrt(total);
  if (max_norm > 0 && norm > max_norm) {
    const double f = max_norm / (norm + 1e-6);
    for (auto& p : params)
      if (p.grad().defined()) p.set_grad(ops::scale(p.grad(), f));
  }
  return norm;
}

}  // namespace wensu::optim
