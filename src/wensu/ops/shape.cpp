#include "wensu/ops/shape.h"

#include <algorithm>
#include <numeric>
#include <optional>

#include "wensu/autograd/grad_mode.h"
#include "wensu/autograd/node.h"
#include "wensu/ops/cpu/copy.h"
#include "wensu/ops/reduce.h"

namespace wensu::ops {

using autograd::Node;
using autograd::record;

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  WENSU_CHECK(d >= 0 && d < ndim, op, ": dim ", dim, " out of range for a ", ndim, "-d tensor");
  return d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    WENSU_CHECK(x == y || x == 1 || y == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                " do not broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  std::vector<int64_t> axes;
  for (int64_t d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && g.size(d) != 1)) axes.push_back(d);
  Tensor s = sum(g, axes, /*keepdim=*/true);
  return reshape(s, shape);
}

// ---------------------------------------------------------------- views
namespace {

Shape infer_shape(const Shape& shape, int64_t numel) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      WENSU_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    WENSU_CHECK(known > 0 && numel % known == 0, "reshape: cannot infer -1 in ", shape_str(shape),
                " for ", numel, " elements");
    s[infer] = numel / known;
  }
  WENSU_CHECK(shape_numel(s) == numel, "reshape: ", numel, " elements do not fit shape ", shape_str(s));
  return s;
}

// Strides for viewing x as `shape` without a copy, or nothing if impossible (as in PyTorch's
// computeStride: each run of merged source dims must be contiguous within itself).
std::optional<Shape> view_strides(const Tensor& x, const Shape& shape) {
  if (x.numel() <= 1) return contiguous_strides(shape);
  const Shape& os = x.shape();
  const Shape& ost = x.strides();
  Shape st(shape.size());
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        st[view_d] = view_numel * chunk_base;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base = ost[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return st;
}

struct ReshapeNode : Node {
  Shape in_shape;
  std::vector<Tensor> apply(const Tensor& g) override { return {reshape(g, in_shape)}; }
  const char* name() const override { return "reshape"; }
};

struct PermuteNode : Node {
  std::vector<int64_t> inverse;
  std::vector<Tensor> apply(const Tensor& g) override { return {permute(g, inverse)}; }
  const char* name() const override { return "permute"; }
};

struct NarrowNode : Node {
  Shape in_shape;
  int64_t dim, start;
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor z = Tensor::zeros(in_shape, g.dtype(), g.device());
    narrow(z, dim, start, g.size(dim)).copy_(g);
    return {z};
  }
  const char* name() const override { return "narrow"; }
};

struct ExpandNode : Node {
  Shape in_shape;
  std::vector<Tensor> apply(const Tensor& g) override { return {sum_to(g, in_shape)}; }
  const char* name() const override { return "expand"; }
};

struct IdentityNode : Node {
  const char* label;
  explicit IdentityNode(const char* l) : label(l) {}
  std::vector<Tensor> apply(const Tensor& g) override { return {g}; }
  const char* name() const override { return label; }
};

struct CastNode : Node {
  DType in_dtype;
  std::vector<Tensor> apply(const Tensor& g) override { return {cast(g, in_dtype)}; }
  const char* name() const override { return "cast"; }
};

Tensor copy_to_new(const Tensor& x, DType dtype) {
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  out.copy_(x);
  return out;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = infer_shape(shape, x.numel());
  std::optional<Shape> st = view_strides(x, s);
  Tensor out = st ? make_view(x, s, *st, x.offset())
                  : make_view(copy_to_new(x, x.dtype()), s, contiguous_strides(s), 0);
  auto node = std::make_shared<ReshapeNode>();
  node->in_shape = x.shape();
  return record(out, node, {&x});
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& order) {
  WENSU_CHECK(int64_t(order.size()) == x.dim(), "permute: ", order.size(), " dims given for a ",
              x.dim(), "-d tensor");
  Shape s(order.size()), st(order.size());
  std::vector<int64_t> inverse(order.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t d = normalize_dim(order[i], x.dim(), "permute");
    WENSU_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated");
    inverse[d] = int64_t(i);
    s[i] = x.shape()[d];
    st[i] = x.strides()[d];
  }
  Tensor out = make_view(x, s, st, x.offset());
  auto node = std::make_shared<PermuteNode>();
  node->inverse = inverse;
  return record(out, node, {&x});
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  std::vector<int64_t> order(x.dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(a, x.dim(), "transpose")], order[normalize_dim(b, x.dim(), "transpose")]);
  return permute(x, order);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  int64_t d = normalize_dim(dim, x.dim(), "narrow");
  WENSU_CHECK(start >= 0 && length >= 0 && start + length <= x.size(d), "narrow: [", start, ", ",
              start + length, ") out of range for dim ", d, " of size ", x.size(d));
  Shape s = x.shape();
  s[d] = length;
  Tensor out = make_view(x, s, x.strides(), x.offset() + start * x.strides()[d]);
  auto node = std::make_shared<NarrowNode>();
  node->in_shape = x.shape();
  node->dim = d;
  node->start = start;
  return record(out, node, {&x});
}

