// The MoE block against a plain reference that loops over tokens (float64): for every gate,
// dropless and with capacity dropping, outputs and all parameter and input gradients match.
// Also: finite-difference gradients of the whole block, the gates' auxiliary losses against
// hand-written formulas, metrics, expert factories, and configs.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "ops/harness.h"
#include "wensu/core/generator.h"
#include "wensu/nn/moe.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"
#include "wensu/ops/softmax.h"

using namespace wensu;
using test::max_rel_error;

namespace {

nn::FeedForwardConfig moe_config(const std::string& gate, int64_t E, int64_t K, double capacity_factor,
                                 const std::string& expert = "ffn") {
  nn::FeedForwardConfig c;
  c.kind = "moe";
  c.d_ff = 12;
  c.activation = "gelu";
  c.moe.num_experts = E;
  c.moe.top_k = K;
  c.moe.gate = gate;
  c.moe.capacity_factor = capacity_factor;
  c.moe.expert = expert;
  c.moe.jitter = gate == "switch" ? 0.1 : 0.0;
  c.moe.z_loss_weight = 0.001;
  return c;
}

// Runs the expert network of `e` on one token row [1, D] with library ops (no grouping).
Tensor expert_on_row(nn::FeedForwardBlock& e, const Tensor& row) { return e.forward(row); }

// The reference: same gate decision, then token by token, choice by choice, the chosen expert on
// that token alone, with the capacity rule of ops::moe_routing (first choices of all tokens in
// token order claim capacity first, then second choices, ...).
Tensor reference_forward(nn::MoE& moe, const nn::GateOutput& g, const Tensor& x2, int64_t capacity) {
  const int64_t T = x2.size(0), K = g.expert_index.size(1), E = moe.num_experts();
  const auto idx = g.expert_index.to_vector<int64_t>();
  std::vector<int64_t> used(size_t(E), 0);
  std::vector<char> kept(size_t(T * K), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t e = idx[size_t(t * K + k)];
      if (e < 0) continue;
      if (capacity == 0 || used[size_t(e)] < capacity) {
        ++used[size_t(e)];
        kept[size_t(t * K + k)] = 1;
      }
    }
  std::vector<Tensor> rows;
  for (int64_t t = 0; t < T; ++t) {
    Tensor row = x2.narrow(0, t, 1);                         // [1, D]
    Tensor acc = ops::scale(row, 0.0);                       // [1, D]
    for (int64_t k = 0; k < K; ++k) {
      if (!kept[size_t(t * K + k)]) continue;
      const int64_t e = idx[size_t(t * K + k)];
      Tensor w = g.weights.narrow(0, t, 1).narrow(1, k, 1);  // [1, 1]
      acc = ops::add(acc, ops::mul(w, expert_on_row(*moe.experts[size_t(e)], row)));
    }
    rows.push_back(acc);
  }
  return ops::concat(rows, 0);  // [T, D]
}

struct Grads {
  Tensor out, dx;
  std::map<std::string, Tensor> params;
};

// sum(out * w) backward; out from `fwd`.
template <class F>
Grads run(nn::MoE& moe, const Tensor& x, const Tensor& w, F fwd) {
  moe.zero_grad();
  x.zero_grad();
  Tensor out = fwd();
  ops::sum(ops::mul(out, w)).backward();
  Grads r{out.detach(), x.grad(), {}};
  for (auto& [name, p] : moe.named_parameters())
    if (p.grad().defined()) r.params[name] = p.grad();
  return r;
}

int64_t capacity_of(const nn::FeedForwardConfig& c, int64_t T) {
  return c.moe.capacity_factor > 0 ? int64_t(std::ceil(c.moe.capacity_factor * double(T * c.moe.top_k) / double(c.moe.num_experts)))
                                   : 0;
}

}  // namespace

