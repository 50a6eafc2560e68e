// all_to_all_rows, the token exchange of expert parallelism: forward values for uneven row
// counts (zeros included: ranks that send or receive nothing), and the gradient, which must
// carry each row's gradient back to the rank and row it came from. Every rank rebuilds every
// other rank's input from the shared seed and computes its expected rows and gradients itself.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "mpi_test_support.h"
#include "wensu/autograd/grad_mode.h"
#include "wensu/dist/comm.h"
#include "wensu/ops/binary.h"
#include "wensu/ops/reduce.h"

using namespace wensu;
using dist::Communicator;
using wensu::test::rank_data;
using wensu::test::shared_seed;
using wensu::test::values;

namespace {

// Rows rank s sends to rank r, for world size w.
using Pattern = std::function<int64_t(int s, int r, int w)>;
struct NamedPattern {
  const char* name;
  Pattern rows;
};

std::vector<NamedPattern> patterns(uint64_t seed) {
  return {
      {"uneven", [seed](int s, int r, int) { return int64_t((seed + 3 * uint64_t(s) + 5 * uint64_t(r)) % 4); }},
      {"all to rank 0", [](int s, int r, int) { return r == 0 ? int64_t(3 + s) : 0; }},
      {"to itself only", [](int s, int r, int) { return s == r ? int64_t(2) : 0; }},
      {"last rank sends nothing", [](int s, int r, int w) { return s == w - 1 ? 0 : int64_t(1 + (s + r) % 3); }},
  };
}

// One exchange as every rank sees it: counts between all pairs and each rank's row totals.
struct Plan {
  int w = 1;
  std::vector<std::vector<int64_t>> rows;  // rows[s][r]: from s to r
  explicit Plan(const Pattern& p, int w_) : w(w_), rows(size_t(w_), std::vector<int64_t>(size_t(w_))) {
    for (int s = 0; s < w; ++s)
      for (int r = 0; r < w; ++r) rows[s][r] = p(s, r, w);
  }
  std::vector<int64_t> send(int me) const { return rows[me]; }
  std::vector<int64_t> recv(int me) const {
    std::vector<int64_t> v;
    for (int s = 0; s < w; ++s) v.push_back(rows[s][me]);
    return v;
  }
  int64_t n_send(int me) const { return std::accumulate(rows[me].begin(), rows[me].end(), int64_t(0)); }
  int64_t n_recv(int me) const {
    int64_t n = 0;
    for (int s = 0; s < w; ++s) n += rows[s][me];
    return n;
  }
  // Where row i of rank s's input lands: {destination rank, row index there}.
  std::pair<int, int64_t> destination(int s, int64_t i) const {
    int r = 0;
    while (i >= rows[s][r]) i -= rows[s][r++];
    int64_t before = 0;  // rows that ranks < s send to r come first
    for (int q = 0; q < s; ++q) before += rows[q][r];
    return {r, before + i};
  }
};

Shape with_rows(int64_t n, const Shape& row) {
  Shape s{n};
  s.insert(s.end(), row.begin(), row.end());
  return s;
}

// Rank me's expected output: rank 0's rows for me first, then rank 1's, ...
std::vector<double> expected_rows(const Plan& plan, int me, uint64_t seed, const Shape& row, DType dt) {
  const int64_t row_elems = shape_numel(row);
  std::vector<double> out;
  for (int s = 0; s < plan.w; ++s) {
    std::vector<double> xs = values(rank_data(seed, s, 0, with_rows(plan.n_send(s), row), dt));
    int64_t first = 0;
    for (int r = 0; r < me; ++r) first += plan.rows[s][r];
    out.insert(out.end(), xs.begin() + first * row_elems, xs.begin() + (first + plan.rows[s][me]) * row_elems);
  }
  return out;
}

}  // namespace

TEST(Exchange, AllToAllRowsDeliversEachRowToItsRank) {
  const Communicator& c = Communicator::world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int me = c.rank();
  for (const NamedPattern& p : patterns(seed)) {
    const Plan plan(p.rows, c.size());
    EXPECT_EQ(c.all_to_all(plan.send(me)), plan.recv(me)) << p.name;  // how callers learn recv_rows
    for (DType dt : {DType::f32, DType::f64, DType::i64}) {
      const Shape row{2, 3};
      Tensor x = rank_data(seed, me, 0, with_rows(plan.n_send(me), row), dt);
      Tensor y = c.all_to_all_rows(x, plan.send(me), plan.recv(me));
      EXPECT_EQ(y.shape(), with_rows(plan.n_recv(me), row)) << p.name;
      EXPECT_EQ(values(y), expected_rows(plan, me, seed, row, dt)) << p.name << ", " << dtype_name(dt);
    }
  }
}