Tensor expand(const Tensor& x, const Shape& shape) {
  WENSU_CHECK(shape.size() >= size_t(x.dim()), "expand: cannot expand ", shape_str(x.shape()), " to ",
              shape_str(shape));
  const int64_t lead = int64_t(shape.size()) - x.dim();
  Shape st(shape.size(), 0);
  for (int64_t d = 0; d < x.dim(); ++d) {
    int64_t want = shape[d + lead];
    WENSU_CHECK(x.size(d) == want || x.size(d) == 1, "expand: cannot expand ", shape_str(x.shape()),
                " to ", shape_str(shape));
    st[d + lead] = x.size(d) == want ? x.strides()[d] : 0;
  }
  Tensor out = make_view(x, shape, st, x.offset());
  auto node = std::make_shared<ExpandNode>();
  node->in_shape = x.shape();
  return record(out, node, {&x});
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  int64_t d = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + d, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  int64_t d = normalize_dim(dim, x.dim(), "squeeze");
  WENSU_CHECK(x.size(d) == 1, "squeeze: dim ", d, " has size ", x.size(d), ", not 1");
  Shape s = x.shape();
  s.erase(s.begin() + d);
  return reshape(x, s);
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  return record(copy_to_new(x, x.dtype()), std::make_shared<IdentityNode>("contiguous"), {&x});
}

Tensor clone(const Tensor& x) {
  return record(copy_to_new(x, x.dtype()), std::make_shared<IdentityNode>("clone"), {&x});
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  WENSU_CHECK(is_floating(x.dtype()) == is_floating(dtype) || !x.requires_grad(),
              "cast: cannot differentiate through a cast to or from int64");
  auto node = std::make_shared<CastNode>();
  node->in_dtype = x.dtype();
  return record(copy_to_new(x, dtype), node, {&x});
}

// ---------------------------------------------------------------- concat / split
namespace {
struct ConcatNode : Node {
  std::vector<int64_t> sizes;
  int64_t dim;
  std::vector<Tensor> apply(const Tensor& g) override { return split(g, sizes, dim); }
  const char* name() const override { return "concat"; }
};
}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  WENSU_CHECK(!xs.empty(), "concat: no tensors given");
  int64_t d = normalize_dim(dim, xs[0].dim(), "concat");
  Shape s = xs[0].shape();
  int64_t total = 0;
  std::vector<int64_t> sizes;
  for (auto& x : xs) {
    WENSU_CHECK(x.dim() == xs[0].dim() && x.dtype() == xs[0].dtype() && x.device() == xs[0].device(),
                "concat: ", x.describe(), " does not match ", xs[0].describe());
    for (int64_t k = 0; k < x.dim(); ++k)
      WENSU_CHECK(k == d || x.size(k) == s[k], "concat: shapes ", shape_str(xs[0].shape()), " and ",
                  shape_str(x.shape()), " differ outside dim ", d);
    sizes.push_back(x.size(d));
    total += x.size(d);
  }
  s[d] = total;
  Tensor out = Tensor::empty(s, xs[0].dtype(), xs[0].device());
  {
    NoGradGuard ng;
    int64_t at = 0;
    for (auto& x : xs) {
      narrow(out, d, at, x.size(d)).copy_(x);
      at += x.size(d);
    }
  }
  auto node = std::make_shared<ConcatNode>();
  node->sizes = sizes;
  node->dim = d;
  return record(out, node, xs);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  int64_t d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  WENSU_CHECK(total == x.size(d), "split: sizes sum to ", total, " but dim ", d, " has size ", x.size(d));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, d, at, s));
    at += s;
  }
  return out;
}

}  // namespace wensu::ops
