// AdamW (Loshchilov & Hutter, decoupled weight decay), matching torch.optim.AdamW.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "wensu/nn/module.h"

namespace wensu::optim {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  // Decay only matrices (dim >= 2); biases, norm gains and similar vectors are left alone,
  // as in ESM, GPT-2 and most recipes.
  bool decay_vectors = false;
};

// {"beta1", "beta2", "eps", "weight_decay"} (and "decay_vectors" when set), as trainers store it.
void to_json(nlohmann::json& j, const AdamWConfig& c);
void from_json(const nlohmann::json& j, AdamWConfig& c);

class AdamW {
 public:
  AdamW(nn::NamedTensors params, const AdamWConfig& cfg);

  // One update with learning rate lr from each parameter's .grad (parameters without a
  // gradient are skipped). Step t counts from 1, for bias correction.
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return step_; }
  // Parameters whose name starts with `prefix` step at lr * scale (e.g. a pretrained tower that
  // fine-tunes more gently than the one trained from scratch). Returns how many matched.
  int64_t scale_lr(const std::string& prefix, double scale);

  // State for checkpoints: "adamw.exp_avg/NAME", "adamw.exp_avg_sq/NAME" and "adamw.step".
  nn::NamedTensors state() const;
  // The tensors state() returns are the live buffers: loading a checkpoint writes into them,
  // then this re-reads the step counter from its "adamw.step" tensor.
  void sync_steps_from_state() { step_ = *step_tensor_.data<int64_t>(); }
  const AdamWConfig& config() const { return cfg_; }

 private:
  struct Slot {
    std::string name;
    Tensor param, exp_avg, exp_avg_sq;
    bool decay;
    double lr_scale = 1.0;
  };
  std::vector<Slot> slots_;
  AdamWConfig cfg_;
  int64_t step_ = 0;
  Tensor step_tensor_;  // int64 scalar mirror of step_ for checkpoints
};

}  // namespace wensu::optim
