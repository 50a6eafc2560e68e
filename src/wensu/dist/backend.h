// The transport under Communicator (internal to dist/): plain pointers and counts, no tensors,
// no autograd. comm.cpp checks arguments and handles 1-rank communicators itself, so these run
// only on communicators of two or more ranks. comm_mpi.cpp implements them over MPI;
// comm_none.cpp (builds without MPI) never gets such a communicator and reports "built
// without MPI" if one is asked for.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "wensu/core/dtype.h"
#include "wensu/dist/comm.h"

namespace wensu::dist::detail {

int comm_rank(const CommHandle& h);
int comm_size(const CommHandle& h);
// MPI_COMM_WORLD while MPI runs, else null.
std::shared_ptr<const CommHandle> world_handle();

// Element-wise sum of `count` elements of `dtype` (f32, f64 or i64) over ranks, in place.
void all_reduce_sum(const CommHandle& h, void* data, int64_t count, DType dtype);
void broadcast(const CommHandle& h, void* data, int64_t nbytes, int root);
// send[r] to rank r; recv[r] from rank r (comm_size values each).
void all_to_all(const CommHandle& h, const int64_t* send, int64_t* recv);
void all_gather(const CommHandle& h, int64_t value, int64_t* out);
// Rows of row_bytes bytes: send_rows[r] consecutive rows of `send` to rank r, recv_rows[r]
// rows from rank r into `recv`, in rank order.
void all_to_all_rows(const CommHandle& h, const void* send, const int64_t* send_rows, void* recv,
                     const int64_t* recv_rows, int64_t row_bytes);
std::vector<std::vector<char>> gather_bytes(const CommHandle& h, const std::vector<char>& mine, int root);
void barrier(const CommHandle& h);
std::shared_ptr<const CommHandle> split(const CommHandle& h, int color, int key);

}  // namespace wensu::dist::detail
