#include "wensu/ops/contrastive.h"

#include <cmath>
#include <limits>
#include <vector>

#include "wensu/ops/binary.h"
#include "wensu/ops/dispatch.h"
#include "wensu/ops/loss.h"
#include "wensu/ops/matmul.h"
#include "wensu/ops/reduce.h"
#include "wensu/ops/shape.h"
#include "wensu/ops/unary.h"

namespace wensu::ops {

namespace {

// The smallest normal number of a floating dtype: eps^2 below it would flush to zero (or lose
// precision) and bring back the sqrt(0) that l2_normalize avoids.
double smallest_normal(DType dt) {
  return dt == DType::f32 ? double(std::numeric_limits<float>::min()) : std::numeric_limits<double>::min();
}

void check_embeddings(const Tensor& e, const char* what) {
  WENSU_CHECK(e.defined() && e.dim() == 2, "contrastive_loss: ", what, " must be [B, D] (one row per pair), got ",
              e.defined() ? e.describe() : std::string("an undefined tensor"));
}

// s = min(exp(log_scale), max_scale) -> []. min(a, b) = -max(-a, -b) is exact (negation does
// not round), and max sends the gradient to the first maximal entry: to exp(log_scale) while it
// is at most max_scale (ties included, like torch.clamp), to the constant once it is capped.
Tensor clamped_scale(const Tensor& log_scale, double max_scale, DType dt, Device dev) {
  Tensor s = exp(reshape(log_scale, {1}));              // [1]
  Tensor cap = Tensor::full({1}, -max_scale, dt, dev);  // [1]
  return neg(max(concat({neg(s), cap}, 0), {0}));       // []
}

}  // namespace

Tensor l2_normalize(const Tensor& x, double eps) {
  WENSU_CHECK(x.defined() && x.dim() >= 1, "l2_normalize: x must be [..., D], got ",
              x.defined() ? x.describe() : std::string("an undefined tensor"));
  Device dev = common_device({&x}, "l2_normalize");
  DType dt = common_float_dtype({&x}, "l2_normalize");
  const double floor = eps * eps;
  WENSU_CHECK(eps > 0 && floor >= smallest_normal(dt), "l2_normalize: eps = ", eps, " is too small for ",
              dtype_name(dt), " (eps^2 must be a normal number: eps >= ", std::sqrt(smallest_normal(dt)),
              "); the default 1e-12 works for float32 and float64");
  // ||x|| clamped at eps is sqrt(max(sum x^2, eps^2)): the max is exact, and sqrt never sees 0,
  // so a zero row gets the gradient 1/eps (PyTorch's) rather than NaN.
  Tensor ss = sum(mul(x, x), {-1}, true);                     // [..., 1]
  Tensor lo = Tensor::full(ss.shape(), floor, dt, dev);       // [..., 1]
  Tensor norm = sqrt(max(concat({ss, lo}, -1), {-1}, true));  // [..., 1]
  return div(x, norm);                                        // [..., D]
}

Tensor similarity_matrix(const Tensor& a, const Tensor& b) {
  WENSU_CHECK(a.defined() && b.defined() && a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1),
              "similarity_matrix: needs a [Na, D] and b [Nb, D] with the same D, got ",
              a.defined() ? a.describe() : std::string("undefined"), " and ",
              b.defined() ? b.describe() : std::string("undefined"));
  return matmul(l2_normalize(a), transpose(l2_normalize(b), 0, 1));  // [Na, Nb]
}

Tensor contrastive_loss(const Tensor& image_emb, const Tensor& text_emb, const Tensor& log_scale, int64_t first,
                        int64_t count, double max_scale) {
  check_embeddings(image_emb, "image_emb");
  check_embeddings(text_emb, "text_emb");
  WENSU_CHECK(image_emb.shape() == text_emb.shape(), "contrastive_loss: image_emb ", shape_str(image_emb.shape()),
              " and text_emb ", shape_str(text_emb.shape()),
              " must have the same shape [B, D] (row i of each is the pair i; project both towers to one D)");
  WENSU_CHECK(log_scale.defined() && log_scale.numel() == 1 && log_scale.dim() <= 1,
              "contrastive_loss: log_scale must be a scalar [] or [1], got ",
              log_scale.defined() ? log_scale.describe() : std::string("an undefined tensor"));
  Device dev = common_device({&image_emb, &text_emb, &log_scale}, "contrastive_loss");
  DType dt = common_float_dtype({&image_emb, &text_emb, &log_scale}, "contrastive_loss");
  const int64_t B = image_emb.size(0);
  WENSU_CHECK(B >= 1, "contrastive_loss: the batch is empty (", shape_str(image_emb.shape()), ")");
  WENSU_CHECK(max_scale > 0, "contrastive_loss: max_scale must be positive (infinity for no cap), got ", max_scale);
  if (count == -1) count = B - first;
  WENSU_CHECK(first >= 0 && count >= 0 && first + count <= B, "contrastive_loss: rows [", first, ", ", first + count,
              ") are not inside the batch of ", B, " pairs (need 0 <= first, 0 <= count, first + count <= B)");

  if (count == 0) {
    // Nothing of the loss is ours, but the result must still lead back to the inputs: after an
    // all-gather, every rank has to back-propagate to join the collective backward.
    Tensor all = add(add(sum(image_emb), sum(text_emb)), sum(log_scale));  // []
    return scale(all, 0.0);
  }

  Tensor I = l2_normalize(image_emb);                       // [B, D]
  Tensor T = l2_normalize(text_emb);                        // [B, D]
  Tensor s = clamped_scale(log_scale, max_scale, dt, dev);  // []
  Tensor rows, cols;  // [count, B] each: S[R, :] and S[:, R]^T
  if (count == B) {
    rows = matmul(mul(I, s), transpose(T, 0, 1));  // S [B, B]
    cols = transpose(rows, 0, 1);                  // S^T: the full loss needs every column
  } else {
    // Only this part's rows and columns of S: s I_R T^T and s T_R I^T, 2 count B D products
    // instead of B^2 D.
    rows = matmul(mul(narrow(I, 0, first, count), s), transpose(T, 0, 1));
    cols = matmul(mul(narrow(T, 0, first, count), s), transpose(I, 0, 1));
  }
  std::vector<int64_t> t(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) t[size_t(k)] = first + k;  // pair i's match is column i
  Tensor targets = Tensor::from_vector(t, {count}).to(dev);       // [count] int64
  // cross_entropy averages over its count rows; the part is the sum over them divided by 2B.
  Tensor both = add(cross_entropy(rows, targets), cross_entropy(cols, targets));  // []
  return scale(both, double(count) / (2.0 * double(B)));
}

}  // namespace wensu::ops
