// Mixture-of-experts routers ("gates"): which experts each token goes to, with what weight, and
// the auxiliary losses that keep the experts evenly loaded.
//
//   naive   FastMoE's NaiveGate: logits = x Wg; top-k of the logits; weights = softmax over
//           the k chosen logits. Balance loss: E * sum_i f_i P_i (below) over all k choices.
//   noisy   Shazeer et al. 2017: H = x Wg + N(0, 1) * softplus(x Wn) in training (x Wg in eval);
//           top-k of H; weights = softmax over the k chosen. Balance loss: CV^2(importance) +
//           CV^2(load), with the smooth load estimator P(H_i stays in the top k) =
//           Phi((clean_i - threshold_i) / noise_std_i) of the paper's appendix.
//   gshard  Lepikhin et al. 2020: p = softmax(x Wg); top-2 of p, renormalised to sum 1; the
//           second expert is kept with probability min(1, 2 g2) (random routing). Balance loss:
//           E * sum_i f_i P_i with f from the first choices.
//   switch  Fedus et al. 2021: x times U(1 - eps, 1 + eps) in training (jitter); p = softmax(x Wg);
//           top-1; weight = p of the chosen expert (not renormalised). Balance loss as gshard.
//
// f_i = fraction of routed (token, choice) pairs whose expert is i (before capacity), P_i = mean
// router probability softmax(x Wg)_i over tokens. Every gate also reports the router z-loss
// mean_t logsumexp(logits_t)^2 (Zoph et al. 2022).
//
// Distributed: with a communicator, token counts and sums are taken over all ranks, so every
// rank sees the losses of the global batch and the routing of one process over the same batch.
// Random draws (noise, jitter, random routing) are keyed by the global token index (counter-
// based Philox), so they too do not depend on how tokens are split across ranks.
#pragma once
#include <memory>
#include <vector>

#include "wensu/nn/config.h"
#include "wensu/nn/layers.h"

namespace wensu::dist {
class Communicator;
}

namespace wensu::nn {

// Where this rank's tokens sit in the global batch.
struct RoutingContext {
  const dist::Communicator* comm = nullptr;  // null: the batch is all here
  int64_t token_offset = 0;                  // global index of the first local token
  int64_t global_tokens = -1;                // -1: the local token count
};

struct GateOutput {
  Tensor expert_index;  // int64 [T, K]; -1 where gshard dropped the second expert
  Tensor weights;       // [T, K] combine weights (differentiable; 0 where expert_index is -1)
  // Unweighted scalars over the global batch. Their values are the global losses; gradients flow
  // to this rank's share only (see RoutingContext).
  Tensor balance_loss, z_loss;
  std::vector<int64_t> chosen_per_expert;  // [E] routed pairs per expert, global, before capacity
};

class Gate : public Module {
 public:
  Gate(int64_t d_model, const MoeConfig& cfg, Generator& gen);
  GateOutput forward(const Tensor& x, const RoutingContext& ctx);  // x [T, D]

  std::shared_ptr<Linear> router;  // "router": [E, D], no bias
  std::shared_ptr<Linear> noise;   // "noise": [E, D], noisy gate only

 private:
  MoeConfig cfg_;
};

// A value equal to the sum of `local` over the ranks of comm, whose gradient flows to `local`
// only: local + stop_gradient(all_reduce(local) - local). Identity without a communicator.
Tensor global_sum(const Tensor& local, const dist::Communicator* comm);

}  // namespace wensu::nn
