// Communicator's collectives on whatever world mpirun made (1, 2 or 4 ranks; one rank without
// mpirun). Each rank computes the expected result itself from the shared seed (see
// mpi_test_support.h) and compares it with what MPI delivered.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "mpi_test_support.h"
#include "wensu/dist/comm.h"

using namespace wensu;
using dist::Communicator;
using wensu::test::error_of;
using wensu::test::rank_data;
using wensu::test::shared_seed;
using wensu::test::values;
namespace fs = std::filesystem;

namespace {

const Communicator& world() { return Communicator::world(); }

// Rank r's byte buffer for gather_bytes: sizes differ per rank, one is empty whenever there are
// two or more ranks, and rank 1's is large enough to leave MPI's eager (short message) path.
std::vector<char> rank_bytes(uint64_t seed, int r) {
  size_t n = r == 1 ? 300000 + seed % 1000 : (seed + 5 * uint64_t(r)) % 7 * size_t(r != 0);
  std::vector<char> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = char((i * 31 + uint64_t(r) * 7 + seed) & 0xff);
  return b;
}

}  // namespace

TEST(Collectives, AllReduceSumMatchesTheLocalSum) {
  const Communicator& c = world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    const Shape shape{5, 7};
    Tensor t = rank_data(seed, c.rank(), 0, shape, dt);
    c.all_reduce_sum(t);
    std::vector<double> expect(size_t(shape_numel(shape)), 0.0);
    for (int r = 0; r < c.size(); ++r) {
      std::vector<double> v = values(rank_data(seed, r, 0, shape, dt));
      for (size_t i = 0; i < v.size(); ++i) expect[i] += v[i];
    }
    std::vector<double> got = values(t);
    const double tol = dt == DType::f32 ? 1e-5 : dt == DType::f64 ? 1e-12 : 0.0;
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], expect[i], tol * (1 + std::abs(expect[i]))) << dtype_name(dt) << " element " << i;
  }
}

TEST(Collectives, BroadcastFromEveryRoot) {
  const Communicator& c = world();
  const uint64_t seed = shared_seed(c);
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (DType dt : {DType::f32, DType::i64}) {
    for (int root = 0; root < c.size(); ++root) {
      const Shape shape{3, 4, 2};
      Tensor t = c.rank() == root ? rank_data(seed, root, 1, shape, dt) : Tensor::zeros(shape, dt);
      c.broadcast(t, root);
      EXPECT_EQ(values(t), values(rank_data(seed, root, 1, shape, dt))) << dtype_name(dt) << " root " << root;
    }
  }
}

TEST(Collectives, AllGatherAndAllToAll) {
  const Communicator& c = world();
  const int64_t seed = int64_t(shared_seed(c) % 1000);
  auto code = [&](int from, int to) { return seed * 1000000 + from * 1000 + to; };
  std::vector<int64_t> gathered = c.all_gather(code(c.rank(), 0));
  ASSERT_EQ(int(gathered.size()), c.size());
  for (int r = 0; r < c.size(); ++r) EXPECT_EQ(gathered[r], code(r, 0));

  std::vector<int64_t> send;
  for (int r = 0; r < c.size(); ++r) send.push_back(code(c.rank(), r));
  std::vector<int64_t> recv = c.all_to_all(send);
  ASSERT_EQ(int(recv.size()), c.size());
  for (int r = 0; r < c.size(); ++r) EXPECT_EQ(recv[r], code(r, c.rank())) << "from rank " << r;
}

TEST(Collectives, GatherBytesToEveryRoot) {
  const Communicator& c = world();
  const uint64_t seed = shared_seed(c);
  for (int root = 0; root < c.size(); ++root) {
    std::vector<std::vector<char>> got = c.gather_bytes(rank_bytes(seed, c.rank()), root);
    if (c.rank() != root) {
      EXPECT_TRUE(got.empty()) << "a non-root rank got buffers, root " << root;
      continue;
    }
    ASSERT_EQ(int(got.size()), c.size());
    for (int r = 0; r < c.size(); ++r) EXPECT_TRUE(got[r] == rank_bytes(seed, r)) << "buffer of rank " << r;
  }
}

// Every rank writes a file, waits at the barrier, then finds every other rank's file: no rank
// can pass the barrier before all have written.
TEST(Collectives, BarrierOrdersFileWrites) {
  const Communicator& c = world();
  const int64_t tag = c.all_gather(int64_t(::getpid()))[0];
  const fs::path dir = fs::temp_directory_path() / ("wensu_mpi_barrier_" + std::to_string(tag));
  std::error_code ec;
  fs::create_directories(dir, ec);  // every rank: whoever comes first makes it
  std::ofstream(dir / std::to_string(c.rank())) << c.rank();
  c.barrier();
  for (int r = 0; r < c.size(); ++r) EXPECT_TRUE(fs::exists(dir / std::to_string(r))) << "file of rank " << r;
  c.barrier();
  if (c.rank() == 0) fs::remove_all(dir);
}

TEST(Collectives, SplitGroupsByColorAndOrdersByKey) {
  const Communicator& c = world();
  Communicator sub = c.split(c.rank() % 2, -c.rank());  // same parity; highest rank first
  std::vector<int64_t> members;
  for (int r = c.size() - 1; r >= 0; --r)
    if (r % 2 == c.rank() % 2) members.push_back(r);
  EXPECT_EQ(sub.size(), int(members.size()));
  EXPECT_EQ(sub.rank(), int(std::find(members.begin(), members.end(), c.rank()) - members.begin()));
  EXPECT_EQ(sub.all_gather(c.rank()), members);
  // Collectives stay inside the group.
  Tensor t = Tensor::full({2}, double(c.rank()), DType::i64);
  sub.all_reduce_sum(t);
  int64_t expect = 0;
  for (int64_t m : members) expect += m;
  EXPECT_EQ(t.to_vector<int64_t>(), std::vector<int64_t>(2, expect));
  Communicator copy = sub;  // copies share the MPI communicator; the last one frees it
  EXPECT_EQ(copy.all_gather(c.rank()), members);
}

// Argument errors are found before anything is sent, on every rank alike, so they throw
// instead of leaving the other ranks waiting.
TEST(Collectives, ArgumentErrorsThrowBeforeAnyExchange) {
  const Communicator& c = world();
  const int n = c.size();
  EXPECT_THROW(c.all_reduce_sum(Tensor::zeros({4}, DType::bf16)), Error);
  EXPECT_THROW(c.all_reduce_sum(Tensor::zeros({3, 2}).transpose(0, 1)), Error);
  EXPECT_THROW(c.broadcast(Tensor::zeros({2}), n), Error);
  EXPECT_THROW(c.all_to_all(std::vector<int64_t>(size_t(n + 1), 0)), Error);
  EXPECT_THROW(c.gather_bytes({}, -1), Error);
  EXPECT_THROW(c.split(-1, 0), Error);
  std::vector<int64_t> one_each(size_t(n), 1);
  Tensor x = Tensor::zeros({n, 3});
  EXPECT_THROW(c.all_to_all_rows(x, std::vector<int64_t>(size_t(n + 1), 0), one_each), Error);
  std::vector<int64_t> negative = one_each;
  negative[0] = -1;
  EXPECT_THROW(c.all_to_all_rows(x, one_each, negative), Error);
  const std::string msg = error_of([&] { c.all_to_all_rows(Tensor::zeros({n + 1, 3}), one_each, one_each); });
  EXPECT_NE(msg.find("send_rows sum to"), std::string::npos) << msg;
}
