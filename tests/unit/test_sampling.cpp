// The next-token sampler (text/generate.h) against a plain reference of the distribution it
// draws from: repetition penalty, temperature, top-k and top-p on random logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "wensu/text/generate.h"

namespace wensu::text {
namespace {

// The probability of every token under the options, computed directly in double.
std::vector<double> reference_probs(std::vector<double> l, const std::vector<int64_t>& context, const SamplingOptions& o) {
  const size_t V = l.size();
  std::vector<bool> seen(V, false);
  for (int64_t c : context) seen[size_t(c)] = true;
  for (size_t i = 0; i < V; ++i)
    if (seen[i]) l[i] = l[i] > 0 ? l[i] / o.repetition_penalty : l[i] * o.repetition_penalty;
  std::vector<size_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return l[a] > l[b]; });
  const size_t k = o.top_k > 0 ? std::min<size_t>(size_t(o.top_k), V) : V;
  std::vector<double> p(V, 0.0);
  double z = 0;
  for (size_t i = 0; i < k; ++i) z += std::exp(l[order[i]] / o.temperature);
  double mass = 0, kept = 0;
  size_t n = 0;
  for (; n < k; ++n) {
    mass += std::exp(l[order[n]] / o.temperature) / z;
    if (mass >= o.top_p) {
      ++n;
      break;
    }
  }
  for (size_t i = 0; i < n; ++i) kept += std::exp(l[order[i]] / o.temperature);
  for (size_t i = 0; i < n; ++i) p[order[i]] = std::exp(l[order[i]] / o.temperature) / kept;
  return p;
}

// Frequencies of sample_next over a fine grid of draws, against the reference probabilities.
void expect_distribution(const std::vector<double>& logits, const std::vector<int64_t>& context, const SamplingOptions& o) {
  const auto ref = reference_probs(logits, context, o);
  const int N = 5000;
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < N; ++i) {
    std::vector<float> row(logits.begin(), logits.end());
    freq[size_t(sample_next(row, context, o, (i + 0.5) / N))] += 1.0 / N;
  }
  for (size_t t = 0; t < logits.size(); ++t) {
    EXPECT_NEAR(freq[t], ref[t], 2.0 / N + 1e-5) << "token " << t << " T " << o.temperature << " k " << o.top_k
                                                 << " p " << o.top_p << " rep " << o.repetition_penalty;
    if (ref[t] == 0) EXPECT_EQ(freq[t], 0.0) << "token " << t << " is outside the kept set";
  }
}

std::vector<double> random_logits(size_t V, std::mt19937& rng) {
  std::normal_distribution<double> d(0.0, 2.0);
  std::vector<double> l(V);
  for (auto& x : l) x = d(rng);
  return l;
}

TEST(Sampling, GreedyIsArgmax) {
  std::mt19937 rng(1);
  SamplingOptions o;
  o.temperature = 0;
  for (int trial = 0; trial < 20; ++trial) {
    auto l = random_logits(50, rng);
    std::vector<float> row(l.begin(), l.end());
    const auto best = std::max_element(l.begin(), l.end()) - l.begin();
    EXPECT_EQ(sample_next(row, {}, o, 0.999), best);
  }
}

TEST(Sampling, DrawsFollowTheShapedDistribution) {
  std::mt19937 rng(2);
  const std::vector<int64_t> context{3, 5, 5, 11};
  for (double t : {0.5, 1.0, 1.7})
    for (int64_t k : {0, 1, 5})
      for (double p : {1.0, 0.9, 0.5})
        for (double rep : {1.0, 1.3}) {
          SamplingOptions o;
          o.temperature = t, o.top_k = k, o.top_p = p, o.repetition_penalty = rep;
          expect_distribution(random_logits(24, rng), context, o);
        }
}

TEST(Sampling, RepetitionPenaltyLowersSeenTokensBothSigns) {
  SamplingOptions o;
  o.temperature = 0;
  o.repetition_penalty = 2.0;
  std::vector<float> row{3.0f, 2.0f, -1.0f};
  EXPECT_EQ(sample_next(row, {0}, o, 0.5), 1);  // 3 / 2 = 1.5 < 2
  EXPECT_FLOAT_EQ(row[0], 1.5f);
  std::vector<float> neg{-1.0f, -1.5f};
  EXPECT_EQ(sample_next(neg, {0}, o, 0.5), 1);  // -1 * 2 = -2 < -1.5
}

}  // namespace
}  // namespace wensu::text
