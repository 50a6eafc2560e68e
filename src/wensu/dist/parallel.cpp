// Training over many ranks, built on Communicator: the differentiable row exchange used to
// route tokens to experts, gradient averaging for data parallelism, and the expert x data
// parallel groups. Nothing here talks to MPI directly, so it is the same in every build.
#include <cstring>
#include <numeric>

#include "wensu/autograd/node.h"
#include "wensu/dist/comm.h"

namespace wensu::dist {

namespace {

// y = exchange(x): row i of x lands at some row j of y on rank r. The Jacobian is that
// permutation across ranks, so dL/dx[i] = dL/dy_r[j]: the backward is the same exchange with
// send and recv counts swapped (each rank sends back exactly the rows it received, in the
// order received, and gets its own rows back in their original order).
struct AllToAllRowsNode : autograd::Node {
  std::vector<int64_t> send_rows, recv_rows;
  Communicator comm;
  std::vector<Tensor> apply(const Tensor& g) override {
    return {comm.all_to_all_rows(g, recv_rows, send_rows)};  // [sum(send_rows), ...]
  }
  const char* name() const override { return "all_to_all_rows"; }
};

template <typename T>
void scale_in_place(const Tensor& t, double s) {
  T* p = t.data<T>();
  const T f = T(s);
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] *= f;
}

}  // namespace

Tensor all_to_all_rows(const Tensor& x, const std::vector<int64_t>& send_rows,
                       const std::vector<int64_t>& recv_rows, const Communicator& c) {
  Tensor y = c.all_to_all_rows(x, send_rows, recv_rows);  // [sum(recv_rows), ...]
  if (!autograd::needs_grad({&x})) return y;
  auto node = std::make_shared<AllToAllRowsNode>();
  node->send_rows = send_rows;
  node->recv_rows = recv_rows;
  node->comm = c;
  return autograd::record(y, node, {&x});
}

void all_reduce_gradients(const std::vector<Tensor>& params, const Communicator& c, bool average) {
  const int64_t n = int64_t(params.size());
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& p = params[size_t(i)];
    WENSU_CHECK(p.defined(), "all_reduce_gradients: parameter ", i, " is an undefined tensor");
    WENSU_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, "all_reduce_gradients: parameter ", i, " is ",
                p.describe(), "; only float32 and float64 gradients are reduced");
    Tensor g = p.grad();
    WENSU_CHECK(!g.defined() || (g.dtype() == p.dtype() && g.shape() == p.shape() && g.device() == Device::cpu),
                "all_reduce_gradients: parameter ", i, " (", p.describe(), ") has a gradient ", g.describe(),
                " of another dtype, shape or device");
  }
  if (c.size() == 1) return;  // the sum over one rank is the gradient itself, and so is the mean

  // Which gradients exist where. A rank with a different parameter list would silently pair
  // the wrong tensors in the flat buffer, so the lengths are compared first.
  const std::vector<int64_t> counts = c.all_gather(n);
  for (int r = 0; r < c.size(); ++r)
    WENSU_CHECK(counts[size_t(r)] == n, "all_reduce_gradients: rank ", c.rank(), " passes ", n,
                " parameters but rank ", r, " passes ", counts[size_t(r)],
                " (every rank must pass the same parameters in the same order)");
  Tensor present = Tensor::zeros({n}, DType::i64);  // [n] ranks holding each gradient
  int64_t* pr = present.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) pr[i] = params[size_t(i)].grad().defined() ? 1 : 0;
  c.all_reduce_sum(present);

  for (DType dt : {DType::f32, DType::f64}) {
    std::vector<int64_t> members, offsets;
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (params[size_t(i)].dtype() != dt || pr[i] == 0) continue;
      members.push_back(i);
      offsets.push_back(total);
      total += params[size_t(i)].numel();
    }
    if (members.empty()) continue;  // the same on every rank: `present` and dtypes agree
    Tensor flat = Tensor::zeros({total}, dt);  // [total]; zeros stand in for missing grads
    char* base = static_cast<char*>(flat.raw_data());
    const size_t es = dtype_size(dt);
    for (size_t k = 0; k < members.size(); ++k) {
      Tensor g = params[size_t(members[k])].grad();
      if (!g.defined()) continue;
      Tensor gc = g.contiguous();
      std::memcpy(base + size_t(offsets[k]) * es, gc.raw_data(), gc.nbytes());
    }
    c.all_reduce_sum(flat);
    if (average) {
      if (dt == DType::f32) scale_in_place<float>(flat, 1.0 / c.size());
      else scale_in_place<double>(flat, 1.0 / c.size());
    }
    for (size_t k = 0; k < members.size(); ++k) {
      const Tensor& p = params[size_t(members[k])];
      Tensor g = p.grad();
      const char* src = base + size_t(offsets[k]) * es;
      // Write into the existing gradient when it owns plain memory (keeps its identity for
      // whoever holds it); a missing or strided one (say an expanded view) gets a fresh tensor.
      if (!g.defined() || !g.is_contiguous()) {
        g = Tensor::empty(p.shape(), dt);
        p.set_grad(g);
      }
      std::memcpy(g.raw_data(), src, g.nbytes());
    }
  }
}

ParallelGroups make_parallel_groups(int expert_parallel) {
  const Communicator& world = Communicator::world();
  const int w = world.size(), ep = expert_parallel;
  WENSU_CHECK(ep >= 1 && w % ep == 0, "make_parallel_groups: the expert-parallel size ", ep,
              " must divide the number of ranks ", w, " (launch a multiple of ", ep,
              " ranks, or pick an expert-parallel size that divides ", w, ")");
  ParallelGroups g;
  g.world = world;
  g.ep = ep;
  g.dp = w / ep;
  const int r = world.rank();
  // Expert groups are blocks of ep consecutive ranks (neighbours, usually on one node, carry
  // the token exchange); data groups are strided, one member per expert group.
  g.expert = world.split(r / ep, r);
  g.data = world.split(r % ep, r);
  return g;
}

}  // namespace wensu::dist
