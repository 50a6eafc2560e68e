#include "wensu/ops/indexing.h"

#include "wensu/autograd/node.h"
#include "wensu/ops/cpu/loops.h"
#include "wensu/ops/dispatch.h"
#include "wensu/ops/shape.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

namespace {

void check_int64(const Tensor& t, const char* op, const char* what) {
  WENSU_CHECK(t.defined(), op, ": ", what, " is undefined");
  WENSU_CHECK(t.dtype() == DType::i64, op, ": ", what, " must be int64, got ", t.describe());
}

// "[1, 4]": the position of flat (row-major) element k in `shape`.
std::string position_str(const Shape& shape, int64_t k) {
  Shape pos(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    pos[d] = k % shape[d];
    k /= shape[d];
  }
  return shape_str(pos);
}

// Throws for the first entry of idx (contiguous int64) outside [0, hi), naming where it is.
// A serial scan: it reads each index once, which is cheap next to the rows it addresses, and
// keeps the throw out of the kernels' parallel regions.
void check_range(const Tensor& idx, int64_t hi, const char* op, const char* what, const std::string& context) {
  const int64_t* p = idx.data<int64_t>();
  const int64_t n = idx.numel();
  for (int64_t k = 0; k < n; ++k)
    WENSU_CHECK(p[k] >= 0 && p[k] < hi, op, ": ", what, position_str(idx.shape(), k), " = ", p[k],
                " is out of range [0, ", hi, ")", context);
}

struct Split {
  int64_t outer = 1, n = 1, inner = 1;
};

// x's shape viewed as [outer, n, inner] around dim d.
Split split_at(const Shape& s, int64_t d) {
  Split r;
  for (int64_t k = 0; k < d; ++k) r.outer *= s[k];
  r.n = s[d];
  for (int64_t k = d + 1; k < int64_t(s.size()); ++k) r.inner *= s[k];
  return r;
}

// Kernel launches shared by the forward ops and the backward rules (which skip the checks:
// their indices were validated when the forward ran).
Tensor gather_impl(const Tensor& x, int64_t d, const Tensor& idx) {
  Tensor out = Tensor::empty(idx.shape(), x.dtype(), x.device());
  if (x.device() == Device::cuda) no_cuda_impl("gather");
  cpu::gather(x.detach(), d, idx, out);
  return out;
}

// Adds src into `out`, a fresh contiguous tensor owned by the caller; returns it.
Tensor scatter_add_into(const Tensor& out, int64_t d, const Tensor& idx, const Tensor& src) {
  if (out.device() == Device::cuda) no_cuda_impl("scatter_add");
  cpu::scatter_add(out, d, idx, src.detach());
  return out;
}

Tensor index_add_impl(const Tensor& g, const Split& s, const Tensor& idx, int64_t skip, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, g.dtype(), g.device());
  if (g.device() == Device::cuda) no_cuda_impl("index_add");
  cpu::index_add(g.contiguous().detach(), s.outer, idx.numel(), s.inner, idx, s.n, skip, out);
  return out;
}

Tensor masked_fill_impl(const Tensor& x, const Tensor& mask, double value) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device() == Device::cuda) no_cuda_impl("masked_fill");
  cpu::masked_fill(x.detach(), mask, cpu::broadcast_strides(mask, x.shape()), value, out);
  return out;
}

// ---------------------------------------------------------------- embedding

// out[p] = weight[ids[p]]  =>  dweight[v] = sum over positions p with ids[p] == v of g[p],
// except the padding row, which stays zero so it is never trained (PyTorch semantics).
struct EmbeddingNode : Node {
  Tensor ids;  // contiguous int64
  int64_t V = 0, D = 0, padding_idx = -1;
  std::vector<Tensor> apply(const Tensor& g) override {
    return {index_add_impl(g, {1, V, D}, ids, padding_idx, {V, D})};
  }
  const char* name() const override { return "embedding"; }
  void release() override { ids = Tensor(); }
};

// ---------------------------------------------------------------- gather / scatter_add

// out[.., k, ..] = x[.., index[.., k, ..], ..]: each output element reads one element of x, so
// dx collects g at the same places: dx = scatter_add(zeros, dim, index, g).
struct GatherNode : Node {
  Tensor index;  // contiguous int64
  int64_t dim = 0;
  Shape x_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    return {scatter_add_into(Tensor::zeros(x_shape, g.dtype(), g.device()), dim, index, g)};
  }
  const char* name() const override { return "gather"; }
  void release() override { index = Tensor(); }
};

