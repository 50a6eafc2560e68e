// all_gather_rows, and the data-parallel contrastive loss built on it: forward rows for uneven
// row counts (a rank with none included), a backward that sums each row's gradient over the
// ranks, and the key property of issue 9's trainer: ranks that each hold part of a batch,
// gather, take the local part of contrastive_loss and back-propagate end with the loss and
// gradients of one process that holds the whole batch. Every rank rebuilds every other rank's
// inputs from the shared seed and computes the one-process reference itself.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "mpi_test_support.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/dist/comm.h"
#include "wensu/dist/gather.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/contrastive.h"
#include "wensu/ops/matmul.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"
#include "wensu/ops/unary.h"

using namespace wensu;
using dist::Communicator;
using wensu::test::error_of;
using wensu::test::rank_data;
using wensu::test::shared_seed;
using wensu::test::values;

namespace {

// Rows of rank r out of w.
using RowCount = std::function<int64_t(int r, int w)>;
struct NamedCount {
  const char* name;
  RowCount rows;
};

std::vector<NamedCount> row_counts(uint64_t seed) {
  return {
      {"even", [](int, int) { return int64_t(3); }},
      {"uneven", [seed](int r, int) { return int64_t(1 + (seed + 2 * uint64_t(r)) % 4); }},
      {"last rank has none", [](int r, int w) { return w > 1 && r == w - 1 ? 0 : int64_t(2 + r); }},
  };
}

Shape with_rows(int64_t n, const Shape& row) {
  Shape s{n};
  s.insert(s.end(), row.begin(), row.end());
  return s;
}

// Every rank's stream `stream` joined in rank order: what the gather must return, and the
// whole batch of the one-process reference.
Tensor all_ranks(uint64_t seed, int w, const RowCount& n, int stream, const Shape& row, DType dt = DType::f64) {
  std::vector<Tensor> parts;
  for (int r = 0; r < w; ++r) parts.push_back(rank_data(seed, r, stream, with_rows(n(r, w), row), dt));
  return ops::concat(parts, 0);
}

int64_t first_row(const RowCount& n, int me, int w) {
  int64_t first = 0;
  for (int r = 0; r < me; ++r) first += n(r, w);
  return first;
}

double rel_error(const Tensor& got, const Tensor& want) {
  auto a = values(got), b = values(want);
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 1e-300;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::abs(a[i] - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

Tensor scalar(double v) { return Tensor::from_vector(std::vector<double>{v}, {}); }

}  // namespace

TEST(Gather, AllGatherRowsReturnsEveryRanksRowsInRankOrder) {
  const Communicator& c = Communicator::world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int me = c.rank(), w = c.size();
  const Shape row{2, 3};
  for (const NamedCount& n : row_counts(seed)) {
    for (DType dt : {DType::f32, DType::f64, DType::i64}) {
      Tensor x = rank_data(seed, me, 0, with_rows(n.rows(me, w), row), dt);
      Tensor y = dist::all_gather_rows(x, c);
      Tensor want = all_ranks(seed, w, n.rows, 0, row, dt);
      EXPECT_EQ(y.shape(), want.shape()) << n.name;
      EXPECT_EQ(values(y), values(want)) << n.name << ", " << dtype_name(dt);
      if (w == 1) EXPECT_TRUE(y.shares_storage(x)) << "one rank: the identity, without a copy";
    }
  }
}

// Each rank's loss uses every gathered row, nonlinearly: L = sum_r sum(tanh(y) * w_r). The
// one-process reference differentiates the same sum over the whole batch; rank me's gradient
// must be its own rows of that.
TEST(Gather, AllGatherRowsBackwardSumsTheGradientOverRanks) {
  const Communicator& c = Communicator::world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int me = c.rank(), w = c.size();
  const Shape row{4};
  for (const NamedCount& n : row_counts(seed)) {
    const int64_t N = first_row(n.rows, w, w), mine = n.rows(me, w);
    Tensor x = rank_data(seed, me, 0, with_rows(mine, row)).set_requires_grad(true);
    Tensor y = dist::all_gather_rows(x, c);                  // [N, 4]
    Tensor wts = rank_data(seed, me, 1, with_rows(N, row));  // this rank's weights
    ops::sum(ops::tanh(y) * wts).backward();
    ASSERT_TRUE(x.grad().defined()) << n.name;

    Tensor X = all_ranks(seed, w, n.rows, 0, row).set_requires_grad(true);  // [N, 4]
    Tensor total = scalar(0.0);
    for (int r = 0; r < w; ++r) total = total + ops::sum(ops::tanh(X) * rank_data(seed, r, 1, with_rows(N, row)));
    total.backward();
    Tensor want = X.grad().narrow(0, first_row(n.rows, me, w), mine);
    EXPECT_EQ(x.grad().shape(), want.shape()) << n.name;
    EXPECT_LE(rel_error(x.grad(), want), 1e-14) << n.name;
  }
}

// The trainer's step, with shared projections W (replicated parameters) in front of the loss:
// rank r holds features x_r of its pairs, embeds them, gathers the embeddings, and
// back-propagates the local part of contrastive_loss for its own rows. Summed over ranks, the
// parts are the loss of the whole batch, the parameters' gradients (all-reduced) are its
// gradients, and each rank's feature gradients are its rows of the whole batch's.
TEST(Gather, ContrastiveLossOverRanksEqualsOneProcess) {
  const Communicator& c = Communicator::world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int me = c.rank(), w = c.size();
  const int64_t Fi = 5, Ft = 6, D = 4;  // image and text feature widths, embedding width
  // Replicated parameters: rank 0's streams 20..22, the same tensors on every rank.
  auto params = [&] {
    Tensor wi = rank_data(seed, 0, 20, {Fi, D}).set_requires_grad(true);
    Tensor wt = rank_data(seed, 0, 21, {Ft, D}).set_requires_grad(true);
    Tensor ls = scalar(std::log(1 / 0.07) + 0.3 * rank_data(seed, 0, 22, {}).item()).set_requires_grad(true);
    return std::vector<Tensor>{wi, wt, ls};
  };
  for (const NamedCount& n : row_counts(seed)) {
    for (bool average : {false, true}) {
      const int64_t mine = n.rows(me, w), first = first_row(n.rows, me, w);
      std::vector<Tensor> p = params();
      Tensor xi = rank_data(seed, me, 0, {mine, Fi}).set_requires_grad(true);
      Tensor xt = rank_data(seed, me, 1, {mine, Ft}).set_requires_grad(true);
      Tensor img = dist::all_gather_rows(ops::matmul(xi, p[0]), c);  // [N, D]
      Tensor txt = dist::all_gather_rows(ops::matmul(xt, p[1]), c);  // [N, D]
      Tensor part = ops::contrastive_loss(img, txt, p[2], first, mine);
      // Averaging the parameters' gradients divides by w; the trainer scales its part by w.
      (average ? part * double(w) : part).backward();
      dist::all_reduce_gradients(p, c, average);
      Tensor loss = Tensor::full({1}, part.item(), DType::f64);
      c.all_reduce_sum(loss);

      std::vector<Tensor> q = params();
      Tensor Xi = all_ranks(seed, w, n.rows, 0, {Fi}).set_requires_grad(true);
      Tensor Xt = all_ranks(seed, w, n.rows, 1, {Ft}).set_requires_grad(true);
      Tensor want = ops::contrastive_loss(ops::matmul(Xi, q[0]), ops::matmul(Xt, q[1]), q[2]);
      want.backward();

      const std::string at = std::string(n.name) + (average ? ", averaged" : ", summed");
      EXPECT_NEAR(loss.item(), want.item(), 1e-12 * want.item()) << at;
      const char* names[3] = {"W_image", "W_text", "log_scale"};
      for (int k = 0; k < 3; ++k) {
        ASSERT_TRUE(p[size_t(k)].grad().defined()) << at << ", " << names[k];
        EXPECT_LE(rel_error(p[size_t(k)].grad(), q[size_t(k)].grad()), 1e-12) << at << ", " << names[k];
      }
      // The features are not replicated: each rank's gradient is its own rows, scaled by w when
      // the part was.
      const double s = average ? double(w) : 1.0;
      ASSERT_TRUE(xi.grad().defined() && xt.grad().defined()) << at;
      EXPECT_LE(rel_error(xi.grad(), Xi.grad().narrow(0, first, mine) * s), 1e-12) << at << ", image features";
      EXPECT_LE(rel_error(xt.grad(), Xt.grad().narrow(0, first, mine) * s), 1e-12) << at << ", text features";
    }
  }
}

// Mismatches that would corrupt the exchange or strand a rank in the backward make every rank
// throw together, before any rows move (the next test's collectives still line up).
TEST(Gather, RanksThatDisagreeAllThrow) {
  const Communicator& c = Communicator::world();
  if (c.size() == 1) GTEST_SKIP() << "needs two ranks to disagree";
  const int me = c.rank();
  const std::string shape_error = error_of([&] {
    dist::all_gather_rows(Tensor::zeros({2, me == 0 ? int64_t(3) : int64_t(4)}, DType::f64), c);
  });
  EXPECT_NE(shape_error.find("same trailing shape and dtype"), std::string::npos) << shape_error;
  const std::string dtype_error = error_of(
      [&] { dist::all_gather_rows(Tensor::zeros({2, 3}, me == 0 ? DType::f32 : DType::f64), c); });
  EXPECT_NE(dtype_error.find("same trailing shape and dtype"), std::string::npos) << dtype_error;
  const std::string grad_error = error_of([&] {
    Tensor x = Tensor::zeros({2, 3}, DType::f64);
    if (me == 0) x.set_requires_grad(true);
    dist::all_gather_rows(x, c);
  });
  EXPECT_NE(grad_error.find("require grad on every rank or on none"), std::string::npos) << grad_error;
  // Afterwards the ranks still agree on what comes next.
  Tensor y = dist::all_gather_rows(Tensor::full({1, 2}, double(me), DType::f64), c);
  EXPECT_EQ(y.size(0), c.size());
}
