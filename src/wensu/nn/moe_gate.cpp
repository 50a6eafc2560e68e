#include "wensu/nn/moe_gate.h"

#include <cmath>
#include <numbers>

#include "wensu/dist/comm.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/indexing.h"
#include "wensu/ops/moe.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"
#include "wensu/ops/softmax.h"
#include "wensu/ops/unary.h"

namespace wensu::nn {
namespace {

// Shazeer et al.'s floor on the noise scale, so the load estimator never divides by ~0.
constexpr double kNoiseEpsilon = 1e-2;

// Random numbers for this rank's tokens, keyed by global token index: token t of the step uses
// Philox counters base + (token_offset + t) * per_token ... + per_token - 1, whatever the
// split of the batch across ranks. Every rank reserves the counters of the whole global batch,
// so the "router" generator stays in step everywhere (and in checkpoints).
class TokenRandom {
 public:
  TokenRandom(const RoutingContext& ctx, int64_t T, int64_t global_tokens, int64_t per_token)
      : gen_(generator("router")), offset_(ctx.token_offset), T_(T), per_token_(per_token) {
    base_ = gen_.reserve(uint64_t(global_tokens * per_token));
  }
  // [T, n] uniform in [0, 1); n <= 4 * per_token.
  std::vector<double> uniform(int64_t n) const {
    std::vector<double> u(size_t(T_ * n));
    for (int64_t t = 0; t < T_; ++t) {
      const uint64_t c0 = base_ + uint64_t((offset_ + t) * per_token_);
      for (int64_t j = 0; j < n; j += 4) {
        const auto bits = philox4x32(gen_.seed(), c0 + uint64_t(j / 4));
        for (int64_t l = 0; l < 4 && j + l < n; ++l) u[size_t(t * n + j + l)] = uniform_from_bits(bits[size_t(l)]);
      }
    }
    return u;
  }
  // [T, n] standard normal (Box-Muller on pairs of uniforms); n <= 2 * per_token.
  std::vector<double> normal(int64_t n) const {
    const std::vector<double> u = uniform(2 * n);
    std::vector<double> z(size_t(T_ * n));
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t i = 0; i < n; ++i) {
        const double u1 = 1.0 - u[size_t(t * 2 * n + 2 * i)], u2 = u[size_t(t * 2 * n + 2 * i + 1)];
        z[size_t(t * n + i)] = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
      }
    return z;
  }

 private:
  Generator& gen_;
  int64_t offset_, T_, per_token_;
  uint64_t base_ = 0;
};

Tensor constant_like(const std::vector<double>& v, const Shape& shape, const Tensor& like) {
  return Tensor::from_vector(v, shape).to(like.dtype());
}

// Squared coefficient of variation var(v) / mean(v)^2 of v [E], with the unbiased variance
// (as torch.var in the reference implementations); 0 for a single expert.
Tensor cv_squared(const Tensor& v) {
  const int64_t E = v.size(0);
  if (E == 1) return ops::scale(ops::sum(v), 0.0);
  Tensor mean = ops::scale(ops::sum(v), 1.0 / double(E));
  Tensor d = ops::sub(v, mean);
  Tensor var = ops::scale(ops::sum(ops::mul(d, d)), 1.0 / double(E - 1));
  return ops::div(var, ops::add_scalar(ops::mul(mean, mean), 1e-10));
}

// Host counts of expert ids in idx [T, K] (columns [0, cols)), summed over the ranks.
std::vector<int64_t> global_counts(const Tensor& idx, int64_t cols, int64_t E, const dist::Communicator* comm) {
  const auto v = idx.to_vector<int64_t>();
  const int64_t K = idx.size(1);
  std::vector<int64_t> c(size_t(E), 0);
  for (size_t i = 0; i < v.size(); ++i)
    if (int64_t(i) % K < cols && v[i] >= 0) ++c[size_t(v[i])];
  if (comm && comm->size() > 1) {
    Tensor t = Tensor::from_vector(c, {E});
    comm->all_reduce_sum(t);
    c = t.to_vector<int64_t>();
  }
  return c;
}

}  // namespace

Tensor global_sum(const Tensor& local, const dist::Communicator* comm) {
  if (!comm || comm->size() == 1) return local;
  Tensor total = local.detach().clone();
  comm->all_reduce_sum(total);
  return ops::add(local, ops::sub(total, local.detach()));
}

Gate::Gate(int64_t d_model, const MoeConfig& cfg, Generator& gen) : cfg_(cfg) {
  validate_moe(cfg);
  router = register_module("router", std::make_shared<Linear>(d_model, cfg.num_experts, false, gen));
  if (cfg.gate == "noisy") noise = register_module("noise", std::make_shared<Linear>(d_model, cfg.num_experts, false, gen));
}

