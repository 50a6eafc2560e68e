#include "wensu/ops/moe.h"

#include <memory>

#include "wensu/autograd/grad_mode.h"
#include "wensu/autograd/node.h"
#include "wensu/ops/dispatch.h"
#include "wensu/ops/indexing.h"

namespace wensu::ops {

using autograd::Node;

namespace {

// CPU-only builds stop a CUDA tensor here, before anything is allocated on a missing device.
void require_backend(Device dev, const char* op) {
#ifndef WENSU_CUDA
  if (dev == Device::cuda) no_cuda_impl(op);
#endif
}

// A MoeRouting is a plain struct a caller may also build or edit by hand, and the kernels index
// rows through it without bounds checks, so its sizes are checked on every use and, on the CPU,
// its values too: each kept pair owns a distinct row in [0, N) whose source is its token. This
// reads T * K integers, a small fraction of the T * K * D values the op moves.
void check_routing(const MoeRouting& r, Device dev, const char* op) {
  WENSU_CHECK(r.tokens >= 0 && r.top_k >= 1 && r.experts >= 1, op, ": routing has tokens = ", r.tokens, ", top_k = ",
              r.top_k, ", experts = ", r.experts, " (build it with moe_routing)");
  WENSU_CHECK(int64_t(r.offsets.size()) == r.experts + 1 && int64_t(r.counts.size()) == r.experts &&
                  r.offsets.front() == 0,
              op, ": routing has ", r.counts.size(), " counts and ", r.offsets.size(), " offsets for ", r.experts,
              " experts (expected E and E + 1 with offsets[0] = 0; build it with moe_routing)");
  for (int64_t e = 0; e < r.experts; ++e)
    WENSU_CHECK(r.counts[size_t(e)] >= 0 && r.offsets[size_t(e + 1)] == r.offsets[size_t(e)] + r.counts[size_t(e)],
                op, ": routing offsets are not the prefix sum of counts at expert ", e);
  const int64_t N = r.rows();
  WENSU_CHECK(r.position.defined() && r.position.dtype() == DType::i64 &&
                  r.position.shape() == Shape({r.tokens, r.top_k}) && r.position.is_contiguous(),
              op, ": routing position must be contiguous int64 [T, K] = [", r.tokens, ", ", r.top_k, "], got ",
              r.position.defined() ? r.position.describe() : "undefined");
  WENSU_CHECK(r.source.defined() && r.source.dtype() == DType::i64 && r.source.shape() == Shape({N}) &&
                  r.source.is_contiguous(),
              op, ": routing source must be contiguous int64 [N] = [", N, "], got ",
              r.source.defined() ? r.source.describe() : "undefined");
  WENSU_CHECK(r.position.device() == dev && r.source.device() == dev, op, ": routing is on ",
              device_name(r.position.device()), " but the data is on ", device_name(dev));
  if (dev != Device::cpu) return;
  const int64_t* pos = r.position.data<int64_t>();
  const int64_t* src = r.source.data<int64_t>();
  int64_t kept = 0;
  for (int64_t t = 0; t < r.tokens; ++t) {
    for (int64_t k = 0; k < r.top_k; ++k) {
      const int64_t p = pos[t * r.top_k + k];
      if (p == -1) continue;
      WENSU_CHECK(p >= 0 && p < N && src[p] == t, op, ": routing position[", t, ", ", k, "] = ", p,
                  " is not a row of token ", t, " among the ", N, " rows (build the routing with moe_routing)");
      ++kept;
    }
  }
  // N kept pairs, each at a row whose source is its own token: a bijection onto the rows.
  WENSU_CHECK(kept == N, op, ": routing keeps ", kept, " pairs but has ", N, " rows");
}

// Inputs of the kernels: contiguous and detached.
Tensor dense(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.contiguous().detach(); }

// ---------------------------------------------------------------- autograd nodes

// out[r] = x[source[r]]: each token's gradient sums the gradients of its rows.
struct MoePermuteNode : Node {
  MoeRouting r;
  int64_t D = 0;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor go = dense(g);
    Tensor gx = Tensor::empty({r.tokens, D}, go.dtype(), go.device());  // [T, D]
    if (go.device() == Device::cuda) {
#ifdef WENSU_CUDA
      cuda::moe_permute_backward(go, r, gx);
#endif
    } else {
      cpu::moe_permute_backward(go, r, gx);
    }
    return {gx};
  }
  const char* name() const override { return "moe_permute"; }
  void release() override { r = MoeRouting(); }
};

// out[t] = sum_k w[t, k] y[p(t, k)]: grad_y[p(t, k)] = w[t, k] g[t], grad_w[t, k] = <g[t], y[p(t, k)]>.
struct MoeCombineNode : Node {
  MoeRouting r;
  Tensor y, weights;  // contiguous [N, D], [T, K]
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor go = dense(g);
    Tensor gy = Tensor::empty(y.shape(), y.dtype(), y.device());              // [N, D]
    Tensor gw = Tensor::empty(weights.shape(), y.dtype(), y.device());        // [T, K]
    if (go.device() == Device::cuda) {
#ifdef WENSU_CUDA
      cuda::moe_combine_backward(go, y, weights, r, gy, gw);
#endif
    } else {
      cpu::moe_combine_backward(go, y, weights, r, gy, gw);
    }
    return {gy, gw};
  }
  const char* name() const override { return "moe_combine"; }
  void release() override {
    r = MoeRouting();
    y = weights = Tensor();
  }
};

