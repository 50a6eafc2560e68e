// The entry point of wensu_mpi_tests, run by mpirun on 1, 2 and 4 ranks (and once without it,
// --no-mpi-init, for the single-process world). Every rank runs every test in the same order,
// since the tests call collectives. Rank 0 prints gtest's usual report; the other ranks print
// only their own failures, tagged with the rank. At the end the ranks agree on the outcome, so
// a failure on any rank makes every rank, and so mpirun, exit non-zero.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "wensu/core/parallel.h"
#include "wensu/dist/comm.h"

namespace {

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.message());
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed())
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, info.test_suite_name(), info.name());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  // --no-mpi-init: run without dist::init, as a program that never heard of MPI would.
  bool start_mpi = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-mpi-init") != 0) continue;
    start_mpi = false;
    for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
    --argc;
    break;
  }
  if (start_mpi) wensu::dist::init(&argc, &argv);
  // Up to 4 ranks share 2 cores here; OpenMP threads on top would only add contention.
  wensu::set_num_threads(1);
  ::testing::InitGoogleTest(&argc, argv);

  const wensu::dist::Communicator& world = wensu::dist::Communicator::world();
  if (world.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world.rank()));
  }
  const int rc = RUN_ALL_TESTS();

  const std::vector<int64_t> failed = world.all_gather(rc != 0 ? 1 : 0);
  std::string failing;
  for (size_t r = 0; r < failed.size(); ++r)
    if (failed[r]) failing += (failing.empty() ? "" : ", ") + std::to_string(r);
  if (world.rank() == 0 && !failing.empty())
    std::fprintf(stderr, "wensu_mpi_tests: tests failed on rank(s) %s of %d\n", failing.c_str(), world.size());
  wensu::dist::finalize();
  return failing.empty() ? 0 : 1;
}
