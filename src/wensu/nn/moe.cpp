#include "wensu/nn/moe.h"

#include <cmath>

#include "wensu/dist/comm.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/indexing.h"
#include "wensu/ops/moe.h"
#include "wensu/ops/shape.h"

namespace wensu::nn {
namespace {

// The seed of expert g's generator: drawn from the model generator's stream at one reserved
// counter, so an expert's initial weights depend on its global index only, not on which rank
// builds it or how many experts a rank holds.
uint64_t expert_seed(uint64_t seed, uint64_t counter, int64_t g) {
  const auto bits = philox4x32(seed ^ 0x6d6f65ull, counter + uint64_t(g));
  return (uint64_t(bits[0]) << 32) | bits[1];
}

// value s, gradient c * ds.
Tensor scale_gradient(const Tensor& s, double c) {
  if (c == 1.0) return s;
  return ops::add(s, ops::scale(ops::sub(s, s.detach()), c - 1.0));
}

Tensor index_tensor(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

}  // namespace

MoE::MoE(int64_t d_model, const FeedForwardConfig& cfg, bool bias, Generator& gen, const dist::ParallelGroups* groups,
         ExpertFactory factory)
    : cfg_(cfg), groups_(groups && groups->world.size() > 1 ? groups : nullptr) {
  validate_moe(cfg.moe);
  const int64_t E = cfg.moe.num_experts;
  const int64_t ep = groups_ ? groups_->expert.size() : 1;
  WENSU_CHECK(E % ep == 0, "moe: ", E, " experts cannot be split evenly over an expert-parallel group of ", ep,
              " ranks (choose an expert-parallel size that divides ffn.moe.num_experts)");
  gate = register_module("gate", std::make_shared<Gate>(d_model, cfg.moe, gen));
  const uint64_t counter = gen.reserve(uint64_t(E));
  const int64_t local = E / ep;
  first_ = groups_ ? groups_->expert.rank() * local : 0;
  if (!factory) {
    factory = [&](int64_t, Generator& g) -> std::shared_ptr<FeedForwardBlock> {
      if (cfg.moe.expert == "glu") return std::make_shared<GluFeedForward>(d_model, cfg, bias, g);
      return std::make_shared<FeedForward>(d_model, cfg, bias, g);
    };
  }
  for (int64_t i = 0; i < local; ++i) {
    const int64_t g = first_ + i;
    Generator eg(expert_seed(gen.seed(), counter, g));
    experts.push_back(register_module("experts." + std::to_string(g), factory(g, eg)));
  }
}

// Built-in experts run as grouped GEMMs over all local experts at once: each layer of the
// expert network is one grouped_matmul with one weight per expert.
Tensor MoE::run_experts(const Tensor& xs, const std::vector<int64_t>& offsets) {
  std::vector<FeedForward*> ffn;
  std::vector<GluFeedForward*> glu;
  for (auto& e : experts) {
    if (auto* f = dynamic_cast<FeedForward*>(e.get())) ffn.push_back(f);
    if (auto* g = dynamic_cast<GluFeedForward*>(e.get())) glu.push_back(g);
  }
  auto weights = [](const auto& list, auto member) {
    std::vector<Tensor> w, b;
    for (auto* e : list) {
      const Linear& l = *(e->*member);
      w.push_back(l.weight);
      if (l.bias.defined()) b.push_back(l.bias);
    }
    return std::make_pair(w, b);
  };
  if (ffn.size() == experts.size()) {
    auto [w1, b1] = weights(ffn, &FeedForward::fc1);
    auto [w2, b2] = weights(ffn, &FeedForward::fc2);
    Tensor h = apply_activation(cfg_.activation, ops::grouped_matmul(xs, w1, offsets, b1));  // [N, H]
    return ops::grouped_matmul(h, w2, offsets, b2);                                          // [N, D]
  }
  if (glu.size() == experts.size()) {
    auto [wg, bg] = weights(glu, &GluFeedForward::gate_proj);
    auto [wu, bu] = weights(glu, &GluFeedForward::up_proj);
    auto [wd, bd] = weights(glu, &GluFeedForward::down_proj);
    Tensor h = ops::mul(apply_activation(cfg_.activation, ops::grouped_matmul(xs, wg, offsets, bg)),
                        ops::grouped_matmul(xs, wu, offsets, bu));  // [N, H]
    return ops::grouped_matmul(h, wd, offsets, bd);                 // [N, D]
  }
  // Any other expert: each on its contiguous rows.
  std::vector<Tensor> parts;
  for (size_t e = 0; e < experts.size(); ++e) {
    const int64_t n = offsets[e + 1] - offsets[e];
    if (n > 0) parts.push_back(experts[e]->forward(xs.narrow(0, offsets[e], n)));
  }
  if (parts.empty()) return ops::scale(xs.narrow(0, 0, 0), 0.0);
  return parts.size() == 1 ? parts[0] : ops::concat(parts, 0);
}

// Expert parallel: xs [N, D] holds this rank's rows grouped by global expert. Ranks exchange
// the rows of each other's experts (all-to-all), run their local experts on everything they
// received, and send the results back in the order the rows came.
Tensor MoE::exchange_and_run(const Tensor& xs, const std::vector<int64_t>& counts) {
  const dist::Communicator& c = groups_->expert;
  const int64_t ep = c.size(), local = int64_t(experts.size());
  // Rows per (source rank, local expert): every rank sends its counts for each rank's experts.
  Tensor sent = Tensor::from_vector(counts, {int64_t(counts.size()), 1});  // [E, 1]
  std::vector<int64_t> per_rank(size_t(ep), local);
  const std::vector<int64_t> rc = c.all_to_all_rows(sent, per_rank, per_rank).to_vector<int64_t>();  // [ep * local]
  std::vector<int64_t> send_rows(size_t(ep), 0), recv_rows(size_t(ep), 0);
  for (int64_t q = 0; q < ep; ++q)
    for (int64_t e = 0; e < local; ++e) {
      send_rows[size_t(q)] += counts[size_t(q * local + e)];
      recv_rows[size_t(q)] += rc[size_t(q * local + e)];
    }
  Tensor xr = dist::all_to_all_rows(xs, send_rows, recv_rows, c);  // [M, D], by source rank, then expert
  // Regroup by local expert (then source rank): order[i] = row of xr that goes i-th.
  std::vector<int64_t> src_start(size_t(ep), 0), order, offsets(size_t(local) + 1, 0);
  for (int64_t s = 1; s < ep; ++s) src_start[size_t(s)] = src_start[size_t(s - 1)] + recv_rows[size_t(s - 1)];
  for (int64_t e = 0; e < local; ++e) {
    for (int64_t s = 0; s < ep; ++s) {
      int64_t start = src_start[size_t(s)];
      for (int64_t e2 = 0; e2 < e; ++e2) start += rc[size_t(s * local + e2)];
      for (int64_t i = 0; i < rc[size_t(s * local + e)]; ++i) order.push_back(start + i);
    }
    offsets[size_t(e) + 1] = int64_t(order.size());
  }
  std::vector<int64_t> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[size_t(order[i])] = int64_t(i);
  Tensor ye = run_experts(ops::index_select(xr, 0, index_tensor(order)), offsets);  // [M, D]
  Tensor yr = ops::index_select(ye, 0, index_tensor(inverse));
  return dist::all_to_all_rows(yr, recv_rows, send_rows, c);  // [N, D]
}

Tensor MoE::forward(const Tensor& x) {
  const Shape in_shape = x.shape();
  const int64_t D = x.size(-1), T = x.numel() / D, E = cfg_.moe.num_experts, K = cfg_.moe.top_k;
  Tensor x2 = x.reshape({T, D});  // [T, D]

  RoutingContext ctx;
  if (groups_) {
    ctx.comm = &groups_->world;
    const std::vector<int64_t> sizes = groups_->world.all_gather(T);
    ctx.global_tokens = 0;
    for (size_t r = 0; r < sizes.size(); ++r) {
      if (int64_t(r) < groups_->world.rank()) ctx.token_offset += sizes[r];
      ctx.global_tokens += sizes[r];
    }
  }
  GateOutput g = gate->forward(x2, ctx);
  const int64_t capacity =
      cfg_.moe.capacity_factor > 0 ? int64_t(std::ceil(cfg_.moe.capacity_factor * double(T * K) / double(E))) : 0;
  ops::MoeRouting r = ops::moe_routing(g.expert_index, E, capacity);
  Tensor xs = ops::moe_permute(x2, r);  // [N, D]
  Tensor ys = groups_ && groups_->expert.size() > 1 ? exchange_and_run(xs, r.counts) : run_experts(xs, r.offsets);
  Tensor out = ops::moe_combine(ys, g.weights, r);  // [T, D]

  // Metrics over the global batch; the losses as GateOutput defines them.
  std::vector<int64_t> stats(r.counts);
  stats.push_back(r.dropped);
  stats.push_back(r.rows() + r.dropped);
  if (groups_) {
    Tensor t = Tensor::from_vector(stats, {int64_t(stats.size())});
    groups_->world.all_reduce_sum(t);
    stats = t.to_vector<int64_t>();
  }
  metrics_.tokens_per_expert.assign(stats.begin(), stats.begin() + E);
  metrics_.dropped = stats[size_t(E)];
  metrics_.routed = stats[size_t(E) + 1];
  metrics_.balance_loss = g.balance_loss.item();
  metrics_.z_loss = g.z_loss.item();
  if (is_training()) {
    Tensor aux = ops::add(ops::scale(g.balance_loss, cfg_.moe.balance_loss_weight),
                          ops::scale(g.z_loss, cfg_.moe.z_loss_weight));
    aux_ = scale_gradient(aux, groups_ ? double(groups_->world.size()) : 1.0);
  } else {
    aux_ = Tensor();
  }
  return out.reshape(in_shape);
}

Tensor MoE::aux_loss() const { return aux_; }

bool is_expert_parameter(const std::string& name) {
  return name.rfind("experts.", 0) == 0 || name.find(".experts.") != std::string::npos;
}

void all_reduce_gradients(const Module& model, const dist::ParallelGroups* groups) {
  if (!groups || groups->world.size() == 1) return;
  std::vector<Tensor> shared, expert;
  for (auto& [name, p] : model.named_parameters()) (is_expert_parameter(name) ? expert : shared).push_back(p);
  dist::all_reduce_gradients(shared, groups->world, /*average=*/true);
  // Each expert's gradient already sums the expert group's contributions: average over the
  // data-parallel replicas, then divide by the expert group's size.
  dist::all_reduce_gradients(expert, groups->data, /*average=*/true);
  const double ep = double(groups->expert.size());
  if (ep > 1)
    for (auto& p : expert)
      if (p.grad().defined()) p.grad().copy_(ops::scale(p.grad(), 1.0 / ep));
}

}  // namespace wensu::nn