// Per group g (rows R_g): out_g = x_g w[g]^T + b[g], so
//   grad_x_g = g_g w[g]        [n_g, Din]
//   grad_w[g] = g_g^T x_g      [Dout, Din]   (zero for an empty group)
//   grad_b[g] = sum_rows g_g   [Dout]
// Gradients are returned in the recorded order: x, w[0..G), bias[0..G).
struct GroupedMatmulNode : Node {
  Tensor x;               // contiguous [N, Din]
  std::vector<Tensor> w;  // detached views [Dout, Din]
  std::vector<int64_t> offsets;
  bool has_bias = false;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor go = dense(g);  // [N, Dout]
    const Device dev = go.device();
    const DType dt = go.dtype();
    const int64_t Dout = go.size(1), Din = x.size(1);
    Tensor gx = Tensor::empty(x.shape(), dt, dev);
    std::vector<Tensor> gw, gb;
    for (size_t i = 0; i < w.size(); ++i) {
      gw.push_back(Tensor::empty({Dout, Din}, dt, dev));
      if (has_bias) gb.push_back(Tensor::empty({Dout}, dt, dev));
    }
    if (dev == Device::cuda) {
#ifdef WENSU_CUDA
      cuda::grouped_matmul_backward(go, x, w, offsets, gx, gw, gb);
#endif
    } else {
      cpu::grouped_matmul_backward(go, x, w, offsets, gx, gw, gb);
    }
    std::vector<Tensor> out{gx};
    out.insert(out.end(), gw.begin(), gw.end());
    out.insert(out.end(), gb.begin(), gb.end());
    return out;
  }
  const char* name() const override { return "grouped_matmul"; }
  void release() override {
    x = Tensor();
    w.clear();
  }
};

// values[j] = x[idx[j]] along the last dim: the gradient goes back to the chosen positions,
// each at most once per row (indices in a row are distinct).
struct TopkNode : Node {
  Tensor indices;  // contiguous int64 [..., k]
  Shape x_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    return {scatter_add(Tensor::zeros(x_shape, g.dtype(), g.device()), -1, indices, g)};
  }
  const char* name() const override { return "topk"; }
  void release() override { indices = Tensor(); }
};

}  // namespace

MoeRouting moe_routing(const Tensor& expert_index, int64_t num_experts, int64_t capacity) {
  WENSU_CHECK(expert_index.defined(), "moe_routing: expert_index is undefined");
  WENSU_CHECK(expert_index.dtype() == DType::i64 && expert_index.dim() == 2,
              "moe_routing: expert_index must be int64 [T, K] (token, choice), got ", expert_index.describe());
  WENSU_CHECK(expert_index.size(1) >= 1, "moe_routing: expert_index must have at least one choice per token, got ",
              expert_index.describe());
  WENSU_CHECK(num_experts >= 1, "moe_routing: num_experts must be at least 1, got ", num_experts);
  WENSU_CHECK(capacity >= 0, "moe_routing: capacity must be >= 0 (0 = dropless), got ", capacity);
  const Device dev = expert_index.device();
  require_backend(dev, "moe_routing");
  MoeRouting r;
  r.tokens = expert_index.size(0);
  r.top_k = expert_index.size(1);
  r.experts = num_experts;
  r.capacity = capacity;
  Tensor ei = dense(expert_index);
  if (dev == Device::cuda) {
#ifdef WENSU_CUDA
    cuda::moe_routing(ei, r);
#endif
  } else {
    cpu::moe_routing(ei, r);
  }
  return r;
}

