// The MPI transport (builds with WENSU_MPI). MPI counts and displacements are int, so anything
// that can pass 2^31 - 1 elements is split or measured in larger units: reductions and
// broadcasts go in chunks of 2^30 elements, the row exchange counts in rows (one derived
// datatype per row), and gather_bytes sends each rank's buffer point to point in chunks.
// Errors inside MPI keep MPI's default handler (abort the whole job): a rank that failed
// half-way through a collective cannot be recovered, and aborting beats leaving its peers
// waiting forever.
#include <mpi.h>

#include <algorithm>
#include <climits>

#include "wensu/dist/backend.h"
#include "wensu/dist/comm.h"

namespace wensu::dist {

namespace detail {

struct CommHandle {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;  // made by split(), so freed with the last Communicator that holds it
  ~CommHandle() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned && !finalized) MPI_Comm_free(&comm);
  }
};

}  // namespace detail

namespace {

bool g_started = false;               // init() called MPI_Init_thread, so finalize() ends MPI
constexpr int64_t kChunk = 1 << 30;   // elements (or bytes) per MPI call, below INT_MAX
constexpr int kGatherTag = 7301;      // gather_bytes' point-to-point messages

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(::wensu::detail::concat(call, " failed: ", std::string(msg, size_t(len))));
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    default: throw Error(::wensu::detail::concat("dist: no MPI reduction for ", dtype_name(t)));
  }
}

int to_int(int64_t v, const char* what) {
  WENSU_CHECK(v <= INT_MAX, "all_to_all_rows: ", what, " = ", v,
              " exceeds MPI's int limit (2^31 - 1 rows); exchange the rows in several smaller calls");
  return int(v);
}

}  // namespace

void init(int* argc, char*** argv) {
  int started = 0;
  MPI_Initialized(&started);
  if (started) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  WENSU_CHECK(!finalized, "dist::init: MPI was finalized already and cannot be started again in this process");
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_started = true;
  WENSU_CHECK(provided >= MPI_THREAD_FUNNELED,
              "dist::init: this MPI library does not support MPI_THREAD_FUNNELED (OpenMP threads next to MPI)");
}

void finalize() {
  if (!g_started || !initialized()) return;
  MPI_Finalize();
  g_started = false;
}

bool initialized() {
  int started = 0, finalized = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finalized);
  return started && !finalized;
}

namespace detail {

int comm_rank(const CommHandle& h) {
  int r = 0;
  check(MPI_Comm_rank(h.comm, &r), "MPI_Comm_rank");
  return r;
}

int comm_size(const CommHandle& h) {
  int s = 1;
  check(MPI_Comm_size(h.comm, &s), "MPI_Comm_size");
  return s;
}

std::shared_ptr<const CommHandle> world_handle() {
  if (!initialized()) return nullptr;
  auto h = std::make_shared<CommHandle>();
  h->comm = MPI_COMM_WORLD;
  return h;
}

void all_reduce_sum(const CommHandle& h, void* data, int64_t count, DType dtype) {
  const MPI_Datatype t = mpi_type(dtype);
  char* p = static_cast<char*>(data);
  const size_t esize = dtype_size(dtype);
  for (int64_t off = 0; off < count; off += kChunk) {
    const int n = int(std::min(kChunk, count - off));
    check(MPI_Allreduce(MPI_IN_PLACE, p + size_t(off) * esize, n, t, MPI_SUM, h.comm), "MPI_Allreduce");
  }
}

void broadcast(const CommHandle& h, void* data, int64_t nbytes, int root) {
  char* p = static_cast<char*>(data);
  for (int64_t off = 0; off < nbytes; off += kChunk)
    check(MPI_Bcast(p + off, int(std::min(kChunk, nbytes - off)), MPI_BYTE, root, h.comm), "MPI_Bcast");
}

void all_to_all(const CommHandle& h, const int64_t* send, int64_t* recv) {
  check(MPI_Alltoall(send, 1, MPI_INT64_T, recv, 1, MPI_INT64_T, h.comm), "MPI_Alltoall");
}

void all_gather(const CommHandle& h, int64_t value, int64_t* out) {
  check(MPI_Allgather(&value, 1, MPI_INT64_T, out, 1, MPI_INT64_T, h.comm), "MPI_Allgather");
}

void all_to_all_rows(const CommHandle& h, const void* send, const int64_t* send_rows, void* recv,
                     const int64_t* recv_rows, int64_t row_bytes) {
  // Every rank has the same trailing shape, so a [N, 0] tensor has nothing to move anywhere.
  if (row_bytes == 0) return;
  WENSU_CHECK(row_bytes <= INT_MAX, "all_to_all_rows: one row holds ", row_bytes,
              " bytes, above MPI's int limit; reshape so that rows are smaller");
  const int n = comm_size(h);
  // Counts and displacements in rows: a row is one element of a derived datatype, so a
  // multi-gigabyte exchange stays within int as long as it has fewer than 2^31 rows.
  std::vector<int> sc(static_cast<size_t>(n)), sd(sc), rc(sc), rd(sc);
  int64_t so = 0, ro = 0;
  for (int r = 0; r < n; ++r) {
    sd[r] = to_int(so, "send offset");
    rd[r] = to_int(ro, "recv offset");
    sc[r] = to_int(send_rows[r], "send_rows");
    rc[r] = to_int(recv_rows[r], "recv_rows");
    so += send_rows[r];
    ro += recv_rows[r];
  }
  MPI_Datatype row;
  check(MPI_Type_contiguous(int(row_bytes), MPI_BYTE, &row), "MPI_Type_contiguous");
  check(MPI_Type_commit(&row), "MPI_Type_commit");
  const int rc_all = MPI_Alltoallv(send, sc.data(), sd.data(), row, recv, rc.data(), rd.data(), row, h.comm);
  MPI_Type_free(&row);
  check(rc_all, "MPI_Alltoallv");
}

std::vector<std::vector<char>> gather_bytes(const CommHandle& h, const std::vector<char>& mine, int root) {
  const int rank = comm_rank(h), n = comm_size(h);
  const int64_t my_size = int64_t(mine.size());
  std::vector<int64_t> sizes(rank == root ? size_t(n) : 0);
  check(MPI_Gather(&my_size, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, root, h.comm), "MPI_Gather");
  // Point to point rather than MPI_Gatherv: Gatherv's int byte displacements would cap the
  // total at 2 GiB, and a checkpoint gathered from many ranks can be larger.
  if (rank != root) {
    for (int64_t off = 0; off < my_size; off += kChunk)
      check(MPI_Send(mine.data() + off, int(std::min(kChunk, my_size - off)), MPI_BYTE, root, kGatherTag, h.comm),
            "MPI_Send");
    return {};
  }
  std::vector<std::vector<char>> out(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    if (r == root) {
      out[r] = mine;
      continue;
    }
    out[r].resize(size_t(sizes[r]));
    for (int64_t off = 0; off < sizes[r]; off += kChunk)
      check(MPI_Recv(out[r].data() + off, int(std::min(kChunk, sizes[r] - off)), MPI_BYTE, r, kGatherTag, h.comm,
                     MPI_STATUS_IGNORE),
            "MPI_Recv");
  }
  return out;
}

void barrier(const CommHandle& h) { check(MPI_Barrier(h.comm), "MPI_Barrier"); }

std::shared_ptr<const CommHandle> split(const CommHandle& h, int color, int key) {
  auto out = std::make_shared<CommHandle>();
  check(MPI_Comm_split(h.comm, color, key, &out->comm), "MPI_Comm_split");
  out->owned = true;
  return out;
}

}  // namespace detail

}  // namespace wensu::dist