// out = x + S(src), with S linear: dx = g. Element src[.., k, ..] went to out[.., index[..], ..],
// so dsrc = gather(g, dim, index) at index's positions and zero where src exceeds index's shape.
struct ScatterAddNode : Node {
  Tensor index;  // contiguous int64
  int64_t dim = 0;
  Shape src_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gsrc;
    if (edges[1].active()) {
      gsrc = gather_impl(g, dim, index);
      if (gsrc.shape() != src_shape) {
        Tensor full = Tensor::zeros(src_shape, g.dtype(), g.device());
        Tensor corner = full;
        for (int64_t d = 0; d < corner.dim(); ++d) corner = corner.narrow(d, 0, index.size(d));
        corner.copy_(gsrc);
        gsrc = full;
      }
    }
    return {edges[0].active() ? g : Tensor(), gsrc};
  }
  const char* name() const override { return "scatter_add"; }
  void release() override { index = Tensor(); }
};

// Shared checks of gather and scatter_add: index has x's ndim and fits x outside `dim`.
int64_t check_dim_index(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  check_int64(index, op, "index");
  WENSU_CHECK(x.dim() > 0, op, ": x must have at least one dim, got ", x.describe());
  const int64_t d = normalize_dim(dim, x.dim(), op);
  WENSU_CHECK(index.dim() == x.dim(), op, ": index ", shape_str(index.shape()), " must have as many dims as x ",
              shape_str(x.shape()));
  for (int64_t k = 0; k < x.dim(); ++k)
    WENSU_CHECK(k == d || index.size(k) <= x.size(k), op, ": index ", shape_str(index.shape()),
                " is larger than x ", shape_str(x.shape()), " in dim ", k, " (only dim ", d, " may differ)");
  return d;
}

std::string dim_context(int64_t d, const Tensor& x) {
  return detail::concat(" for dim ", d, " of x ", shape_str(x.shape()));
}

// ---------------------------------------------------------------- index_select

// out[.., j, ..] = x[.., index[j], ..]  =>  dx[.., v, ..] = sum over j with index[j] == v of
// g[.., j, ..] (an index_add into zeros; repeated indices accumulate).
struct IndexSelectNode : Node {
  Tensor index;  // contiguous int64 [m]
  Split split;   // of x's shape around dim
  Shape x_shape;
  std::vector<Tensor> apply(const Tensor& g) override {
    return {index_add_impl(g, split, index, /*skip=*/-1, x_shape)};
  }
  const char* name() const override { return "index_select"; }
  void release() override { index = Tensor(); }
};

// ---------------------------------------------------------------- masked_fill

// out = mask ? value : x: a filled element no longer depends on x, so dx = masked_fill(g, mask, 0).
struct MaskedFillNode : Node {
  Tensor mask;
  std::vector<Tensor> apply(const Tensor& g) override { return {masked_fill_impl(g, mask, 0.0)}; }
  const char* name() const override { return "masked_fill"; }
  void release() override { mask = Tensor(); }
};

}  // namespace

