// all_gather_rows over the row exchange of Communicator: every rank sends its rows to every
// rank (one all_to_all_rows of x repeated size() times), and the backward is the reverse
// exchange of each rank's slice followed by a sum over the senders (a reduce-scatter). Any
// dtype moves, and nothing here talks to MPI directly.
#include "wensu/dist/gather.h"

#include <string>
#include <vector>

#include "wensu/autograd/grad_mode.h"
#include "wensu/autograd/node.h"
#include "wensu/ops/reduce.h"

namespace wensu::dist {

namespace {

// y = concat over ranks q of x_q, identical on every rank r, and each rank's loss L_r may use
// all of y. The total is sum_r L_r, so dL/dx_q = sum_r (dL_r/dy_r)[rows of q]: rank r sends
// the slice of q's rows of its gradient to q, and q adds the slices up, in rank order (the
// same order whatever the transport, so the result is deterministic).
struct AllGatherRowsNode : autograd::Node {
  std::vector<int64_t> counts;  // rows of each rank
  Communicator comm;
  std::vector<Tensor> apply(const Tensor& g) override {  // g [sum(counts), ...]
    const int w = comm.size();
    const int64_t n = counts[size_t(comm.rank())];
    Tensor slices = comm.all_to_all_rows(g, counts, std::vector<int64_t>(size_t(w), n));  // [w * n, ...]
    Shape by_rank = g.shape();
    by_rank[0] = n;
    by_rank.insert(by_rank.begin(), w);
    return {ops::sum(slices.reshape(by_rank), {0})};  // [n, ...]
  }
  const char* name() const override { return "all_gather_rows"; }
};

// What must agree across ranks besides the row count, as integers: a rank whose rows differ
// would make the exchange read or write past its buffers, and one that records a node while
// another does not would leave the other alone in the backward exchange.
enum Field { kRows, kDType, kRowElems, kRowShape, kGrad, kFields };

int64_t row_shape_hash(const Shape& shape) {
  uint64_t h = shape.size();  // unsigned: the products may wrap
  for (size_t d = 1; d < shape.size(); ++d) h = h * 1000003u + uint64_t(shape[d]);
  return int64_t(h);
}

}  // namespace

Tensor all_gather_rows(const Tensor& x, const Communicator& c) {
  WENSU_CHECK(x.defined() && x.dim() >= 1, "all_gather_rows: x must be [n, ...], got ",
              x.defined() ? x.describe() : std::string("an undefined tensor"));
  WENSU_CHECK(x.device() == Device::cpu, "all_gather_rows: needs a CPU tensor, got ", x.describe());
  if (c.size() == 1) return x;
  const int w = c.size();
  const bool grad = autograd::needs_grad({&x});

  // Everyone's fields in one exchange: each rank sends its row of fields to every rank.
  std::vector<int64_t> mine(kFields);
  mine[kRows] = x.size(0);
  mine[kDType] = int64_t(x.dtype());
  mine[kRowElems] = shape_numel(Shape(x.shape().begin() + 1, x.shape().end()));
  mine[kRowShape] = row_shape_hash(x.shape());
  mine[kGrad] = grad ? 1 : 0;
  const std::vector<int64_t> ones(size_t(w), 1);
  Tensor all;  // [w, kFields]
  {
    NoGradGuard no_grad;
    Tensor row = Tensor::from_vector(mine, {1, int64_t(kFields)});
    all = c.all_to_all_rows(row.expand({w, int64_t(kFields)}).contiguous(), ones, ones);
  }
  const int64_t* f = all.data<int64_t>();
  std::vector<int64_t> counts(static_cast<size_t>(w));
  for (int r = 0; r < w; ++r) {
    const int64_t* fr = f + int64_t(r) * kFields;
    counts[size_t(r)] = fr[kRows];
    WENSU_CHECK(fr[kDType] == mine[kDType] && fr[kRowElems] == mine[kRowElems] && fr[kRowShape] == mine[kRowShape],
                "all_gather_rows: rank ", r, " passes rows of another shape or dtype than rank ", c.rank(), "'s ",
                x.describe(), " (every rank must pass x [n, ...] with the same trailing shape and dtype)");
    WENSU_CHECK(fr[kGrad] == mine[kGrad], "all_gather_rows: x requires grad on rank ", fr[kGrad] ? r : c.rank(),
                " but not on rank ", fr[kGrad] ? c.rank() : r,
                " (the backward is collective: x must require grad on every rank or on none)");
  }

  Tensor y;  // [sum(counts), ...]
  {
    NoGradGuard no_grad;  // the node below is the gather's whole history
    Shape rep = x.shape();
    rep.insert(rep.begin(), w);  // [w, n, ...]
    Shape flat = x.shape();
    flat[0] *= w;  // [w * n, ...]: our rows once for every rank
    Tensor send = x.detach().unsqueeze(0).expand(rep).reshape(flat);
    y = c.all_to_all_rows(send, std::vector<int64_t>(size_t(w), x.size(0)), counts);
  }
  if (!grad) return y;
  auto node = std::make_shared<AllGatherRowsNode>();
  node->counts = counts;
  node->comm = c;
  return autograd::record(y, node, {&x});
}

}  // namespace wensu::dist
