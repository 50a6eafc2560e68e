// Inference with bfloat16 weights: the matrix-vector kernel (ops/cpu/linear_bf16.h) against
// double loops over the same bf16-rounded weights, through ops::linear for few rows (the kernel)
// and many (converted weights, GEMM); and a GPT whose matrices are bf16 decoding with the cache
// as its full forward does, close to the float32 model.
#include <gtest/gtest.h>

#include <cmath>

#include "wensu/autograd/grad_mode.h"
#include "wensu/core/generator.h"
#include "wensu/models/gpt2_convert.h"
#include "wensu/ops/matmul.h"
#include "test_support.h"

namespace wensu {
namespace {

double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

TEST(LinearBf16, MatchesDoubleLoopsOnTheRoundedWeights) {
  Generator gen(11);
  NoGradGuard ng;
  for (int64_t M : {1, 3, 8, 21})
    for (int64_t K : {1, 37, 256})
      for (int64_t N : {1, 5, 67})
        for (bool with_bias : {false, true}) {
          Tensor x = Tensor::randn({M, K}, gen), w32 = Tensor::randn({N, K}, gen), b = Tensor::randn({N}, gen);
          Tensor w = w32.to(DType::bf16);
          Tensor y = ops::linear(x, w, with_bias ? b : Tensor());
          ASSERT_EQ(y.dtype(), DType::f32);
          ASSERT_EQ(y.shape(), (Shape{M, N}));
          const auto xv = x.to(DType::f64).to_vector<double>(), wv = w.to(DType::f64).to_vector<double>(),
                     bv = b.to(DType::f64).to_vector<double>();
          std::vector<double> ref(size_t(M * N));
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double s = with_bias ? bv[size_t(n)] : 0.0;
              for (int64_t k = 0; k < K; ++k) s += xv[size_t(m * K + k)] * wv[size_t(n * K + k)];
              ref[size_t(m * N + n)] = s;
            }
          EXPECT_LT(max_rel(y.to(DType::f64).to_vector<double>(), ref), 1e-5) << M << "x" << K << "x" << N;
        }
}

TEST(LinearBf16, TrainingWithBf16WeightsIsRefused) {
  Generator gen(3);
  Tensor x = Tensor::randn({2, 8}, gen), w = Tensor::randn({4, 8}, gen).to(DType::bf16);
  x.set_requires_grad(true);
  EXPECT_THROW(ops::linear(x, w), Error);
}

TEST(LinearBf16, GptWithBf16MatricesDecodesLikeItsForward) {
  auto model = models::load_gpt2_hf(test::test_data_dir() + "/gpt2_tiny");
  NoGradGuard ng;
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 20; ++i) ids.push_back((i * 37 + 11) % model->config().vocab_size);
  Tensor all = Tensor::from_vector(ids, {1, 20});
  Tensor f32_logits = model->forward(all);
  model->convert_matrices_(DType::bf16);
  EXPECT_EQ(model->embed_tokens->weight.dtype(), DType::bf16);
  Tensor full = model->forward(all);  // many rows: converted weights through the GEMM
  auto cache = model->make_cache(1, 32);
  Tensor prefill = model->forward_cached(all.narrow(1, 0, 12), cache);  // 12 rows
  std::vector<double> got = prefill.to(DType::f64).to_vector<double>();
  for (int64_t t = 12; t < 20; ++t) {  // one row: the bf16 kernel
    auto step = model->forward_cached(all.narrow(1, t, 1), cache).to(DType::f64).to_vector<double>();
    got.insert(got.end(), step.begin(), step.end());
  }
  EXPECT_LT(max_rel(got, full.to(DType::f64).to_vector<double>()), 1e-5);
  // bf16 rounding of the weights moves the logits a little, not a lot.
  const double drift = max_rel(full.to(DType::f64).to_vector<double>(), f32_logits.to(DType::f64).to_vector<double>());
  EXPECT_GT(drift, 0.0);
  EXPECT_LT(drift, 0.05);
}

}  // namespace
}  // namespace wensu
