// Indexing ops against loops over multi-indices (row-major positions in each tensor's shape).
#include "ops/harness.h"
#include "wensu/ops/indexing.h"

namespace wensu::test {
namespace {

Shape unravel(int64_t flat, const Shape& shape) {
  Shape pos(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    pos[d] = flat % shape[d];
    flat /= shape[d];
  }
  return pos;
}

int64_t ravel(const Shape& pos, const Shape& shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + pos[d];
  return flat;
}

Tensor ref_embedding(const Tensor& w, const Tensor& ids) {
  const int64_t D = w.size(1);
  auto wv = w.to_vector<double>();
  auto iv = ids.to_vector<int64_t>();
  std::vector<double> out;
  for (int64_t id : iv)
    for (int64_t k = 0; k < D; ++k) out.push_back(wv[size_t(id * D + k)]);
  Shape s = ids.shape();
  s.push_back(D);
  return Tensor::from_vector(out, s);
}

// out[pos] = x[pos with pos[dim] = index[pos]]
Tensor ref_gather(const Tensor& x, int64_t dim, const Tensor& index) {
  auto xv = x.to_vector<double>();
  auto iv = index.to_vector<int64_t>();
  std::vector<double> out(iv.size());
  for (size_t f = 0; f < iv.size(); ++f) {
    Shape pos = unravel(int64_t(f), index.shape());
    pos[dim] = iv[f];
    out[f] = xv[size_t(ravel(pos, x.shape()))];
  }
  return Tensor::from_vector(out, index.shape());
}

// out = x; out[pos with pos[dim] = index[pos]] += src[pos] for pos over index's shape.
Tensor ref_scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  auto out = x.to_vector<double>();
  auto sv = src.to_vector<double>();
  auto iv = index.to_vector<int64_t>();
  for (size_t f = 0; f < iv.size(); ++f) {
    Shape pos = unravel(int64_t(f), index.shape());
    const double v = sv[size_t(ravel(pos, src.shape()))];
    pos[dim] = iv[f];
    out[size_t(ravel(pos, x.shape()))] += v;
  }
  return Tensor::from_vector(out, x.shape());
}

Tensor ref_index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  auto xv = x.to_vector<double>();
  auto iv = index.to_vector<int64_t>();
  Shape s = x.shape();
  s[dim] = index.size(0);
  std::vector<double> out(size_t(shape_numel(s)));
  for (size_t f = 0; f < out.size(); ++f) {
    Shape pos = unravel(int64_t(f), s);
    pos[dim] = iv[size_t(pos[dim])];
    out[f] = xv[size_t(ravel(pos, x.shape()))];
  }
  return Tensor::from_vector(out, s);
}

// mask broadcast to x's shape (trailing dims aligned; size-1 dims repeat).
Tensor ref_masked_fill(const Tensor& x, const Tensor& mask, double value) {
  auto xv = x.to_vector<double>();
  auto mv = mask.to_vector<int64_t>();
  const int64_t lead = x.dim() - mask.dim();
  for (size_t f = 0; f < xv.size(); ++f) {
    Shape pos = unravel(int64_t(f), x.shape());
    Shape mpos(size_t(mask.dim()));
    for (int64_t d = 0; d < mask.dim(); ++d) mpos[d] = mask.size(d) == 1 ? 0 : pos[d + lead];
    if (mv[size_t(ravel(mpos, mask.shape()))] != 0) xv[f] = value;
  }
  return Tensor::from_vector(xv, x.shape());
}

OpCase gather_case(std::string label, Shape xs, int64_t dim, Shape is, bool grad = true) {
  return {"gather", label,
          [=](Generator& g) { return Tensors{randn(g, xs), randint(g, is, 0, xs[dim])}; },
          [=](const Tensors& x) { return ops::gather(x[0], dim, x[1]); },
          [=](const Tensors& x) { return ref_gather(x[0], dim, x[1]); }, 1e-6, grad};
}

OpCase scatter_case(std::string label, Shape xs, int64_t dim, Shape is, Shape ss) {
  return {"scatter_add", label,
          [=](Generator& g) { return Tensors{randn(g, xs), randint(g, is, 0, xs[dim]), randn(g, ss)}; },
          [=](const Tensors& x) { return ops::scatter_add(x[0], dim, x[1], x[2]); },
          [=](const Tensors& x) { return ref_scatter_add(x[0], dim, x[1], x[2]); }};
}

OpCase index_select_case(std::string label, Shape xs, int64_t dim, int64_t m) {
  return {"index_select", label,
          [=](Generator& g) { return Tensors{randn(g, xs), randint(g, {m}, 0, xs[dim])}; },
          [=](const Tensors& x) { return ops::index_select(x[0], dim, x[1]); },
          [=](const Tensors& x) { return ref_index_select(x[0], dim, x[1]); }};
}

OpCase masked_fill_case(std::string label, Shape xs, Shape ms, double value) {
  // Mask values 0, 1, 2: any nonzero entry fills.
  return {"masked_fill", label,
          [=](Generator& g) { return Tensors{randn(g, xs), randint(g, ms, 0, 3)}; },
          [=](const Tensors& x) { return ops::masked_fill(x[0], x[1], value); },
          [=](const Tensors& x) { return ref_masked_fill(x[0], x[1], value); }};
}

}  // namespace