Tensor moe_permute(const Tensor& x, const MoeRouting& r) {
  const Device dev = common_device({&x}, "moe_permute");
  const DType dt = common_float_dtype({&x}, "moe_permute");
  require_backend(dev, "moe_permute");
  WENSU_CHECK(x.dim() == 2 && x.size(0) == r.tokens, "moe_permute: x must be [T, D] with T = ", r.tokens,
              " tokens of the routing, got ", shape_str(x.shape()));
  check_routing(r, dev, "moe_permute");
  const int64_t D = x.size(1);
  Tensor out = Tensor::empty({r.rows(), D}, dt, dev);  // [N, D]
  Tensor xc = dense(x);
  if (dev == Device::cuda) {
#ifdef WENSU_CUDA
    cuda::moe_permute_forward(xc, r, out);
#endif
  } else {
    cpu::moe_permute_forward(xc, r, out);
  }
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<MoePermuteNode>();
  node->r = r;
  node->D = D;
  return autograd::record(out, node, {&x});
}

Tensor moe_combine(const Tensor& y, const Tensor& weights, const MoeRouting& r) {
  const Device dev = common_device({&y, &weights}, "moe_combine");
  const DType dt = common_float_dtype({&y, &weights}, "moe_combine");
  require_backend(dev, "moe_combine");
  WENSU_CHECK(y.dim() == 2 && y.size(0) == r.rows(), "moe_combine: y must be [N, D] with N = ", r.rows(),
              " rows kept by the routing, got ", shape_str(y.shape()));
  WENSU_CHECK(weights.shape() == Shape({r.tokens, r.top_k}), "moe_combine: weights must be [T, K] = [", r.tokens,
              ", ", r.top_k, "] (one gate weight per token and choice), got ", shape_str(weights.shape()));
  check_routing(r, dev, "moe_combine");
  const int64_t D = y.size(1);
  Tensor out = Tensor::empty({r.tokens, D}, dt, dev);  // [T, D]
  Tensor yc = dense(y), wc = dense(weights);
  if (dev == Device::cuda) {
#ifdef WENSU_CUDA
    cuda::moe_combine_forward(yc, wc, r, out);
#endif
  } else {
    cpu::moe_combine_forward(yc, wc, r, out);
  }
  if (!autograd::needs_grad({&y, &weights})) return out;
  auto node = std::make_shared<MoeCombineNode>();
  node->r = r;
  node->y = yc;
  node->weights = wc;
  return autograd::record(out, node, {&y, &weights});
}

