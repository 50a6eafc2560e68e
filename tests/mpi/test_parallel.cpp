// Data- and expert-parallel helpers: gradient averaging over ranks (one flat buffer per dtype,
// gradients missing on some ranks, strided gradients) and the expert x data groups.
#include <gtest/gtest.h>

#include "mpi_test_support.h"
#include "wensu/dist/comm.h"

using namespace wensu;
using dist::Communicator;
using wensu::test::error_of;
using wensu::test::rank_data;
using wensu::test::shared_seed;
using wensu::test::values;

namespace {

struct Param {
  Shape shape;
  DType dtype;
  enum { everywhere, rank0_only, nowhere, strided } grad;
};

const std::vector<Param> kParams = {
    {{3, 4}, DType::f32, Param::everywhere}, {{5}, DType::f64, Param::everywhere},
    {{2, 2}, DType::f32, Param::rank0_only}, {{3}, DType::f64, Param::nowhere},
    {{3, 2}, DType::f32, Param::strided},    {{4}, DType::f64, Param::rank0_only},
};

// Rank r's gradient of parameter k (undefined where it has none); stream 10 + k.
Tensor rank_grad(uint64_t seed, int r, size_t k) {
  const Param& p = kParams[k];
  if (p.grad == Param::nowhere || (p.grad == Param::rank0_only && r != 0)) return Tensor();
  if (p.grad == Param::strided)  // [3, 2] as the transpose of a [2, 3]
    return rank_data(seed, r, 10 + int(k), {p.shape[1], p.shape[0]}, p.dtype).transpose(0, 1);
  return rank_data(seed, r, 10 + int(k), p.shape, p.dtype);
}

std::vector<Tensor> make_params(uint64_t seed, int me) {
  std::vector<Tensor> params;
  for (size_t k = 0; k < kParams.size(); ++k) {
    Tensor p = Tensor::zeros(kParams[k].shape, kParams[k].dtype).set_requires_grad(true);
    Tensor g = rank_grad(seed, me, k);
    if (g.defined()) p.set_grad(g);
    params.push_back(p);
  }
  return params;
}

}  // namespace

TEST(DataParallel, AllReduceGradientsAveragesAndSums) {
  const Communicator& c = Communicator::world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (bool average : {true, false}) {
    std::vector<Tensor> params = make_params(seed, c.rank());
    Tensor kept = params[0].grad();
    dist::all_reduce_gradients(params, c, average);
    EXPECT_TRUE(params[0].grad().shares_storage(kept)) << "a contiguous grad is reduced in place";
    for (size_t k = 0; k < kParams.size(); ++k) {
      if (kParams[k].grad == Param::nowhere) {
        EXPECT_FALSE(params[k].grad().defined()) << "parameter " << k;
        continue;
      }
      std::vector<double> expect(size_t(shape_numel(kParams[k].shape)), 0.0);
      for (int r = 0; r < c.size(); ++r) {
        Tensor g = rank_grad(seed, r, k);
        if (!g.defined()) continue;  // counts as zero
        std::vector<double> v = values(g.contiguous());
        for (size_t i = 0; i < v.size(); ++i) expect[i] += average ? v[i] / c.size() : v[i];
      }
      ASSERT_TRUE(params[k].grad().defined()) << "parameter " << k;
      EXPECT_EQ(params[k].grad().shape(), kParams[k].shape);
      std::vector<double> got = values(params[k].grad());
      const double tol = kParams[k].dtype == DType::f32 ? 1e-5 : 1e-12;
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_NEAR(got[i], expect[i], tol * (1 + std::abs(expect[i])))
            << "parameter " << k << " element " << i << (average ? " (average)" : " (sum)");
    }
  }
}

TEST(DataParallel, AllReduceGradientsRejectsDifferentParameterLists) {
  const Communicator& c = Communicator::world();
  if (c.size() < 2) GTEST_SKIP() << "needs two ranks to disagree";
  std::vector<Tensor> params = make_params(0, c.rank());
  if (c.rank() == 0) params.pop_back();
  const std::string msg = error_of([&] { dist::all_reduce_gradients(params, c); });
  EXPECT_NE(msg.find("same parameters"), std::string::npos) << msg;
}

TEST(ExpertParallel, GroupsHaveTheRightMembers) {
  const Communicator& world = Communicator::world();
  const int w = world.size(), me = world.rank();
  for (int ep : {1, 2, 4}) {
    if (w % ep != 0) continue;  // the next test covers those
    dist::ParallelGroups g = dist::make_parallel_groups(ep);
    EXPECT_EQ(g.ep, ep);
    EXPECT_EQ(g.dp, w / ep);
    EXPECT_EQ(g.world.size(), w);
    std::vector<int64_t> expert_members, data_members;
    for (int i = 0; i < ep; ++i) expert_members.push_back(me / ep * ep + i);
    for (int j = 0; j < w / ep; ++j) data_members.push_back(me % ep + j * ep);
    EXPECT_EQ(g.expert.all_gather(me), expert_members) << "ep " << ep;
    EXPECT_EQ(g.data.all_gather(me), data_members) << "ep " << ep;
    EXPECT_EQ(g.expert.rank(), me % ep) << "ep " << ep;
    EXPECT_EQ(g.data.rank(), me / ep) << "ep " << ep;
    // A gradient averaged over the data group mixes exactly its members.
    Tensor t = Tensor::full({1}, double(me), DType::i64);
    g.data.all_reduce_sum(t);
    int64_t sum = 0;
    for (int64_t m : data_members) sum += m;
    EXPECT_EQ(t.item(), double(sum)) << "ep " << ep;
  }
}

TEST(ExpertParallel, SizeThatDoesNotDivideTheWorldIsAnError) {
  const int w = Communicator::world().size();
  for (int ep : {0, 3, w + 1}) {
    if (ep > 0 && w % ep == 0) continue;  // 3 on a 3-rank world
    const std::string msg = error_of([&] { dist::make_parallel_groups(ep); });
    EXPECT_NE(msg.find("must divide the number of ranks"), std::string::npos) << "ep " << ep << ": " << msg;
  }
}