std::vector<OpCase> indexing_cases() {
  std::vector<OpCase> cs;
  // Random ids repeat, so the backward's accumulation into shared rows is exercised.
  cs.push_back({"embedding", "repeated_ids",
                [](Generator& g) { return Tensors{randn(g, {7, 5}), randint(g, {2, 4}, 0, 7)}; },
                [](const Tensors& x) { return ops::embedding(x[0], x[1]); },
                [](const Tensors& x) { return ref_embedding(x[0], x[1]); }});
  // The padding row gets no gradient by design, so finite differences would disagree on it;
  // the float32-vs-float64 gradient comparison still runs (tests/unit/test_indexing.cpp checks
  // the zero row itself).
  cs.push_back({"embedding", "padding_idx",
                [](Generator& g) {
                  return Tensors{randn(g, {6, 4}), Tensor::from_vector(std::vector<int64_t>{1, 3, 1, 0, 5, 1}, {6})};
                },
                [](const Tensors& x) { return ops::embedding(x[0], x[1], /*padding_idx=*/1); },
                [](const Tensors& x) { return ref_embedding(x[0], x[1]); }, 1e-6, /*gradcheck=*/false});
  // Big enough for the parallel forward and the bucketed parallel backward.
  cs.push_back({"embedding", "protein_vocab_parallel",
                [](Generator& g) { return Tensors{randn(g, {33, 64}), randint(g, {8, 300}, 0, 33)}; },
                [](const Tensors& x) { return ops::embedding(x[0], x[1], /*padding_idx=*/0); },
                [](const Tensors& x) { return ref_embedding(x[0], x[1]); }, 1e-5, /*gradcheck=*/false});

  cs.push_back(gather_case("dim0", {4, 3}, 0, {5, 3}));
  cs.push_back(gather_case("dim1_smaller_index", {3, 5}, 1, {2, 4}));
  cs.push_back(gather_case("3d_middle", {2, 4, 3}, 1, {2, 6, 3}));
  cs.push_back(gather_case("parallel", {64, 600}, 1, {64, 600}, /*grad=*/false));
  // A transposed (strided) x straight into the kernel.
  cs.push_back({"gather", "transposed_x",
                [](Generator& g) { return Tensors{randn(g, {4, 3}), randint(g, {3, 5}, 0, 4)}; },
                [](const Tensors& x) { return ops::gather(x[0].transpose(0, 1), 1, x[1]); },
                [](const Tensors& x) { return ref_gather(x[0].transpose(0, 1).contiguous(), 1, x[1]); }});

  cs.push_back(scatter_case("dim0", {4, 3}, 0, {6, 3}, {6, 3}));
  // src larger than index: its extra elements are unused and get a zero gradient.
  cs.push_back(scatter_case("dim0_src_larger", {5, 4}, 0, {3, 4}, {4, 5}));
  cs.push_back(scatter_case("dim1_smaller_index", {3, 4}, 1, {2, 6}, {2, 6}));
  cs.push_back(scatter_case("3d_last", {2, 3, 4}, 2, {2, 3, 5}, {2, 3, 5}));
  cs.push_back({"scatter_add", "parallel",
                [](Generator& g) { return Tensors{randn(g, {64, 300}), randint(g, {64, 600}, 0, 300), randn(g, {64, 600})}; },
                [](const Tensors& x) { return ops::scatter_add(x[0], 1, x[1], x[2]); },
                [](const Tensors& x) { return ref_scatter_add(x[0], 1, x[1], x[2]); }, 1e-5, /*gradcheck=*/false});

  cs.push_back(index_select_case("dim0", {5, 4}, 0, 7));
  cs.push_back(index_select_case("dim1", {3, 4}, 1, 6));
  cs.push_back(index_select_case("3d_last", {2, 3, 5}, 2, 4));
  cs.push_back({"index_select", "transposed_x",
                [](Generator& g) { return Tensors{randn(g, {4, 3}), randint(g, {5}, 0, 4)}; },
                [](const Tensors& x) { return ops::index_select(x[0].transpose(0, 1), 1, x[1]); },
                [](const Tensors& x) { return ref_index_select(x[0].transpose(0, 1).contiguous(), 1, x[1]); }});

  cs.push_back(masked_fill_case("same_shape", {3, 5}, {3, 5}, 2.5));
  cs.push_back(masked_fill_case("row_mask", {2, 3, 4}, {4}, -1.5));
  // Attention-style key padding mask [B, 1, 1, L] over scores [B, H, L, L].
  cs.push_back(masked_fill_case("key_padding", {2, 2, 3, 3}, {2, 1, 1, 3}, -3.0));
  cs.push_back({"masked_fill", "transposed_x",
                [](Generator& g) { return Tensors{randn(g, {4, 3}), randint(g, {3, 4}, 0, 2)}; },
                [](const Tensors& x) { return ops::masked_fill(x[0].transpose(0, 1), x[1], 0.5); },
                [](const Tensors& x) { return ref_masked_fill(x[0].transpose(0, 1).contiguous(), x[1], 0.5); }});
  return cs;
}

}  // namespace wensu::test
