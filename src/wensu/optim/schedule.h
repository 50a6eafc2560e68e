// Learning-rate schedules and gradient clipping.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "wensu/core/tensor.h"

namespace wensu::optim {

struct ScheduleConfig {
  double lr = 1e-3;            // peak learning rate
  int64_t warmup_steps = 0;    // linear ramp from 0 to lr
  int64_t total_steps = 0;     // end of the decay (0: no decay)
  std::string decay = "cosine";  // cosine, linear or constant after warmup
  double min_lr_ratio = 0.0;   // floor as a fraction of lr
};

void to_json(nlohmann::json& j, const ScheduleConfig& c);
void from_json(const nlohmann::json& j, ScheduleConfig& c);

// Learning rate for the update numbered `step` (1-based, the step about to be taken).
double learning_rate(const ScheduleConfig& c, int64_t step);

// Scales all gradients so their global L2 norm is at most max_norm (no-op when smaller or
// max_norm <= 0). Returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace wensu::optim
