// Distributed training over MPI: communicators, the collectives training needs, a
// differentiable row exchange (expert parallelism) and gradient averaging (data parallelism).
//
// Every function that talks to other ranks is collective: all ranks of the communicator call
// it, in the same order, with arguments that agree (the same dtype and trailing shape, the same
// parameter list, send/recv counts that mirror each other). A rank that skips a call leaves the
// others waiting. Tensors are CPU tensors; reductions take float32, float64 and int64, data
// movement (broadcast, all_to_all_rows) takes any dtype.
//
// Without mpirun, without init(), or in a build without MPI (WENSU_MPI off) the world is one
// rank and every collective is a local copy, so single-process code needs nothing from here.
// docs/distributed.md says how to launch and how the groups are formed.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "wensu/core/tensor.h"

namespace wensu::dist {

// Starts MPI (MPI_Init_thread, MPI_THREAD_FUNNELED: only the main thread calls MPI; OpenMP
// threads never do) unless it is already running; safe to call more than once. Started
// without mpirun, the process is a world of one rank.
void init(int* argc, char*** argv);
void finalize();     // MPI_Finalize, only if init() started MPI
bool initialized();  // MPI is running (between init() and finalize()); false in non-MPI builds

namespace detail {
struct CommHandle;  // the backend's communicator (an MPI_Comm), freed with its last copy
}

class Communicator {
 public:
  Communicator() = default;  // a 1-rank communicator
  // Wraps a backend communicator (the MPI backend makes these; null gives the 1-rank one).
  explicit Communicator(std::shared_ptr<const detail::CommHandle> h);

  // MPI_COMM_WORLD once init() ran; a 1-rank world otherwise (and in non-MPI builds).
  static const Communicator& world();

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Sum over ranks, in place. t: contiguous CPU tensor, float32/float64/int64, same shape on
  // every rank.
  void all_reduce_sum(const Tensor& t) const;
  // root's values to every rank, in place. t: contiguous, same dtype and shape everywhere.
  void broadcast(const Tensor& t, int root) const;
  // send[r] goes to rank r (send.size() == size()); returns recv, recv[r] = what rank r sent us.
  std::vector<int64_t> all_to_all(const std::vector<int64_t>& send) const;
  // Returns {value of rank 0, value of rank 1, ...}.
  std::vector<int64_t> all_gather(int64_t value) const;
  // x: [N, ...]; the first send_rows[0] rows go to rank 0, the next send_rows[1] to rank 1, ...
  // (sum(send_rows) == N). recv_rows[r]: rows rank r sends us (what all_to_all(send_rows)
  // returns). Returns a fresh contiguous [sum(recv_rows), ...], rank 0's rows first. Not
  // recorded by autograd; see the free function below.
  Tensor all_to_all_rows(const Tensor& x, const std::vector<int64_t>& send_rows,
                         const std::vector<int64_t>& recv_rows) const;
  // Root gets size() buffers (its own included), the other ranks get {}. Any sizes, also above
  // 2 GiB: used to write one checkpoint from many ranks.
  std::vector<std::vector<char>> gather_bytes(const std::vector<char>& mine, int root) const;
  void barrier() const;
  // MPI_Comm_split: ranks with the same color (>= 0) form a communicator, ordered by key (ties
  // by rank here). A 1-rank communicator returns a copy of itself.
  Communicator split(int color, int key) const;

 private:
  std::shared_ptr<const detail::CommHandle> handle_;  // null: the 1-rank communicator
  int rank_ = 0, size_ = 1;
};

// Differentiable Communicator::all_to_all_rows: x [N, ...] -> [sum(recv_rows), ...]. Its
// backward runs the reverse exchange (send and recv counts swapped), so each row's gradient
// returns to the rank and position it came from. The backward is collective too: every rank
// must back-propagate through its output (a rank whose loss does not use it would not join the
// exchange), and x must require grad on all ranks or on none.
Tensor all_to_all_rows(const Tensor& x, const std::vector<int64_t>& send_rows,
                       const std::vector<int64_t>& recv_rows, const Communicator& c);

// Data parallel: sums the .grad of params over c (divided by c.size() when average), packing
// each dtype's gradients into one flat buffer (one all-reduce per dtype, not per tensor).
// Every rank passes the same parameters in the same order. A parameter whose grad is defined on
// some ranks only (an expert that got no tokens here) counts as zero where it is missing and
// ends with the reduced grad on every rank; one without a grad anywhere is left alone.
void all_reduce_gradients(const std::vector<Tensor>& params, const Communicator& c, bool average = true);

// Expert parallel x data parallel over world = dp * ep ranks. Ranks with the same rank / ep form
// an expert-parallel group (size ep; they hold different experts and exchange tokens), ranks
// with the same rank % ep a data-parallel group (size dp; they hold the same experts and
// average their gradients). Example, 4 ranks, ep = 2: expert groups {0, 1}, {2, 3}; data
// groups {0, 2}, {1, 3}. ep must divide the world size.
struct ParallelGroups {
  Communicator world, expert, data;
  int ep = 1, dp = 1;
};
ParallelGroups make_parallel_groups(int expert_parallel);

}  // namespace wensu::dist