TEST(MoE, FastPathMatchesTokenLoopReferenceForEveryGate) {
  const int64_t B = 3, L = 7, D = 8, T = B * L;
  for (std::string gate : {"naive", "noisy", "gshard", "switch"}) {
    for (double cf : {0.0, 0.75}) {
      for (std::string expert : {"ffn", "glu"}) {
        const int64_t K = gate == "switch" ? 1 : 2;
        auto cfg = moe_config(gate, 4, K, cf, expert);
        Generator gen(11);
        nn::MoE moe(D, cfg, /*bias=*/true, gen);
        moe.convert_(DType::f64);
        moe.train();
        Generator dg(12);
        Tensor x = Tensor::randn({B, L, D}, dg, DType::f64).set_requires_grad(true);
        Tensor w = Tensor::randn({B, L, D}, dg, DType::f64);
        const GeneratorState router = generator("router").state();
        Grads fast = run(moe, x, w, [&] { return moe.forward(x); });
        const auto metrics = moe.metrics();
        generator("router").set_state(router);  // the same noise, jitter and random routing
        Grads ref = run(moe, x, w, [&] {
          nn::GateOutput g = moe.gate->forward(x.reshape({T, D}), nn::RoutingContext{});
          return reference_forward(moe, g, x.reshape({T, D}), capacity_of(cfg, T)).reshape({B, L, D});
        });
        const std::string what = gate + (cf > 0 ? " capacity " : " dropless ") + expert;
        EXPECT_LE(max_rel_error(fast.out, ref.out), 1e-12) << what;
        EXPECT_LE(max_rel_error(fast.dx, ref.dx), 1e-12) << what;
        EXPECT_EQ(fast.params.size(), ref.params.size()) << what;
        for (auto& [name, g] : ref.params) {
          ASSERT_TRUE(fast.params.count(name)) << what << ": no gradient for " << name;
          EXPECT_LE(max_rel_error(fast.params[name], g), 1e-12) << what << " " << name;
        }
        int64_t kept = 0;
        for (int64_t c : metrics.tokens_per_expert) kept += c;
        EXPECT_EQ(kept + metrics.dropped, metrics.routed) << what;
        if (cf == 0.0) EXPECT_EQ(metrics.dropped, 0) << what;
        if (cf > 0 && gate != "gshard") EXPECT_GT(metrics.dropped, 0) << what << ": the capacity case should drop";
      }
    }
  }
}

// Float32 fast path against the float64 reference, at the tolerance of the op tests.
TEST(MoE, Float32MatchesFloat64) {
  const int64_t T = 40, D = 16;
  auto cfg = moe_config("naive", 8, 2, 1.0);
  Generator gen(3);
  nn::MoE m32(D, cfg, true, gen);
  Generator gen2(3);
  nn::MoE m64(D, cfg, true, gen2);
  m64.convert_(DType::f64);
  Generator dg(4);
  Tensor x = Tensor::randn({T, D}, dg);
  Tensor a = m32.forward(x), b = m64.forward(x.to(DType::f64));
  EXPECT_LE(max_rel_error(a, b), 1e-5);
}

// Central differences (float64) of sum(out * w) with respect to the input and to one weight of
// each expert layer, away from routing ties (the gate's choices are locally constant).
TEST(MoE, GradientsMatchFiniteDifferences) {
  const int64_t T = 6, D = 5;
  for (std::string gate : {"naive", "switch"}) {
    auto cfg = moe_config(gate, 3, gate == "switch" ? 1 : 2, 0.0);
    cfg.moe.jitter = 0.0;
    cfg.d_ff = 4;
    Generator gen(21);
    nn::MoE moe(D, cfg, true, gen);
    moe.convert_(DType::f64);
    Generator dg(22);
    Tensor x = Tensor::randn({T, D}, dg, DType::f64).set_requires_grad(true);
    Tensor w = Tensor::randn({T, D}, dg, DType::f64);
    auto loss = [&] { return ops::sum(ops::mul(moe.forward(x), w)).item(); };
    moe.zero_grad();
    ops::sum(ops::mul(moe.forward(x), w)).backward();
    std::vector<std::pair<std::string, Tensor>> checks = {{"x", x}};
    for (auto& [name, p] : moe.named_parameters()) checks.push_back({name, p});
    const double eps = 1e-6;
    for (auto& [name, t] : checks) {
      Tensor grad = t.grad();
      double* p = t.data<double>();
      const int64_t n = std::min<int64_t>(t.numel(), 6);
      for (int64_t i = 0; i < n; ++i) {
        const double keep = p[i];
        p[i] = keep + eps;
        const double up = loss();
        p[i] = keep - eps;
        const double down = loss();
        p[i] = keep;
        const double fd = (up - down) / (2 * eps);
        const double an = grad.defined() ? grad.to_vector<double>()[size_t(i)] : 0.0;
        EXPECT_NEAR(an, fd, 1e-6 * std::max(1.0, std::abs(fd))) << gate << " " << name << "[" << i << "]";
      }
    }
  }
}