// Rows of 64 KiB take MPI's large-message path, and a strided input is made contiguous first.
TEST(Exchange, AllToAllRowsLargeRowsAndStridedInput) {
  const Communicator& c = Communicator::world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int me = c.rank();
  const Plan plan(patterns(seed)[0].rows, c.size());
  const Shape big{16384};
  Tensor x = rank_data(seed, me, 0, with_rows(plan.n_send(me), big), DType::f32);
  Tensor y = c.all_to_all_rows(x, plan.send(me), plan.recv(me));
  EXPECT_EQ(values(y), expected_rows(plan, me, seed, big, DType::f32));

  // x^T of a [3, N] tensor: the same values as expected_rows' [N, 3] only after a transpose, so
  // build the expectation from the transposed copies.
  Tensor xt = rank_data(seed, me, 0, {3, plan.n_send(me)}).transpose(0, 1);  // [N, 3], strided
  Tensor yt = c.all_to_all_rows(xt, plan.send(me), plan.recv(me));
  std::vector<double> expect;
  for (int s = 0; s < c.size(); ++s) {
    std::vector<double> xs = values(rank_data(seed, s, 0, {3, plan.n_send(s)}).transpose(0, 1).contiguous());
    int64_t first = 0;
    for (int r = 0; r < me; ++r) first += plan.rows[s][r];
    expect.insert(expect.end(), xs.begin() + first * 3, xs.begin() + (first + plan.rows[s][me]) * 3);
  }
  EXPECT_EQ(values(yt), expect);
}

// loss = sum over ranks of sum(y_r * w_r), with every w_r known to every rank: dL/dx_s[i] is
// row j of w_r where (r, j) is where row i of x_s landed.
TEST(Exchange, AllToAllRowsGradientReturnsToTheSourceRow) {
  const Communicator& c = Communicator::world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int me = c.rank();
  const Shape row{2, 3};
  const int64_t re = shape_numel(row);
  for (const NamedPattern& p : patterns(seed)) {
    const Plan plan(p.rows, c.size());
    Tensor x = rank_data(seed, me, 0, with_rows(plan.n_send(me), row)).set_requires_grad(true);
    Tensor w = rank_data(seed, me, 1, with_rows(plan.n_recv(me), row));
    Tensor y = dist::all_to_all_rows(x, plan.send(me), plan.recv(me), c);
    ops::sum(y * w).backward();
    ASSERT_TRUE(x.grad().defined()) << p.name;

    std::vector<double> expect;
    for (int64_t i = 0; i < plan.n_send(me); ++i) {
      auto [r, j] = plan.destination(me, i);
      std::vector<double> wr = values(rank_data(seed, r, 1, with_rows(plan.n_recv(r), row)));
      expect.insert(expect.end(), wr.begin() + j * re, wr.begin() + (j + 1) * re);
    }
    EXPECT_EQ(values(x.grad()), expect) << p.name;

    // Central differences of the global loss along a random direction v (one per rank). The
    // loss is linear, so the difference quotient matches the gradient to rounding.
    Tensor v = rank_data(seed, me, 2, x.shape());
    auto global_loss = [&](double h) {
      NoGradGuard ng;
      Tensor xs = x.detach() + v * h;
      Tensor l = Tensor::full({1}, ops::sum(c.all_to_all_rows(xs, plan.send(me), plan.recv(me)) * w).item(),
                              DType::f64);
      c.all_reduce_sum(l);
      return l.item();
    };
    const double h = 1e-3;
    const double numeric = (global_loss(h) - global_loss(-h)) / (2 * h);
    Tensor dot = Tensor::full({1}, ops::sum(x.grad() * v).item(), DType::f64);
    c.all_reduce_sum(dot);
    EXPECT_NEAR(numeric, dot.item(), 1e-8 * (1 + std::abs(dot.item()))) << p.name;
  }
}
