// Mixture-of-experts feed-forward block (FastMoE-style; He et al. 2021), a drop-in for the
// transformer FFN (ffn.kind = "moe"):
//
//   x [T, D] -> gate -> expert_index, weights [T, K] -> moe_routing
//   -> moe_permute: xs [N, D], rows grouped by expert
//   -> (expert parallel: all-to-all to the ranks owning the experts, regroup by local expert)
//   -> experts: one grouped GEMM per layer for the built-in FFN/GLU experts, or each expert
//      module on its contiguous slice for any other expert a factory builds
//   -> (the reverse all-to-all) -> moe_combine with the gate weights -> [T, D]
//
// Expert parallelism (dist::ParallelGroups): the experts are split evenly over the ranks of the
// expert group (ep must divide num_experts); each rank routes its own tokens. Parameters are
// named by global expert index, "experts.{g}.fc1.weight", whatever the world size, so a
// checkpoint written by any number of ranks loads on any other (io/dist_checkpoint.h).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "wensu/nn/moe_gate.h"
#include "wensu/nn/transformer.h"

namespace wensu::dist {
struct ParallelGroups;
}

namespace wensu::nn {

// Statistics of the last forward over the global batch, for logs.
struct MoeMetrics {
  std::vector<int64_t> tokens_per_expert;  // [E] rows kept per expert
  int64_t dropped = 0;                     // (token, choice) pairs dropped by capacity
  int64_t routed = 0;                      // pairs routed (kept + dropped)
  double balance_loss = 0, z_loss = 0;     // unweighted
};

// Builds expert number `expert` (global index) from its own generator. The MoE block runs it
// on the [n, D] rows routed to it; it must map [n, D] -> [n, D].
using ExpertFactory = std::function<std::shared_ptr<FeedForwardBlock>(int64_t expert, Generator& gen)>;

class MoE : public FeedForwardBlock {
 public:
  // cfg.moe says how to route; cfg.d_ff and cfg.activation shape the built-in experts.
  // groups: null for one process. factory: null for the built-in expert cfg.moe.expert.
  MoE(int64_t d_model, const FeedForwardConfig& cfg, bool bias, Generator& gen,
      const dist::ParallelGroups* groups = nullptr, ExpertFactory factory = nullptr);
  Tensor forward(const Tensor& x) override;  // [..., D] -> [..., D]
  // balance_loss_weight * balance + z_loss_weight * z of the last forward (training only).
  // Its value is the global-batch loss; its gradient is scaled so that averaging gradients
  // over the ranks (dist::all_reduce_gradients) gives the gradient of the global loss.
  Tensor aux_loss() const override;
  const MoeMetrics& metrics() const { return metrics_; }

  int64_t num_experts() const { return cfg_.moe.num_experts; }
  int64_t first_expert() const { return first_; }  // global index of experts[0]
  std::shared_ptr<Gate> gate;
  std::vector<std::shared_ptr<FeedForwardBlock>> experts;  // this rank's, "experts.{first + i}"

 private:
  Tensor run_experts(const Tensor& xs, const std::vector<int64_t>& offsets);  // local experts
  Tensor exchange_and_run(const Tensor& xs, const std::vector<int64_t>& counts);

  FeedForwardConfig cfg_;
  const dist::ParallelGroups* groups_;
  int64_t first_ = 0;
  Tensor aux_;
  MoeMetrics metrics_;
};

// True for the parameters that belong to one expert ("...experts.{g}...."): the ones expert
// parallelism splits and data parallelism alone averages.
bool is_expert_parameter(const std::string& name);

// Averages gradients for data + expert parallel training, so every rank ends with the gradient
// of the global-batch loss: shared parameters over all ranks, expert parameters over the
// data-parallel group (their gradients already hold the contributions of the whole expert group,
// so they are divided by the world size in total). No-op without groups.
void all_reduce_gradients(const Module& model, const dist::ParallelGroups* groups);

}  // namespace wensu::nn