// The balance losses against their formulas computed in double from the router's probabilities.
TEST(MoE, GateLossesMatchTheirFormulas) {
  const int64_t T = 30, D = 6, E = 5;
  Generator dg(31);
  Tensor x = Tensor::randn({T, D}, dg, DType::f64);
  for (std::string gate : {"naive", "gshard", "switch", "noisy"}) {
    const int64_t K = gate == "switch" ? 1 : 2;
    auto cfg = moe_config(gate, E, K, 0.0);
    cfg.moe.jitter = 0.0;
    Generator gen(32);
    nn::Gate g(D, cfg.moe, gen);
    g.convert_(DType::f64);
    g.eval();  // deterministic: no noise, no random routing
    nn::GateOutput out = g.forward(x, {});
    Tensor logits = g.router->forward(x);
    const auto lg = logits.to_vector<double>();
    const auto idx = out.expert_index.to_vector<int64_t>();
    std::vector<double> P(size_t(E), 0.0), f(size_t(E), 0.0), importance(size_t(E), 0.0), load(size_t(E), 0.0);
    double z = 0;
    for (int64_t t = 0; t < T; ++t) {
      double mx = -1e300, s = 0;
      for (int64_t e = 0; e < E; ++e) mx = std::max(mx, lg[size_t(t * E + e)]);
      for (int64_t e = 0; e < E; ++e) s += std::exp(lg[size_t(t * E + e)] - mx);
      const double lse = mx + std::log(s);
      z += lse * lse / double(T);
      for (int64_t e = 0; e < E; ++e) P[size_t(e)] += std::exp(lg[size_t(t * E + e)] - lse) / double(T);
      const int64_t cols = gate == "naive" ? K : 1;
      for (int64_t k = 0; k < cols; ++k) f[size_t(idx[size_t(t * K + k)])] += 1.0 / double(T * cols);
      const auto wv = out.weights.to_vector<double>();
      for (int64_t k = 0; k < K; ++k) {
        importance[size_t(idx[size_t(t * K + k)])] += wv[size_t(t * K + k)];
        load[size_t(idx[size_t(t * K + k)])] += 1.0;
      }
    }
    auto cv2 = [&](const std::vector<double>& v) {
      double m = 0, var = 0;
      for (double e : v) m += e / double(E);
      for (double e : v) var += (e - m) * (e - m) / double(E - 1);
      return var / (m * m + 1e-10);
    };
    double want = 0;
    if (gate == "noisy") {
      want = cv2(importance) + cv2(load);
    } else {
      for (int64_t e = 0; e < E; ++e) want += double(E) * f[size_t(e)] * P[size_t(e)];
    }
    EXPECT_NEAR(out.balance_loss.item(), want, 1e-12 * std::max(1.0, want)) << gate;
    EXPECT_NEAR(out.z_loss.item(), z, 1e-12 * z) << gate;
  }
}

// GShard's random routing drops second choices with probability 1 - min(1, 2 g2): over many
// tokens the kept fraction matches the mean of min(1, 2 g2), and dropped pairs carry weight 0.
TEST(MoE, GShardRandomRoutingKeepsSecondExpertWithProbabilityTwiceItsWeight) {
  const int64_t T = 4000, D = 4;
  auto cfg = moe_config("gshard", 4, 2, 0.0);
  Generator gen(41);
  nn::Gate g(D, cfg.moe, gen);
  Generator dg(42);
  Tensor x = Tensor::randn({T, D}, dg);
  g.train();
  nn::GateOutput out = g.forward(x, {});
  const auto idx = out.expert_index.to_vector<int64_t>();
  const auto w = out.weights.to_vector<float>();
  g.eval();
  const auto w_eval = g.forward(x, {}).weights.to_vector<float>();
  double expect = 0, kept = 0;
  for (int64_t t = 0; t < T; ++t) {
    expect += std::min(1.0, 2.0 * w_eval[size_t(t * 2 + 1)]) / double(T);
    if (idx[size_t(t * 2 + 1)] >= 0) kept += 1.0 / double(T);
    else EXPECT_EQ(w[size_t(t * 2 + 1)], 0.0f);
    EXPECT_GE(idx[size_t(t * 2)], 0);
  }
  EXPECT_NEAR(kept, expect, 4.0 * std::sqrt(0.25 / double(T)));  // 4 sigma of a Bernoulli mean
}

