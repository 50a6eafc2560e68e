// Mixture-of-experts behaviour the op harness cannot express: the routing tables themselves
// against a sort-based reference, the ordering and capacity rule, error messages, topk's tie
// and NaN order, permute -> combine as the identity, and bit-identical results on 1 and 2
// threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "test_support.h"
#include "wensu/core/generator.h"
#include "wensu/core/parallel.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/moe.h"
#include "wensu/ops/reduce.h"

using namespace wensu;

namespace {

using test::error_of;

Tensor random_experts(Generator& g, int64_t T, int64_t K, int64_t E) {
  auto u = Tensor::rand({T, K}, g, DType::f64).to_vector<double>();
  std::vector<int64_t> v(u.size());
  for (size_t i = 0; i < u.size(); ++i) v[i] = std::min(E - 1, int64_t(u[i] * double(E)));
  return Tensor::from_vector(v, {T, K});
}

// The routing as a stable sort of all pairs by (expert, choice, token); an expert keeps its
// first `capacity` pairs in that order.
struct Reference {
  std::vector<int64_t> counts, offsets, position, source;
  int64_t dropped = 0;
};

Reference reference_routing(const Tensor& expert_index, int64_t E, int64_t capacity) {
  const int64_t T = expert_index.size(0), K = expert_index.size(1);
  auto ei = expert_index.to_vector<int64_t>();
  std::vector<std::tuple<int64_t, int64_t, int64_t>> pairs;  // (expert, choice, token)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) pairs.emplace_back(ei[size_t(t * K + k)], k, t);
  std::stable_sort(pairs.begin(), pairs.end());
  Reference r;
  r.counts.assign(size_t(E), 0);
  r.position.assign(size_t(T * K), -1);
  std::vector<int64_t> seen(size_t(E), 0);
  for (auto [e, k, t] : pairs) {
    if (capacity > 0 && seen[size_t(e)] >= capacity) {
      ++r.dropped;
      continue;
    }
    ++seen[size_t(e)];
    ++r.counts[size_t(e)];
    r.position[size_t(t * K + k)] = int64_t(r.source.size());
    r.source.push_back(t);
  }
  r.offsets.assign(size_t(E + 1), 0);
  for (int64_t e = 0; e < E; ++e) r.offsets[size_t(e + 1)] = r.offsets[size_t(e)] + r.counts[size_t(e)];
  return r;
}

struct ThreadCount {
  int saved = num_threads();
  ~ThreadCount() { set_num_threads(saved); }
};

}  // namespace

TEST(MoeRouting, MatchesSortedReferenceOnRandomInputs) {
  Generator gen(7);
  // (T, K, E, capacity): dropless, tight capacities that drop, and a capacity nobody reaches.
  const int64_t configs[][4] = {{50, 2, 4, 0}, {37, 3, 5, 7}, {64, 2, 8, 3}, {20, 1, 3, 0}, {30, 4, 2, 1000}, {1, 2, 6, 1}};
  for (auto& c : configs) {
    const int64_t T = c[0], K = c[1], E = c[2], cap = c[3];
    Tensor ei = random_experts(gen, T, K, E);
    ops::MoeRouting r = ops::moe_routing(ei, E, cap);
    Reference want = reference_routing(ei, E, cap);
    SCOPED_TRACE(testing::Message() << "T=" << T << " K=" << K << " E=" << E << " capacity=" << cap);
    EXPECT_EQ(r.tokens, T);
    EXPECT_EQ(r.top_k, K);
    EXPECT_EQ(r.experts, E);
    EXPECT_EQ(r.capacity, cap);
    EXPECT_EQ(r.counts, want.counts);
    EXPECT_EQ(r.offsets, want.offsets);
    EXPECT_EQ(r.position.shape(), Shape({T, K}));
    EXPECT_EQ(r.position.to_vector<int64_t>(), want.position);
    EXPECT_EQ(r.source.to_vector<int64_t>(), want.source);
    EXPECT_EQ(r.dropped, want.dropped);
    EXPECT_EQ(r.rows(), T * K - want.dropped);
    if (cap > 0)
      for (int64_t n : r.counts) EXPECT_LE(n, cap);
  }
}