// A bfloat16 table (inference with bf16 weights): the rows widened to float32, no autograd.
static Tensor embedding_bf16(const Tensor& weight, const Tensor& ids) {
  WENSU_CHECK(!autograd::needs_grad({&weight}), "embedding: bfloat16 tables are for inference only");
  WENSU_CHECK(weight.dim() == 2 && weight.device() == Device::cpu && ids.device() == Device::cpu,
              "embedding: a bfloat16 table must be a [V, D] CPU tensor, got ", shape_str(weight.shape()));
  check_int64(ids, "embedding", "ids");
  const int64_t V = weight.size(0), D = weight.size(1);
  Tensor idc = ids.contiguous().detach(), w = weight.contiguous().detach();
  check_range(idc, V, "embedding", "ids", detail::concat(" (weight ", shape_str(weight.shape()), " has ", V, " rows)"));
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape, DType::f32);
  const int64_t* id = idc.data<int64_t>();
  const bf16* src = w.data<bf16>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < idc.numel(); ++i)
    for (int64_t d = 0; d < D; ++d) dst[i * D + d] = bf16_to_float(src[id[i] * D + d]);
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx) {
  if (weight.dtype() == DType::bf16) return embedding_bf16(weight, ids);
  Device dev = common_device({&weight, &ids}, "embedding");
  DType dt = common_float_dtype({&weight}, "embedding");
  check_int64(ids, "embedding", "ids");
  WENSU_CHECK(weight.dim() == 2, "embedding: weight must be [V, D], got ", shape_str(weight.shape()));
  const int64_t V = weight.size(0), D = weight.size(1);
  WENSU_CHECK(padding_idx < V, "embedding: padding_idx ", padding_idx, " is out of range for a weight with ", V,
              " rows");
  Shape out_shape = ids.shape();
  out_shape.push_back(D);  // [..., D]
  Tensor out = Tensor::empty(out_shape, dt, dev);
  if (dev == Device::cuda) no_cuda_impl("embedding");
  Tensor idc = ids.contiguous().detach();
  check_range(idc, V, "embedding", "ids", detail::concat(" (weight ", shape_str(weight.shape()), " has ", V, " rows)"));
  cpu::index_select(weight.contiguous().detach(), 1, V, D, idc, out);
  if (!autograd::needs_grad({&weight})) return out;
  auto node = std::make_shared<EmbeddingNode>();
  node->ids = idc;
  node->V = V;
  node->D = D;
  node->padding_idx = padding_idx < 0 ? -1 : padding_idx;
  return record(out, node, {&weight});
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Device dev = common_device({&x, &index}, "gather");
  common_float_dtype({&x}, "gather");
  const int64_t d = check_dim_index(x, dim, index, "gather");
  if (dev == Device::cuda) no_cuda_impl("gather");
  Tensor idc = index.contiguous().detach();
  check_range(idc, x.size(d), "gather", "index", dim_context(d, x));
  Tensor out = gather_impl(x, d, idc);  // [index's shape]
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<GatherNode>();
  node->index = idc;
  node->dim = d;
  node->x_shape = x.shape();
  return record(out, node, {&x});
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  Device dev = common_device({&x, &index, &src}, "scatter_add");
  common_float_dtype({&x, &src}, "scatter_add");
  const int64_t d = check_dim_index(x, dim, index, "scatter_add");
  WENSU_CHECK(src.dim() == index.dim(), "scatter_add: src ", shape_str(src.shape()),
              " must have as many dims as index ", shape_str(index.shape()));
  for (int64_t k = 0; k < src.dim(); ++k)
    WENSU_CHECK(index.size(k) <= src.size(k), "scatter_add: index ", shape_str(index.shape()),
                " is larger than src ", shape_str(src.shape()), " in dim ", k);
  if (dev == Device::cuda) no_cuda_impl("scatter_add");
  Tensor idc = index.contiguous().detach();
  check_range(idc, x.size(d), "scatter_add", "index", dim_context(d, x));
  Tensor out = scatter_add_into(x.detach().clone(), d, idc, src);  // [x's shape]
  if (!autograd::needs_grad({&x, &src})) return out;
  auto node = std::make_shared<ScatterAddNode>();
  node->index = idc;
  node->dim = d;
  node->src_shape = src.shape();
  return record(out, node, {&x, &src});
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Device dev = common_device({&x, &index}, "index_select");
  DType dt = common_float_dtype({&x}, "index_select");
  check_int64(index, "index_select", "index");
  WENSU_CHECK(index.dim() == 1, "index_select: index must be 1-d, got ", shape_str(index.shape()));
  WENSU_CHECK(x.dim() > 0, "index_select: x must have at least one dim, got ", x.describe());
  const int64_t d = normalize_dim(dim, x.dim(), "index_select");
  Shape out_shape = x.shape();
  out_shape[d] = index.size(0);  // [..., m, ...]
  Tensor out = Tensor::empty(out_shape, dt, dev);
  if (dev == Device::cuda) no_cuda_impl("index_select");
  Tensor idc = index.contiguous().detach();
  check_range(idc, x.size(d), "index_select", "index", dim_context(d, x));
  const Split s = split_at(x.shape(), d);
  cpu::index_select(x.contiguous().detach(), s.outer, s.n, s.inner, idc, out);
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<IndexSelectNode>();
  node->index = idc;
  node->split = s;
  node->x_shape = x.shape();
  return record(out, node, {&x});
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  common_device({&x, &mask}, "masked_fill");
  common_float_dtype({&x}, "masked_fill");
  check_int64(mask, "masked_fill", "mask");
  WENSU_CHECK(mask.dim() <= x.dim() && broadcast_shapes(x.shape(), mask.shape(), "masked_fill") == x.shape(),
              "masked_fill: mask ", shape_str(mask.shape()), " does not broadcast to x ", shape_str(x.shape()));
  Tensor out = masked_fill_impl(x, mask, value);
  if (!autograd::needs_grad({&x})) return out;
  auto node = std::make_shared<MaskedFillNode>();
  node->mask = mask.detach();
  return record(out, node, {&x});
}

}  // namespace wensu::ops
