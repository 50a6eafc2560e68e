// Builds without MPI (WENSU_MPI off): the world is one rank, so comm.cpp answers every
// collective locally and no communicator of two or more ranks can exist. The transport below
// is never reached; it reports the missing backend should that ever change.
#include "wensu/dist/backend.h"
#include "wensu/dist/comm.h"

namespace wensu::dist {

void init(int*, char***) {}
void finalize() {}
bool initialized() { return false; }

namespace detail {

struct CommHandle {};

namespace {
[[noreturn]] void no_mpi() {
  throw Error("dist: this wensu was built without MPI (WENSU_MPI=OFF); install libopenmpi-dev and rebuild");
}
}  // namespace

int comm_rank(const CommHandle&) { return 0; }
int comm_size(const CommHandle&) { return 1; }
std::shared_ptr<const CommHandle> world_handle() { return nullptr; }
void all_reduce_sum(const CommHandle&, void*, int64_t, DType) { no_mpi(); }
void broadcast(const CommHandle&, void*, int64_t, int) { no_mpi(); }
void all_to_all(const CommHandle&, const int64_t*, int64_t*) { no_mpi(); }
void all_gather(const CommHandle&, int64_t, int64_t*) { no_mpi(); }
void all_to_all_rows(const CommHandle&, const void*, const int64_t*, void*, const int64_t*, int64_t) { no_mpi(); }
std::vector<std::vector<char>> gather_bytes(const CommHandle&, const std::vector<char>&, int) { no_mpi(); }
void barrier(const CommHandle&) { no_mpi(); }
std::shared_ptr<const CommHandle> split(const CommHandle&, int, int) { no_mpi(); }

}  // namespace detail

}  // namespace wensu::dist
