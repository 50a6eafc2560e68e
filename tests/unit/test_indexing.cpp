// Indexing behaviour the op harness cannot express: the padding row's missing gradient, the
// error messages for bad indices, and a backward that is identical for any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <string>

#include "test_support.h"
#include "wensu/core/generator.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/indexing.h"
#include "wensu/ops/reduce.h"

using namespace wensu;

namespace {

using test::error_of;

Tensor ids_of(std::vector<int64_t> v, const Shape& s) { return Tensor::from_vector(v, s); }

}  // namespace

TEST(Embedding, PaddingRowGetsNoGradient) {
  Generator gen(1);
  Tensor w = Tensor::randn({5, 3}, gen).set_requires_grad(true);
  Tensor ids = ids_of({2, 0, 2, 4}, {4});
  ops::sum(ops::embedding(w, ids, /*padding_idx=*/2)).backward();
  auto g = w.grad().to_vector<float>();
  const float want[5] = {1, 0, 0, 0, 1};  // row 2 is padding, rows 1 and 3 are unused
  for (int v = 0; v < 5; ++v)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(g[v * 3 + k], want[v]) << "row " << v;
}

TEST(Embedding, OutOfRangeIdNamesPositionValueAndVocabulary) {
  Tensor w = Tensor::zeros({7, 2});
  std::string msg = error_of([&] { ops::embedding(w, ids_of({0, 1, 2, 3, 4, 9}, {2, 3})); });
  EXPECT_NE(msg.find("ids[1, 2] = 9"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[0, 7)"), std::string::npos) << msg;
  msg = error_of([&] { ops::embedding(w, ids_of({-1}, {1})); });
  EXPECT_NE(msg.find("ids[0] = -1"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { ops::embedding(w, Tensor::zeros({2})); }).find("int64"), std::string::npos);
  EXPECT_NE(error_of([&] { ops::embedding(w, ids_of({0}, {1}), 7); }).find("padding_idx"), std::string::npos);
}

TEST(Indexing, BadIndicesAreReportedByEachOp) {
  Tensor x = Tensor::zeros({3, 4});
  std::string msg = error_of([&] { ops::gather(x, 1, ids_of({0, 4}, {1, 2})); });
  EXPECT_NE(msg.find("gather: index[0, 1] = 4 is out of range [0, 4) for dim 1"), std::string::npos) << msg;
  msg = error_of([&] { ops::scatter_add(x, 0, ids_of({3}, {1, 1}), Tensor::ones({1, 1})); });
  EXPECT_NE(msg.find("scatter_add: index[0, 0] = 3 is out of range [0, 3)"), std::string::npos) << msg;
  msg = error_of([&] { ops::index_select(x, -1, ids_of({1, 5}, {2})); });
  EXPECT_NE(msg.find("index_select: index[1] = 5 is out of range [0, 4)"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { ops::index_select(x, 0, ids_of({0}, {1, 1})); }).find("1-d"), std::string::npos);
  EXPECT_NE(error_of([&] { ops::gather(x, 0, ids_of({0, 0, 0, 0, 0}, {1, 5})); }).find("larger than x"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::masked_fill(x, ids_of({1, 0, 1}, {3}), 0.0); }).find("masked_fill"),
            std::string::npos);
}

TEST(Embedding, BackwardIsIdenticalForOneAndTwoThreads) {
  const int prev = omp_get_max_threads();
  Generator gen(8);
  Tensor w = Tensor::randn({33, 256}, gen);
  std::vector<int64_t> iv(3000);
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = int64_t((i * 7919) % 33);
  Tensor ids = ids_of(iv, {3, 1000});
  Tensor cot = Tensor::randn({3, 1000, 256}, gen);
  auto grad_with = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor wl = w.detach().clone().set_requires_grad(true);
    ops::sum(ops::mul(ops::embedding(wl, ids, 0), cot)).backward();
    return wl.grad().to_vector<float>();
  };
  auto a = grad_with(1), b = grad_with(2);
  omp_set_num_threads(prev);
  EXPECT_EQ(a, b);
}
