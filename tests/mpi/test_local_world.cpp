// Without dist::init (the --no-mpi-init run, or a program that never starts MPI) the world is
// one rank and the wensu binary works as before: nothing in a single-process run needs MPI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "test_support.h"
#include "wensu/dist/comm.h"

using namespace wensu;
namespace fs = std::filesystem;

TEST(LocalWorld, OneRankWithoutInit) {
  if (dist::initialized()) GTEST_SKIP() << "MPI is running; this case is for the --no-mpi-init run";
  const dist::Communicator& w = dist::Communicator::world();
  EXPECT_EQ(w.rank(), 0);
  EXPECT_EQ(w.size(), 1);
  // A local copy, not the same memory: callers may change x afterwards.
  Tensor x = Tensor::arange(6, DType::f32).view({3, 2});
  Tensor y = w.all_to_all_rows(x, {3}, {3});
  EXPECT_FALSE(y.shares_storage(x));
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());
  dist::ParallelGroups g = dist::make_parallel_groups(1);
  EXPECT_EQ(g.expert.size() * g.data.size(), 1);
}

// The e2e check from the command line: fork/exec is only safe with MPI not running, hence here.
TEST(LocalWorld, WensuBinaryRunsWithoutMpi) {
  if (dist::initialized()) GTEST_SKIP() << "MPI is running; this case is for the --no-mpi-init run";
  const fs::path dir = fs::temp_directory_path() / ("wensu_mpi_local_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = (dir / "out.txt").string(), err = (dir / "err.txt").string();
  EXPECT_EQ(test::run_wensu("--help", out, err), 0) << test::read_text(err);
  EXPECT_EQ(test::run_wensu("demo --steps 2 --batch 2 --length 8 --threads 1 -o '" + (dir / "run").string() + "'", out,
                            err),
            0)
      << test::read_text(err);
  EXPECT_TRUE(fs::exists(dir / "run" / "checkpoint.h5"));
  fs::remove_all(dir);
}