Tensor grouped_matmul(const Tensor& x, const std::vector<Tensor>& w, const std::vector<int64_t>& offsets,
                      const std::vector<Tensor>& bias) {
  const Device dev = common_device({&x}, "grouped_matmul");
  const DType dt = common_float_dtype({&x}, "grouped_matmul");
  require_backend(dev, "grouped_matmul");
  WENSU_CHECK(x.dim() == 2, "grouped_matmul: x must be [N, Din], got ", shape_str(x.shape()));
  const int64_t N = x.size(0), Din = x.size(1), G = int64_t(w.size());
  WENSU_CHECK(G >= 1, "grouped_matmul: needs at least one weight (one per group)");
  WENSU_CHECK(int64_t(offsets.size()) == G + 1, "grouped_matmul: offsets has ", offsets.size(),
              " entries for ", G, " weights (expected G + 1 = ", G + 1, ")");
  WENSU_CHECK(offsets.front() == 0 && offsets.back() == N, "grouped_matmul: offsets must start at 0 and end at N = ",
              N, " (the rows of x), got ", offsets.front(), " ... ", offsets.back());
  for (int64_t g = 0; g < G; ++g)
    WENSU_CHECK(offsets[size_t(g)] <= offsets[size_t(g + 1)], "grouped_matmul: offsets decrease at group ", g, " (",
                offsets[size_t(g)], " > ", offsets[size_t(g + 1)], ")");
  WENSU_CHECK(w[0].defined() && w[0].dim() == 2, "grouped_matmul: w[0] must be [Dout, Din], got ",
              w[0].defined() ? w[0].describe() : "undefined");
  const int64_t Dout = w[0].size(0);
  WENSU_CHECK(Din >= 1 && Dout >= 1, "grouped_matmul: Din and Dout must be positive, got x ", shape_str(x.shape()),
              " and w[0] ", shape_str(w[0].shape()));
  for (int64_t g = 0; g < G; ++g) {
    const Tensor& wg = w[size_t(g)];
    WENSU_CHECK(wg.defined() && wg.shape() == Shape({Dout, Din}), "grouped_matmul: w[", g, "] must be [Dout, Din] = [",
                Dout, ", ", Din, "] like w[0] and x, got ", wg.defined() ? wg.describe() : "undefined");
    common_device({&x, &wg}, "grouped_matmul");
    common_float_dtype({&x, &wg}, "grouped_matmul");
  }
  WENSU_CHECK(bias.empty() || int64_t(bias.size()) == G, "grouped_matmul: bias must be empty or one [Dout] per group (",
              G, "), got ", bias.size());
  for (size_t g = 0; g < bias.size(); ++g) {
    WENSU_CHECK(bias[g].defined() && bias[g].shape() == Shape({Dout}), "grouped_matmul: bias[", g, "] must be [",
                Dout, "], got ", bias[g].defined() ? bias[g].describe() : "undefined");
    common_device({&x, &bias[g]}, "grouped_matmul");
    common_float_dtype({&x, &bias[g]}, "grouped_matmul");
  }
  Tensor out = Tensor::empty({N, Dout}, dt, dev);  // [N, Dout]
  Tensor xc = dense(x);
  std::vector<Tensor> wd, bd;  // detached views: the kernels take any BLAS-compatible layout
  for (auto& t : w) wd.push_back(t.detach());
  for (auto& t : bias) bd.push_back(t.detach());
  if (dev == Device::cuda) {
#ifdef WENSU_CUDA
    cuda::grouped_matmul_forward(xc, wd, offsets, bd, out);
#endif
  } else {
    cpu::grouped_matmul_forward(xc, wd, offsets, bd, out);
  }
  std::vector<Tensor> inputs{x};
  inputs.insert(inputs.end(), w.begin(), w.end());
  inputs.insert(inputs.end(), bias.begin(), bias.end());
  bool any = false;
  for (auto& t : inputs) any = any || t.requires_grad();
  if (!any || !autograd::grad_enabled()) return out;
  auto node = std::make_shared<GroupedMatmulNode>();
  node->x = xc;
  node->w = wd;
  node->offsets = offsets;
  node->has_bias = !bias.empty();
  return autograd::record(out, node, inputs);
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k) {
  const Device dev = common_device({&x}, "topk");
  const DType dt = common_float_dtype({&x}, "topk");
  WENSU_CHECK(x.dim() >= 1, "topk: x must have at least one dim, got ", x.describe());
  const int64_t n = x.size(-1);
  WENSU_CHECK(k >= 0 && k <= n, "topk: k = ", k, " is outside [0, ", n, "] (the size of the last dim of ",
              shape_str(x.shape()), ")");
  // No CUDA twin yet: the router's top-k over E experts per token is small next to the experts.
  if (dev == Device::cuda) no_cuda_impl("topk");
  Shape out_shape = x.shape();
  out_shape.back() = k;  // [..., k]
  Tensor values = Tensor::empty(out_shape, dt, dev), indices = Tensor::empty(out_shape, DType::i64, dev);
  cpu::topk(dense(x), k, values, indices);
  if (!autograd::needs_grad({&x})) return {values, indices};
  auto node = std::make_shared<TopkNode>();
  node->indices = indices;
  node->x_shape = x.shape();
  return {autograd::record(values, node, {&x}), indices};
}

}  // namespace wensu::ops