// Any module can be an expert: a factory-built expert that is not one of the built-in kinds runs
// on its slice of rows and gives what the grouped path gives with the same weights.
TEST(MoE, FactoryExpertsRunOnTheirRows) {
  struct Wrapped : nn::FeedForwardBlock {
    std::shared_ptr<nn::FeedForward> inner;
    Wrapped(int64_t d, const nn::FeedForwardConfig& c, Generator& g) {
      inner = register_module("inner", std::make_shared<nn::FeedForward>(d, c, true, g));
    }
    Tensor forward(const Tensor& x) override { return inner->forward(x); }
  };
  const int64_t T = 25, D = 6;
  auto cfg = moe_config("naive", 4, 2, 0.0);
  Generator g1(51), g2(51);
  nn::MoE plain(D, cfg, true, g1);
  nn::MoE wrapped(D, cfg, true, g2, nullptr,
                  [&](int64_t, Generator& g) { return std::make_shared<Wrapped>(D, cfg, g); });
  auto names = wrapped.named_parameters();
  for (auto& [name, p] : names) {
    std::string plain_name = name;
    const auto at = plain_name.find(".inner");
    if (at != std::string::npos) plain_name.erase(at, 6);
    p.copy_(plain.parameter(plain_name));
  }
  Generator dg(52);
  Tensor x = Tensor::randn({T, D}, dg);
  EXPECT_LE(max_rel_error(wrapped.forward(x), plain.forward(x)), 1e-6);
  EXPECT_TRUE(names.size() > 0 && names.back().first.find("experts.3.inner.") != std::string::npos);
}

// Expert initialisation depends on the global expert index only.
TEST(MoE, ExpertWeightsDoNotDependOnHowManyExpertsAModelHolds) {
  auto cfg = moe_config("naive", 4, 2, 0.0);
  Generator g1(61), g2(61);
  nn::MoE a(8, cfg, true, g1), b(8, cfg, true, g2);
  EXPECT_EQ(a.parameter("experts.2.fc1.weight").to_vector<float>(), b.parameter("experts.2.fc1.weight").to_vector<float>());
  EXPECT_NE(a.parameter("experts.2.fc1.weight").to_vector<float>(), a.parameter("experts.1.fc1.weight").to_vector<float>());
}

TEST(MoE, ConfigRoundTripsAndRejectsBadFields) {
  nn::TransformerConfig c;
  c.d_model = 16;
  c.n_heads = 2;
  c.n_layers = 1;
  c.ffn = moe_config("gshard", 4, 2, 1.25, "glu");
  nlohmann::json j = c;
  nn::TransformerConfig back = j.get<nn::TransformerConfig>();
  EXPECT_EQ(nlohmann::json(back), j);
  EXPECT_EQ(back.ffn.moe.gate, "gshard");
  j["ffn"]["moe"]["top_k"] = 3;
  try {
    j.get<nn::TransformerConfig>();
    FAIL() << "top_k 3 with gshard must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_k = 2"), std::string::npos) << e.what();
  }
  j["ffn"]["moe"]["top_k"] = 2;
  j["ffn"]["moe"]["gates"] = "naive";
  EXPECT_THROW(j.get<nn::TransformerConfig>(), Error);  // unknown key
}

// A transformer with MoE layers trains: its aux loss is defined, and loss falls on a fixed batch.
TEST(MoE, TransformerWithMoeLayersTrains) {
  nn::TransformerConfig c;
  c.d_model = 16;
  c.n_heads = 2;
  c.n_layers = 2;
  c.ffn = moe_config("switch", 4, 1, 1.5);
  Generator gen(71);
  nn::Transformer model(c, gen);
  Generator dg(72);
  Tensor x = Tensor::randn({2, 10, 16}, dg), target = Tensor::randn({2, 10, 16}, dg);
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    model.zero_grad();
    Tensor d = ops::sub(model.forward(x), target);
    Tensor loss = ops::mean(ops::mul(d, d));
    Tensor aux = model.aux_loss();
    ASSERT_TRUE(aux.defined());
    ops::add(loss, aux).backward();
    for (auto& p : model.parameters())
      if (p.grad().defined()) p.copy_(ops::sub(p, ops::scale(p.grad(), 0.05)).detach());
    (step == 0 ? first : last) = loss.item();
  }
  EXPECT_LT(last, 0.8 * first);
}