// Inside an expert, rows go by choice then token, and capacity keeps exactly the earliest pairs
// of that order (GShard: first choices claim capacity first).
TEST(MoeRouting, FirstChoicesComeFirstAndClaimCapacityFirst) {
  Generator gen(11);
  const int64_t T = 40, K = 3, E = 4, cap = 12;
  Tensor ei = random_experts(gen, T, K, E);
  ops::MoeRouting r = ops::moe_routing(ei, E, cap);
  auto e_of = ei.to_vector<int64_t>();
  auto pos = r.position.to_vector<int64_t>();
  std::vector<std::pair<int64_t, int64_t>> at_row(size_t(r.rows()));  // row -> (choice, token)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k)
      if (pos[size_t(t * K + k)] >= 0) at_row[size_t(pos[size_t(t * K + k)])] = {k, t};
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t row = r.offsets[size_t(e)] + 1; row < r.offsets[size_t(e + 1)]; ++row)
      EXPECT_LT(at_row[size_t(row - 1)], at_row[size_t(row)]) << "expert " << e << " row " << row;
    // Every dropped pair of e comes after the last kept one.
    if (r.counts[size_t(e)] == 0) continue;
    const auto last_kept = at_row[size_t(r.offsets[size_t(e + 1)] - 1)];
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k)
        if (e_of[size_t(t * K + k)] == e && pos[size_t(t * K + k)] < 0)
          EXPECT_GT(std::make_pair(k, t), last_kept) << "expert " << e << " dropped (token " << t << ", choice " << k << ")";
  }
  EXPECT_GT(r.dropped, 0);  // 120 pairs over 4 experts of capacity 12
}

// Index -1 marks a pair the gate chose not to route (GShard's random second expert): no row, no
// capacity used, not counted as dropped; combine treats it like a dropped pair.
TEST(MoeRouting, MinusOneIsNotRouted) {
  // Capacity 2: expert 0 takes the first choices of tokens 0 and 1 and drops token 1's second
  // choice; the two -1 pairs take no row and are not counted as dropped.
  Tensor ei = Tensor::from_vector(std::vector<int64_t>{0, -1, 0, 0, 1, -1}, {3, 2});
  ops::MoeRouting r = ops::moe_routing(ei, 2, /*capacity=*/2);
  EXPECT_EQ(r.position.to_vector<int64_t>(), (std::vector<int64_t>{0, -1, 1, -1, 2, -1}));
  EXPECT_EQ(r.counts, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(r.dropped, 1);  // token 1's second choice: expert 0 is full
  EXPECT_EQ(r.source.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
  Tensor y = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3, 1});
  Tensor w = Tensor::from_vector(std::vector<double>{0.5, 9, 0.25, 9, 2, 9}, {3, 2});
  EXPECT_EQ(ops::moe_combine(y, w, r).to_vector<double>(), (std::vector<double>{0.5, 0.5, 6}));
}

TEST(MoeRouting, BadExpertIndexNamesTokenChoiceAndValue) {
  Tensor ei = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 7, 1, 1}, {3, 2});
  std::string msg = error_of([&] { ops::moe_routing(ei, 4); });
  EXPECT_NE(msg.find("token 1, choice 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("= 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[0, 4)"), std::string::npos) << msg;
  msg = error_of([&] { ops::moe_routing(Tensor::from_vector(std::vector<int64_t>{0, -2}, {1, 2}), 3); });
  EXPECT_NE(msg.find("token 0, choice 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("= -2"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { ops::moe_routing(Tensor::zeros({2, 2}), 3); }).find("int64"), std::string::npos);
  EXPECT_NE(error_of([&] { ops::moe_routing(ei, 8, -1); }).find("capacity"), std::string::npos);
  // A routing edited by hand is caught before the kernels index through it.
  ops::MoeRouting r = ops::moe_routing(ei, 8);
  r.position.data<int64_t>()[0] = 5;
  msg = error_of([&] { ops::moe_permute(Tensor::zeros({3, 2}), r); });
  EXPECT_NE(msg.find("position[0, 0] = 5"), std::string::npos) << msg;
}

TEST(GroupedMatmul, ArgumentErrorsSayWhatToFix) {
  Tensor x = Tensor::zeros({5, 3});
  std::vector<Tensor> w{Tensor::zeros({4, 3}), Tensor::zeros({4, 3})};
  EXPECT_NE(error_of([&] { ops::grouped_matmul(x, w, {0, 5}); }).find("G + 1 = 3"), std::string::npos);
  EXPECT_NE(error_of([&] { ops::grouped_matmul(x, w, {0, 2, 4}); }).find("end at N = 5"), std::string::npos);
  EXPECT_NE(error_of([&] { ops::grouped_matmul(x, w, {0, 3, 2, 5}); }).find("offsets"), std::string::npos);
  EXPECT_NE(error_of([&] { ops::grouped_matmul(x, {w[0], Tensor::zeros({4, 2})}, {0, 2, 5}); }).find("w[1]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::grouped_matmul(x, w, {0, 2, 5}, {Tensor::zeros({4})}); }).find("bias"),
            std::string::npos);
}

// Values and indices against a stable sort with NaN above every number, on rows full of ties.
TEST(Topk, TiesKeepIndexOrderAndNaNCountsAsLargest) {
  Generator gen(3);
  const int64_t rows = 50, n = 9;
  auto u = Tensor::rand({rows, n}, gen, DType::f64).to_vector<double>();
  std::vector<double> xv(u.size());
  for (size_t i = 0; i < u.size(); ++i)  // values in {0, 1, 2, 3} and some NaN
    xv[i] = u[i] < 0.15 ? std::numeric_limits<double>::quiet_NaN() : std::floor(u[i] * 4.0);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = Tensor::from_vector(xv, {rows, n}).to(dt);
    for (int64_t k : {int64_t(1), int64_t(4), n}) {
      auto [values, indices] = ops::topk(x, k);
      ASSERT_EQ(indices.shape(), Shape({rows, k}));
      auto vv = values.to_vector<double>();
      auto iv = indices.to_vector<int64_t>();
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<int64_t> order(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
        auto key = [&](int64_t i) {
          double v = xv[size_t(r * n + i)];
          return std::isnan(v) ? std::numeric_limits<double>::infinity() : v;
        };
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) > key(b); });
        for (int64_t j = 0; j < k; ++j) {
          const int64_t want = order[size_t(j)];
          EXPECT_EQ(iv[size_t(r * k + j)], want) << "row " << r << " rank " << j << " k " << k;
          const double wv = xv[size_t(r * n + want)];
          if (std::isnan(wv))
            EXPECT_TRUE(std::isnan(vv[size_t(r * k + j)]));
          else
            EXPECT_EQ(vv[size_t(r * k + j)], wv);
        }
      }
    }
  }
  EXPECT_NE(error_of([&] { ops::topk(Tensor::zeros({2, 3}), 4); }).find("k = 4"), std::string::npos);
}

