// Communicator: argument checks and the 1-rank path, shared by every build; communicators of two
// or more ranks go to the transport in backend.h. Checking here, before any message is sent,
// means a bad argument throws on the rank that passed it instead of hanging its peers in a
// half-started exchange (arguments that must agree across ranks, such as recv_rows, cannot
// all be checked locally; the header says which).
#include "wensu/dist/comm.h"

#include <numeric>

#include "wensu/autograd/grad_mode.h"
#include "wensu/dist/backend.h"

namespace wensu::dist {

namespace {

void check_cpu_contiguous(const Tensor& t, const char* op) {
  WENSU_CHECK(t.defined(), op, ": the tensor is undefined");
  WENSU_CHECK(t.device() == Device::cpu, op, ": needs a CPU tensor, got ", t.describe(),
              " (copy it to the host with .to(Device::cpu) first)");
  WENSU_CHECK(t.is_contiguous(), op, ": works in place on contiguous memory, got a strided view ",
              t.describe(), " (pass t.contiguous() and read the result from that tensor)");
}

void check_root(int root, int size, const char* op) {
  WENSU_CHECK(root >= 0 && root < size, op, ": root ", root, " is not a rank of this communicator (size ", size,
              ")");
}

void check_counts(const std::vector<int64_t>& rows, int size, const char* op, const char* what) {
  WENSU_CHECK(int64_t(rows.size()) == size, op, ": ", what, " has ", rows.size(),
              " entries but the communicator has ", size, " ranks (one count per rank)");
  for (size_t r = 0; r < rows.size(); ++r)
    WENSU_CHECK(rows[r] >= 0, op, ": ", what, "[", r, "] = ", rows[r], " is negative");
}

}  // namespace

Communicator::Communicator(std::shared_ptr<const detail::CommHandle> h) : handle_(std::move(h)) {
  if (handle_) {
    rank_ = detail::comm_rank(*handle_);
    size_ = detail::comm_size(*handle_);
  }
}

const Communicator& Communicator::world() {
  static const Communicator local;
  if (!initialized()) return local;
  // MPI runs from init() to finalize() and cannot be restarted, so one wrapper lives forever.
  static const Communicator mpi_world(detail::world_handle());
  return mpi_world;
}

void Communicator::all_reduce_sum(const Tensor& t) const {
  check_cpu_contiguous(t, "all_reduce_sum");
  WENSU_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64,
              "all_reduce_sum: sums float32, float64 or int64, got ", t.describe(),
              " (convert with .to(DType::f32) first)");
  if (size_ == 1) return;
  detail::all_reduce_sum(*handle_, t.raw_data(), t.numel(), t.dtype());
}

void Communicator::broadcast(const Tensor& t, int root) const {
  check_cpu_contiguous(t, "broadcast");
  check_root(root, size_, "broadcast");
  if (size_ == 1) return;
  detail::broadcast(*handle_, t.raw_data(), int64_t(t.nbytes()), root);
}

std::vector<int64_t> Communicator::all_to_all(const std::vector<int64_t>& send) const {
  WENSU_CHECK(int64_t(send.size()) == size_, "all_to_all: send has ", send.size(), " entries but the communicator has ",
              size_, " ranks (send[r] goes to rank r)");
  if (size_ == 1) return send;
  std::vector<int64_t> recv(static_cast<size_t>(size_));
  detail::all_to_all(*handle_, send.data(), recv.data());
  return recv;
}

std::vector<int64_t> Communicator::all_gather(int64_t value) const {
  if (size_ == 1) return {value};
  std::vector<int64_t> out(static_cast<size_t>(size_));
  detail::all_gather(*handle_, value, out.data());
  return out;
}

Tensor Communicator::all_to_all_rows(const Tensor& x, const std::vector<int64_t>& send_rows,
                                     const std::vector<int64_t>& recv_rows) const {
  const char* op = "all_to_all_rows";
  WENSU_CHECK(x.defined() && x.dim() >= 1, op, ": x must be [N, ...], got ", x.describe());
  WENSU_CHECK(x.device() == Device::cpu, op, ": needs a CPU tensor, got ", x.describe());
  check_counts(send_rows, size_, op, "send_rows");
  check_counts(recv_rows, size_, op, "recv_rows");
  const int64_t n_send = std::accumulate(send_rows.begin(), send_rows.end(), int64_t(0));
  const int64_t n_recv = std::accumulate(recv_rows.begin(), recv_rows.end(), int64_t(0));
  WENSU_CHECK(n_send == x.size(0), op, ": send_rows sum to ", n_send, " but x has ", x.size(0),
              " rows (every row goes to exactly one rank)");
  NoGradGuard no_grad;  // the differentiable wrapper records its own node
  if (size_ == 1) {
    WENSU_CHECK(recv_rows[0] == send_rows[0], op, ": on a 1-rank communicator recv_rows must equal send_rows, got ",
                recv_rows[0], " and ", send_rows[0]);
    return x.clone();
  }
  Shape out_shape = x.shape();
  out_shape[0] = n_recv;
  Tensor src = x.contiguous();
  Tensor out = Tensor::empty(out_shape, x.dtype());  // [sum(recv_rows), ...]
  const int64_t row_bytes = shape_numel(Shape(out_shape.begin() + 1, out_shape.end())) * int64_t(dtype_size(x.dtype()));
  detail::all_to_all_rows(*handle_, src.raw_data(), send_rows.data(), out.raw_data(), recv_rows.data(), row_bytes);
  return out;
}

std::vector<std::vector<char>> Communicator::gather_bytes(const std::vector<char>& mine, int root) const {
  check_root(root, size_, "gather_bytes");
  if (size_ == 1) return {mine};
  return detail::gather_bytes(*handle_, mine, root);
}

void Communicator::barrier() const {
  if (size_ > 1) detail::barrier(*handle_);
}

Communicator Communicator::split(int color, int key) const {
  WENSU_CHECK(color >= 0, "split: color must be >= 0, got ", color, " (every rank joins one of the new communicators)");
  if (size_ == 1) return *this;
  return Communicator(detail::split(*handle_, color, key));
}

}  // namespace wensu::dist