GateOutput Gate::forward(const Tensor& x, const RoutingContext& ctx) {
  WENSU_CHECK(x.dim() == 2, "moe gate: expected tokens [T, D], got ", x.describe());
  const int64_t T = x.size(0), D = x.size(1), E = cfg_.num_experts, K = cfg_.top_k;
  const int64_t Tg = ctx.global_tokens >= 0 ? ctx.global_tokens : T;
  const dist::Communicator* comm = ctx.comm;
  const bool train = is_training();
  GateOutput out;

  Tensor xin = x;  // [T, D]
  if (cfg_.gate == "switch" && train && cfg_.jitter > 0) {
    TokenRandom rnd(ctx, T, Tg, (D + 3) / 4);
    std::vector<double> u = rnd.uniform(D);
    for (auto& e : u) e = 1.0 - cfg_.jitter + 2.0 * cfg_.jitter * e;
    xin = ops::mul(x, constant_like(u, {T, D}, x));
  }
  Tensor logits = router->forward(xin);                            // [T, E]
  Tensor logp = ops::log_softmax(logits, -1);                      // [T, E]
  Tensor probs = ops::exp(logp);                                   // [T, E]
  Tensor lse = ops::sub(logits.narrow(1, 0, 1), logp.narrow(1, 0, 1));  // [T, 1] logsumexp per token
  out.z_loss = ops::scale(global_sum(ops::sum(ops::mul(lse, lse)), comm), 1.0 / double(Tg));
  // P_i: mean router probability over the global batch.
  Tensor P = ops::scale(global_sum(ops::sum(probs, {0}), comm), 1.0 / double(Tg));  // [E]
  auto f_times_P = [&](int64_t cols) {  // E * sum_i f_i P_i, f over the first `cols` choices
    out.chosen_per_expert = global_counts(out.expert_index, K, E, comm);
    const std::vector<int64_t> c = global_counts(out.expert_index, cols, E, comm);
    std::vector<double> f(static_cast<size_t>(E));
    for (int64_t i = 0; i < E; ++i) f[size_t(i)] = double(c[size_t(i)]) / double(Tg * cols);
    return ops::scale(ops::sum(ops::mul(constant_like(f, {E}, P), P)), double(E));
  };

  if (cfg_.gate == "naive") {
    auto [vals, idx] = ops::topk(logits, K);  // [T, K]
    out.expert_index = idx;
    out.weights = ops::softmax(vals, -1);
    out.balance_loss = f_times_P(K);
  } else if (cfg_.gate == "switch") {
    auto [vals, idx] = ops::topk(probs, 1);  // [T, 1]
    out.expert_index = idx;
    out.weights = vals;
    out.balance_loss = f_times_P(1);
  } else if (cfg_.gate == "gshard") {
    auto [vals, idx] = ops::topk(probs, 2);                                     // [T, 2]
    Tensor w = ops::div(vals, ops::sum(vals, {1}, /*keepdim=*/true));            // g1 + g2 = 1
    std::vector<int64_t> index = idx.to_vector<int64_t>();
    if (cfg_.random_second && train) {
      TokenRandom rnd(ctx, T, Tg, 1);
      const std::vector<double> u = rnd.uniform(1);
      const std::vector<double> g = w.to(DType::f64).to_vector<double>();
      std::vector<double> keep(size_t(T * 2), 1.0);
      for (int64_t t = 0; t < T; ++t)
        if (2.0 * g[size_t(t * 2 + 1)] < u[size_t(t)]) {
          index[size_t(t * 2 + 1)] = -1;
          keep[size_t(t * 2 + 1)] = 0.0;
        }
      w = ops::mul(w, constant_like(keep, {T, 2}, w));
    }
    out.expert_index = Tensor::from_vector(index, {T, 2});
    out.weights = w;
    out.balance_loss = f_times_P(1);
  } else {  // noisy
    Tensor h = logits, noise_std;  // h: the noisy logits H [T, E]
    if (train) {
      noise_std = ops::add_scalar(ops::softplus(noise->forward(x)), kNoiseEpsilon);  // [T, E]
      TokenRandom rnd(ctx, T, Tg, (E + 1) / 2);
      h = ops::add(logits, ops::mul(constant_like(rnd.normal(E), {T, E}, logits), noise_std));
    }
    const int64_t kk = std::min(K + 1, E);
    auto [vals, idx] = ops::topk(h, kk);  // [T, kk]
    Tensor top_vals = vals.narrow(1, 0, K), top_idx = idx.narrow(1, 0, K).contiguous();
    out.expert_index = top_idx;
    out.weights = ops::softmax(top_vals, -1);
    out.chosen_per_expert = global_counts(top_idx, K, E, comm);
    // Importance: the gate weights each expert receives, summed over the batch.
    Tensor dense = ops::scatter_add(Tensor::zeros({T, E}, x.dtype()), 1, top_idx, out.weights);  // [T, E]
    Tensor importance = global_sum(ops::sum(dense, {0}), comm);                                  // [E]
    Tensor load;
    if (train && K < E) {
      // P(H_i stays in the top k if only its own noise is redrawn): with i among the chosen, it
      // must beat the (k+1)-th largest of H; otherwise the k-th.
      std::vector<double> in(size_t(T * E), 0.0);
      const auto ti = top_idx.to_vector<int64_t>();
      for (int64_t t = 0; t < T; ++t)
        for (int64_t k = 0; k < K; ++k) in[size_t(t * E + ti[size_t(t * K + k)])] = 1.0;
      Tensor in_mask = constant_like(in, {T, E}, x);
      Tensor thr_in = vals.narrow(1, K, 1), thr_out = vals.narrow(1, K - 1, 1);  // [T, 1]
      Tensor thr = ops::add(ops::mul(in_mask, thr_in), ops::mul(ops::add_scalar(ops::neg(in_mask), 1.0), thr_out));
      Tensor z = ops::div(ops::sub(logits, thr), noise_std);  // [T, E]
      Tensor phi = ops::scale(ops::add_scalar(ops::erf(ops::scale(z, 1.0 / std::numbers::sqrt2)), 1.0), 0.5);
      load = global_sum(ops::sum(phi, {0}), comm);  // [E]
    } else {
      std::vector<double> c(out.chosen_per_expert.begin(), out.chosen_per_expert.end());
      load = constant_like(c, {E}, x);
    }
    out.balance_loss = ops::add(cv_squared(importance), cv_squared(load));
  }
  if (out.chosen_per_expert.empty()) out.chosen_per_expert = global_counts(out.expert_index, K, E, comm);
  return out;
}

}  // namespace wensu::nn