// With one choice per token and unit gate weights, combine undoes permute exactly.
TEST(MoePermuteCombine, UnitWeightsAndTopOneIsIdentity) {
  Generator gen(5);
  const int64_t T = 97, D = 33, E = 6;
  Tensor x = Tensor::randn({T, D}, gen);
  ops::MoeRouting r = ops::moe_routing(random_experts(gen, T, 1, E), E);
  Tensor xs = ops::moe_permute(x, r);  // [T, D] in expert order
  EXPECT_EQ(xs.shape(), Shape({T, D}));
  Tensor back = ops::moe_combine(xs, Tensor::ones({T, 1}), r);
  EXPECT_EQ(back.to_vector<float>(), x.to_vector<float>());
}

// permute -> grouped_matmul (with bias) -> combine, forward and every gradient, with capacity
// drops: the same bits on 1 and 2 threads. The groups are many and even, so 2 threads run the
// concurrent schedule (single-threaded GEMMs) against 1 thread's one-after-another schedule.
TEST(MoeOps, SameBitsOnOneAndTwoThreads) {
  ThreadCount restore;
  const int64_t T = 600, K = 2, E = 8, D = 48, H = 80, cap = 140;  // 8 x 140 < 1200 pairs: drops
  Generator gen(21);
  Tensor ei = random_experts(gen, T, K, E);
  Tensor x0 = Tensor::randn({T, D}, gen), gate0 = Tensor::rand({T, K}, gen);
  std::vector<Tensor> w0, b0;
  for (int64_t e = 0; e < E; ++e) {
    w0.push_back(Tensor::randn({H, D}, gen));
    b0.push_back(Tensor::randn({H}, gen));
  }
  Tensor wsum = Tensor::randn({T, H}, gen);
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor x = x0.clone().set_requires_grad(true), gate = gate0.clone().set_requires_grad(true);
    std::vector<Tensor> w, b;
    for (int64_t e = 0; e < E; ++e) {
      w.push_back(w0[size_t(e)].clone().set_requires_grad(true));
      b.push_back(b0[size_t(e)].clone().set_requires_grad(true));
    }
    ops::MoeRouting r = ops::moe_routing(ei, E, cap);
    Tensor out = ops::moe_combine(ops::grouped_matmul(ops::moe_permute(x, r), w, r.offsets, b), gate, r);
    ops::sum(ops::mul(out, wsum)).backward();
    std::vector<std::vector<float>> all{out.to_vector<float>(), x.grad().to_vector<float>(),
                                        gate.grad().to_vector<float>()};
    for (int64_t e = 0; e < E; ++e) {
      all.push_back(w[size_t(e)].grad().to_vector<float>());
      all.push_back(b[size_t(e)].grad().to_vector<float>());
    }
    return std::make_pair(all, r.dropped);
  };
  auto [one, dropped] = run(1);
  auto two = run(2).first;
  EXPECT_GT(dropped, 0);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], two[i]) << "tensor " << i;
}
